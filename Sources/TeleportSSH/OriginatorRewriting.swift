import NIOCore
import NIOSSH
import TeleportAPI

/// Lets `direct-tcpip` channels name any originator, through the SSH library's public extension
/// point for ciphers, without changing the library.
///
/// swift-nio-ssh 0.15.1 parses the originator of a `direct-tcpip` channel open as a literal IP
/// address while decoding the message, and a failure drops the whole connection: asyncssh's
/// `tunnel=` (originator `""`) and paramiko's `("localhost", 22)` could not use `ssh -J`. The
/// originator is informational (RFC 4254 §7.2; we never use it), so our servers negotiate the
/// library's own AES-GCM schemes wrapped in ``OriginatorRewritingProtection``: once a packet has
/// been decrypted and authenticated by the library's scheme, a channel open whose originator is not
/// an IP literal gets `0.0.0.0` instead, and every other packet passes unchanged.
enum OriginatorRewriting {
    /// The transport protection schemes for a server: the library's bundled schemes, each wrapped;
    /// the bundled list itself when it is not the one this wrapper knows (a library upgrade).
    static var serverSchemes: [any NIOSSHTransportProtection.Type] {
        let bundled = bundledSchemes
        var names: [String] = []
        for scheme in bundled { names.append(scheme.cipherName) }
        guard names == [AES256GCM.cipherName, AES128GCM.cipherName] else { return bundled }
        return [OriginatorRewritingProtection<AES256GCM>.self, OriginatorRewritingProtection<AES128GCM>.self]
    }

    /// The library's own schemes, as a default server configuration lists them.
    static var bundledSchemes: [any NIOSSHTransportProtection.Type] {
        SSHServerConfiguration(hostKeys: [], userAuthDelegate: NoUsers()).transportProtectionSchemes
    }

    /// The library's scheme named `name`.
    static func bundledScheme(named name: String) -> (any NIOSSHTransportProtection.Type)? {
        for scheme in bundledSchemes where scheme.cipherName == name { return scheme }
        return nil
    }

    /// What a non-IP originator becomes.
    static let substitute = "0.0.0.0"
    static let channelOpen: UInt8 = 90

    /// The payload of an `SSH_MSG_CHANNEL_OPEN` of type `direct-tcpip` or `forwarded-tcpip` whose
    /// originator is not an IP literal, with the originator replaced by `0.0.0.0`; nil for every
    /// other payload (which then passes unchanged).
    static func rewrite(_ payload: ByteBuffer) -> ByteBuffer? {
        var reader = payload
        guard reader.readInteger(as: UInt8.self) == channelOpen,
            let typeLength = reader.readInteger(as: UInt32.self), typeLength <= 64,
            let type = reader.readString(length: Int(typeLength)), type == "direct-tcpip" || type == "forwarded-tcpip",
            let fixed = reader.readSlice(length: 12),  // sender channel, initial window, maximum packet
            let hostLength = reader.readInteger(as: UInt32.self), hostLength <= 65535,
            let host = reader.readSlice(length: Int(hostLength)),
            let port = reader.readInteger(as: UInt32.self),
            let originatorLength = reader.readInteger(as: UInt32.self), originatorLength <= 65535,
            let originator = reader.readString(length: Int(originatorLength)),
            let originatorPort = reader.readInteger(as: UInt32.self)
        else { return nil }
        guard (try? SocketAddress(ipAddress: originator, port: 0)) == nil else { return nil }
        var rewritten = ByteBufferAllocator().buffer(capacity: payload.readableBytes + substitute.utf8.count)
        rewritten.writeInteger(channelOpen)
        rewritten.writeInteger(UInt32(type.utf8.count))
        rewritten.writeString(type)
        rewritten.writeImmutableBuffer(fixed)
        rewritten.writeInteger(hostLength)
        rewritten.writeImmutableBuffer(host)
        rewritten.writeInteger(port)
        rewritten.writeInteger(UInt32(substitute.utf8.count))
        rewritten.writeString(substitute)
        rewritten.writeInteger(originatorPort)
        rewritten.writeBuffer(&reader)
        return rewritten
    }

