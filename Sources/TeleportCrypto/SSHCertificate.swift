public import Crypto
public import Foundation
import TeleportAPI

/// An OpenSSH certificate (OpenSSH's PROTOCOL.certkey): a subject public key with principals, a
/// validity window, critical options and extensions, signed by a certificate authority key.
///
/// Values of this type only come from `sign(publicKey:...)` or from parsing, and parsing verifies
/// the CA signature; so every value carries a signature that verifies with its ``signatureKey``.
/// Whether that CA is *trusted*, and everything else about whether the certificate grants access,
/// is ``SSHCertificateChecker``'s job.
public struct SSHCertificate: Sendable, Hashable {
    /// Whether a certificate identifies a user or a host.
    public enum CertType: UInt32, Sendable, Hashable, CustomStringConvertible {
        /// A user certificate (`SSH_CERT_TYPE_USER`).
        case user = 1
        /// A host certificate (`SSH_CERT_TYPE_HOST`).
        case host = 2

        /// `user` or `host`.
        public var description: String {
            switch self {
            case .user: "user"
            case .host: "host"
            }
        }
    }

    /// The critical option that pins the command run for the session.
    public static let forceCommandOption = "force-command"
    /// The critical option listing the CIDR blocks the client may connect from.
    public static let sourceAddressOption = "source-address"

    /// The user extension permitting X11 forwarding.
    public static let permitX11Forwarding = "permit-X11-forwarding"
    /// The user extension permitting agent forwarding.
    public static let permitAgentForwarding = "permit-agent-forwarding"
    /// The user extension permitting port forwarding.
    public static let permitPortForwarding = "permit-port-forwarding"
    /// The user extension permitting a PTY.
    public static let permitPTY = "permit-pty"
    /// The user extension permitting `~/.ssh/rc`.
    public static let permitUserRC = "permit-user-rc"
    /// The extensions `ssh-keygen -s` puts in a user certificate by default, each with an empty value.
    public static let standardUserExtensions: [String: String] = [
        permitX11Forwarding: "", permitAgentForwarding: "", permitPortForwarding: "", permitPTY: "",
        permitUserRC: "",
    ]

    /// The `validBefore` of a certificate that never expires (OpenSSH writes `UInt64.max` on the wire).
    public static let forever = Date.distantFuture

    /// The random nonce that makes signed data unpredictable to the requester.
    public let nonce: Data
    /// The certified (subject) public key.
    public let publicKey: SSHPublicKey
    /// The serial number chosen by the CA (0 when unused).
    public let serial: UInt64
    /// User or host certificate.
    public let type: CertType
    /// The free-form identity the CA logged when signing (Teleport puts the user name here).
    public let keyID: String
    /// The logins (user certificates) or host names (host certificates) this certificate is valid
    /// for. OpenSSH reads an empty list as "any principal"; ``SSHCertificateChecker`` refuses it.
    public let validPrincipals: [String]
    /// The start of the validity window, in seconds since the epoch, as on the wire.
    public let validAfterSeconds: UInt64
    /// The end of the validity window (exclusive), in seconds since the epoch, as on the wire;
    /// `UInt64.max` means forever.
    public let validBeforeSeconds: UInt64
    /// Critical options by name; a server must refuse a certificate with one it does not understand.
    public let criticalOptions: [String: String]
    /// Extensions by name; unknown extensions are ignored. Values are usually empty.
    public let extensions: [String: String]
    /// The reserved field, empty in every known version.
    public let reserved: Data
    /// The CA public key that signed this certificate.
    public let signatureKey: SSHPublicKey
    /// The CA's SSH signature blob over the certificate up to and including ``signatureKey``.
    public let signature: Data
    /// The complete certificate blob, as it appears base64-encoded in a `-cert.pub` file.
    public let wireBytes: Data

    /// The certificate's algorithm name, e.g. `ssh-ed25519-cert-v01@openssh.com`.
    public var algorithmName: String { Self.certificateAlgorithmName(for: publicKey) }

    /// The start of the validity window.
    public var validAfter: Date { Self.date(fromWire: validAfterSeconds) }

    /// The end of the validity window (exclusive); ``forever`` for a certificate that never expires.
    public var validBefore: Date { Self.date(fromWire: validBeforeSeconds) }

    /// The `-cert.pub` file line: `type base64 [comment]`.
    public func authorizedKeyLine(comment: String = "") -> String {
        SSHAuthorizedKeyLine.format(type: algorithmName, blob: wireBytes, comment: comment)
    }