    /// A delegate for the throw-away configuration that lists the bundled schemes.
    final class NoUsers: NIOSSHServerUserAuthenticationDelegate, Sendable {
        var supportedAuthenticationMethods: NIOSSHAvailableUserAuthenticationMethods { .publicKey }
        func requestReceived(request: NIOSSHUserAuthenticationRequest, responsePromise: EventLoopPromise<NIOSSHUserAuthenticationOutcome>) {
            responsePromise.succeed(.failure)
        }
    }

    /// Names one of the library's bundled schemes.
    protocol BundledScheme {
        /// The scheme's cipher name on the wire.
        static var cipherName: String { get }
    }

    /// `aes256-gcm@openssh.com`.
    enum AES256GCM: BundledScheme {
        /// The cipher name.
        static let cipherName = "aes256-gcm@openssh.com"
    }

    /// `aes128-gcm@openssh.com`.
    enum AES128GCM: BundledScheme {
        /// The cipher name.
        static let cipherName = "aes128-gcm@openssh.com"
    }
}

/// One of the library's bundled schemes (named by `Scheme`), doing all the cryptography, with
/// ``OriginatorRewriting/rewrite(_:)`` applied to what it decrypted and authenticated.
final class OriginatorRewritingProtection<Scheme: OriginatorRewriting.BundledScheme>: NIOSSHTransportProtection {
    static var inner: (any NIOSSHTransportProtection.Type)? { OriginatorRewriting.bundledScheme(named: Scheme.cipherName) }

    /// The wrapped scheme's cipher name.
    static var cipherName: String { Scheme.cipherName }
    /// The wrapped scheme's MAC name (none for AES-GCM).
    static var macName: String? { inner?.macName }
    /// The wrapped scheme's block size.
    static var cipherBlockSize: Int { inner?.cipherBlockSize ?? 16 }
    /// The wrapped scheme's key sizes.
    static var keySizes: ExpectedKeySizes { inner?.keySizes ?? ExpectedKeySizes(ivSize: 12, encryptionKeySize: 32, macKeySize: 0) }

    private let wrapped: any NIOSSHTransportProtection

    /// The wrapped scheme's MAC length.
    var macBytes: Int { wrapped.macBytes }
    /// Whether the wrapped scheme encrypts the length.
    var lengthEncrypted: Bool { wrapped.lengthEncrypted }

    /// Creates the wrapped scheme with the keys.
    init(initialKeys: NIOSSHSessionKeys) throws {
        guard let inner = Self.inner else {
            throw TeleportError.badParameter("the SSH library has no \(Scheme.cipherName) scheme to wrap")
        }
        wrapped = try inner.init(initialKeys: initialKeys)
    }

    /// Passes new keys on.
    func updateKeys(_ newKeys: NIOSSHSessionKeys) throws { try wrapped.updateKeys(newKeys) }

    /// Decrypts the length with the wrapped scheme.
    func decryptFirstBlock(_ source: inout ByteBuffer) throws { try wrapped.decryptFirstBlock(&source) }

    /// Decrypts and authenticates with the wrapped scheme, then rewrites a non-IP originator.
    func decryptAndVerifyRemainingPacket(_ source: inout ByteBuffer, sequenceNumber: UInt32) throws -> ByteBuffer {
        let payload = try wrapped.decryptAndVerifyRemainingPacket(&source, sequenceNumber: sequenceNumber)
        return OriginatorRewriting.rewrite(payload) ?? payload
    }

    /// Encrypts with the wrapped scheme.
    func encryptPacket(_ destination: inout ByteBuffer, sequenceNumber: UInt32) throws {
        try wrapped.encryptPacket(&destination, sequenceNumber: sequenceNumber)
    }
}