    /// Signs a certificate for `publicKey` with an Ed25519 CA key.
    ///
    /// Critical options and extensions are written sorted by name, as PROTOCOL.certkey requires; an
    /// empty value is written as empty data, any other value as a string inside the data string.
    ///
    /// - Parameters:
    ///   - publicKey: The subject key being certified.
    ///   - type: User or host certificate.
    ///   - serial: The serial number; 0 when unused.
    ///   - keyID: The identity to log.
    ///   - validPrincipals: Logins or host names; should not be empty (see ``validPrincipals``).
    ///   - validAfter: The start of the validity window (floored to whole seconds).
    ///   - validBefore: The end of the window (floored to whole seconds); ``forever`` or later means
    ///     no expiry.
    ///   - criticalOptions: For example ``forceCommandOption`` or ``sourceAddressOption``.
    ///   - extensions: For example ``standardUserExtensions``.
    ///   - nonce: The nonce; 32 random bytes unless given.
    ///   - caKey: The CA's private key.
    /// - Throws: ``TeleportError`` `badParameter` when the window is inverted or the nonce empty.
    public static func sign(
        publicKey: SSHPublicKey,
        type: CertType,
        serial: UInt64 = 0,
        keyID: String,
        validPrincipals: [String],
        validAfter: Date,
        validBefore: Date,
        criticalOptions: [String: String] = [:],
        extensions: [String: String] = [:],
        nonce: Data? = nil,
        caKey: Curve25519.Signing.PrivateKey
    ) throws -> SSHCertificate {
        let after = wireSeconds(from: validAfter)
        let before = wireSeconds(from: validBefore)
        guard after < before else {
            throw TeleportError.badParameter("certificate validAfter must be before validBefore")
        }
        let nonceBytes = nonce ?? Data((0..<32).map { _ in UInt8.random(in: .min ... .max) })
        guard !nonceBytes.isEmpty else {
            throw TeleportError.badParameter("certificate nonce must not be empty")
        }
        let caPublicKey = SSHPublicKey.ed25519(caKey.publicKey)

        var writer = SSHWireWriter()
        writer.writeString(certificateAlgorithmName(for: publicKey))
        writer.writeString(Array(nonceBytes))
        publicKey.writeKeyFields(to: &writer)
        writer.writeUInt64(serial)
        writer.writeUInt32(type.rawValue)
        writer.writeString(keyID)
        var principals = SSHWireWriter()
        for principal in validPrincipals {
            principals.writeString(principal)
        }
        writer.writeString(principals.bytes)
        writer.writeUInt64(after)
        writer.writeUInt64(before)
        writer.writeString(encodeOptions(criticalOptions))
        writer.writeString(encodeOptions(extensions))
        writer.writeString([UInt8]())  // reserved
        writer.writeString(Array(caPublicKey.wireBytes))
        let signedPart = writer.bytes

        let rawSignature: Data
        do {
            rawSignature = try caKey.signature(for: signedPart)
        } catch {
            throw TeleportError(.internalError, "Ed25519 signing of an SSH certificate failed", cause: error)
        }
        let signatureBlob = SSHPublicKey.signatureBlob(ed25519: rawSignature)
        writer.writeString(signatureBlob)

        return SSHCertificate(
            nonce: nonceBytes, publicKey: publicKey, serial: serial, type: type, keyID: keyID,
            validPrincipals: validPrincipals, validAfterSeconds: after, validBeforeSeconds: before,
            criticalOptions: criticalOptions, extensions: extensions, reserved: Data(),
            signatureKey: caPublicKey, signature: Data(signatureBlob), wireBytes: Data(writer.bytes)
        )
    }

    /// Parses a certificate blob and verifies its CA signature.
    ///
    /// - Throws: ``TeleportError`` `badParameter` for a malformed or unsupported certificate
    ///   (truncated, trailing bytes, unknown type, options out of order or repeated, a CA key that is
    ///   itself a certificate); `accessDenied` when the CA signature does not verify.
    public init(wireBytes: some Sequence<UInt8>) throws {
        let bytes = Array(wireBytes)
        var reader = SSHWireReader(bytes)
        let algorithm = try reader.readUTF8String()
        guard let keyAlgorithm = Self.keyAlgorithmName(forCertificateAlgorithm: algorithm) else {
            throw TeleportError.badParameter("unsupported SSH certificate type \(algorithm)")
        }
        let nonce = try reader.readString()
        let publicKey = try SSHPublicKey.readKeyFields(algorithm: keyAlgorithm, from: &reader)
        let serial = try reader.readUInt64()
        let rawType = try reader.readUInt32()
        guard let type = CertType(rawValue: rawType) else {
            throw TeleportError.badParameter("unknown SSH certificate type value \(rawType)")
        }
        let keyID = try reader.readUTF8String()
        var principalsReader = SSHWireReader(try reader.readString())
        var principals: [String] = []
        while !principalsReader.isAtEnd {
            principals.append(try principalsReader.readUTF8String())
        }
        let after = try reader.readUInt64()
        let before = try reader.readUInt64()
        let critical = try Self.decodeOptions(try reader.readString(), what: "critical options")
        let extensions = try Self.decodeOptions(try reader.readString(), what: "extensions")
        let reserved = try reader.readString()
        let signatureKey = try SSHPublicKey(wireBytes: try reader.readString())
        let signedLength = reader.offset
        let signature = try reader.readString()
        try reader.expectEnd("SSH certificate")

        try signatureKey.verifySignature(signature, for: bytes[0..<signedLength])

        self.init(
            nonce: Data(nonce), publicKey: publicKey, serial: serial, type: type, keyID: keyID,
            validPrincipals: principals, validAfterSeconds: after, validBeforeSeconds: before,
            criticalOptions: critical, extensions: extensions, reserved: Data(reserved),
            signatureKey: signatureKey, signature: Data(signature), wireBytes: Data(bytes)
        )
    }

    /// Parses a `-cert.pub` line (`type base64 [comment]`) and verifies the CA signature.
    ///
    /// - Throws: as ``init(wireBytes:)``, and `badParameter` when the type word does not match.
    public init(authorizedKeyLine line: String) throws {
        let parsed = try SSHAuthorizedKeyLine.parse(line)
        try self.init(wireBytes: parsed.blob)
        guard algorithmName == parsed.type else {
            throw TeleportError.badParameter(
                "certificate line says \(parsed.type) but the certificate is \(algorithmName)")
        }
    }

    /// Certificates are equal when their encoded bytes are.
    public static func == (lhs: SSHCertificate, rhs: SSHCertificate) -> Bool {
        lhs.wireBytes == rhs.wireBytes
    }

    /// Hashes the encoded bytes.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(wireBytes)
    }

    private init(
        nonce: Data, publicKey: SSHPublicKey, serial: UInt64, type: CertType, keyID: String,
        validPrincipals: [String], validAfterSeconds: UInt64, validBeforeSeconds: UInt64,
        criticalOptions: [String: String], extensions: [String: String], reserved: Data,
        signatureKey: SSHPublicKey, signature: Data, wireBytes: Data
    ) {
        self.nonce = nonce
        self.publicKey = publicKey
        self.serial = serial
        self.type = type
        self.keyID = keyID
        self.validPrincipals = validPrincipals
        self.validAfterSeconds = validAfterSeconds
        self.validBeforeSeconds = validBeforeSeconds
        self.criticalOptions = criticalOptions
        self.extensions = extensions
        self.reserved = reserved
        self.signatureKey = signatureKey
        self.signature = signature
        self.wireBytes = wireBytes
    }
}

extension SSHCertificate {
    /// The certificate algorithm name for a subject key.
    static func certificateAlgorithmName(for key: SSHPublicKey) -> String {
        key.algorithmName + "-cert-v01@openssh.com"
    }

    /// The plain key algorithm inside a certificate algorithm name, or nil when unsupported.
    static func keyAlgorithmName(forCertificateAlgorithm name: String) -> String? {
        for algorithm in [SSHPublicKey.ed25519AlgorithmName, SSHPublicKey.ecdsaP256AlgorithmName]
        where name == algorithm + "-cert-v01@openssh.com" {
            return algorithm
        }
        return nil
    }

    /// Converts a date to wire seconds: negative to 0, ``forever`` or later to `UInt64.max`.
    static func wireSeconds(from date: Date) -> UInt64 {
        if date >= forever { return .max }
        let seconds = date.timeIntervalSince1970.rounded(.down)
        return seconds <= 0 ? 0 : UInt64(seconds)
    }

    /// Converts wire seconds to a date: anything at or beyond ``forever`` becomes ``forever``.
    static func date(fromWire seconds: UInt64) -> Date {
        let foreverSeconds = UInt64(forever.timeIntervalSince1970)
        return seconds >= foreverSeconds ? forever : Date(timeIntervalSince1970: TimeInterval(seconds))
    }

    /// Orders option names by their bytes, as OpenSSH's `strcmp` does.
    static func precedes(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }

    /// Encodes critical options or extensions: sorted `(string name, string data)` pairs, where data
    /// is empty for an empty value and a string holding the value otherwise.
    static func encodeOptions(_ options: [String: String]) -> [UInt8] {
        var writer = SSHWireWriter()
        for name in options.keys.sorted(by: precedes) {
            writer.writeString(name)
            let value = options[name] ?? ""
            if value.isEmpty {
                writer.writeString([UInt8]())
            } else {
                var inner = SSHWireWriter()
                inner.writeString(value)
                writer.writeString(inner.bytes)
            }
        }
        return writer.bytes
    }

    /// Decodes what ``encodeOptions(_:)`` writes; names must be strictly ascending (sorted, no
    /// repeats), and non-empty data must be exactly one string.
    static func decodeOptions(_ bytes: [UInt8], what: String) throws -> [String: String] {
        var reader = SSHWireReader(bytes)
        var options: [String: String] = [:]
        var previous: String?
        while !reader.isAtEnd {
            let name = try reader.readUTF8String()
            if let previous, !precedes(previous, name) {
                throw TeleportError.badParameter("SSH certificate \(what) are not sorted or repeat \(name)")
            }
            previous = name
            let data = try reader.readString()
            if data.isEmpty {
                options[name] = ""
            } else {
                var inner = SSHWireReader(data)
                options[name] = try inner.readUTF8String()
                try inner.expectEnd("SSH certificate \(what) value of \(name)")
            }
        }
        return options
    }
}
