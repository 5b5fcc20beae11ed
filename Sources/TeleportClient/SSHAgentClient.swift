public import Foundation
// glibc's `struct timeval` is declared by headers that CoreFoundation's and Dispatch's C modules
// include too; with MemberImportVisibility the compiler may name any of them its defining module.
#if canImport(CoreFoundation)
    import CoreFoundation
#endif
#if canImport(CDispatch)
    import CDispatch
#endif
public import TeleportCrypto
import Crypto
import TeleportAPI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A client of the SSH agent protocol (draft-miller-ssh-agent) over the agent's Unix socket
/// (`SSH_AUTH_SOCK`): add a key with its certificate, remove it, list identities.
///
/// One connection per call, blocking I/O with a timeout: the agent is local and answers at once,
/// and `tsh` talks to it once or twice per command.
public struct SSHAgentClient: Sendable {
    /// The agent's socket path.
    public let socketPath: String
    /// The limit for one request and its reply.
    public let timeoutSeconds: Int

    /// Messages and constraints used here (draft-miller-ssh-agent section 5.1).
    enum Message {
        static let failure: UInt8 = 5
        static let success: UInt8 = 6
        static let requestIdentities: UInt8 = 11
        static let identitiesAnswer: UInt8 = 12
        static let removeIdentity: UInt8 = 18
        static let addIdentityConstrained: UInt8 = 25
        static let constrainLifetime: UInt8 = 1
    }

    /// The largest reply accepted.
    static let maximumReply = 256 * 1024

    /// A client for the agent at `socketPath`.
    public init(socketPath: String, timeoutSeconds: Int = 10) {
        self.socketPath = socketPath
        self.timeoutSeconds = timeoutSeconds
    }

    /// The agent named by `SSH_AUTH_SOCK`, if set.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> SSHAgentClient? {
        guard let path = environment["SSH_AUTH_SOCK"], !path.isEmpty else { return nil }
        return SSHAgentClient(socketPath: path)
    }

    /// One identity the agent holds.
    public struct Identity: Sendable, Equatable {
        /// The public key or certificate blob.
        public var blob: Data
        /// The comment.
        public var comment: String
    }

    /// Adds an Ed25519 private key with its certificate (`SSH2_AGENTC_ADD_ID_CONSTRAINED`), to be
    /// forgotten by the agent at the certificate's expiry.
    ///
    /// - Parameters:
    ///   - key: The private key; must be the one the certificate certifies.
    ///   - certificate: The certificate.
    ///   - comment: Shown by `ssh-add -l`.
    ///   - now: The current time, to compute the lifetime.
    /// - Throws: ``TeleportError`` `badParameter` for a non-Ed25519 key, a mismatch or an expired
    ///   certificate; `connectionProblem` when the agent cannot be reached or refuses the key.
    public func add(key: OpenSSHPrivateKey, certificate: SSHCertificate, comment: String, now: Date = Date()) throws {
        guard case .ed25519(let privateKey) = key.key else {
            throw TeleportError.badParameter("only Ed25519 keys are added to the SSH agent")
        }
        guard certificate.publicKey == key.publicKey else {
            throw TeleportError.badParameter("the certificate does not certify this key")
        }
        let lifetime = certificate.validBefore.timeIntervalSince(now).rounded(.down)
        guard lifetime >= 1 else { throw TeleportError.badParameter("the certificate has expired") }
        var writer = SSHWireWriter()
        writer.writeByte(Message.addIdentityConstrained)
        writer.writeString(certificate.algorithmName)
        writer.writeString(Array(certificate.wireBytes))
        let publicBytes = Array(privateKey.publicKey.rawRepresentation)
        writer.writeString(publicBytes)
        writer.writeString(Array(privateKey.rawRepresentation) + publicBytes)
        writer.writeString(comment)
        writer.writeByte(Message.constrainLifetime)
        writer.writeUInt32(UInt32(min(lifetime, Double(UInt32.max))))
        let reply = try exchange(writer.bytes)
        guard reply.first == Message.success else {
            throw TeleportError.connectionProblem("the SSH agent at \(socketPath) refused the key")
        }
    }

    /// Removes the identity with public key or certificate blob `blob`
    /// (`SSH2_AGENTC_REMOVE_IDENTITY`).
    ///
    /// - Returns: true when the agent removed it, false when it did not hold it.
    @discardableResult
    public func remove(blob: Data) throws -> Bool {
        var writer = SSHWireWriter()
        writer.writeByte(Message.removeIdentity)
        writer.writeString(Array(blob))
        return try exchange(writer.bytes).first == Message.success
    }

    /// The identities the agent holds (`SSH2_AGENTC_REQUEST_IDENTITIES`).
    public func list() throws -> [Identity] {
        let reply = try exchange([Message.requestIdentities])
        var reader = SSHWireReader(reply)
        guard try reader.readByte() == Message.identitiesAnswer else {
            throw TeleportError.connectionProblem("the SSH agent at \(socketPath) did not list its keys")
        }
        let count = try reader.readUInt32()
        var identities: [Identity] = []
        for _ in 0..<count {
            let blob = try reader.readString()
            let comment = try reader.readUTF8String()
            identities.append(Identity(blob: Data(blob), comment: comment))
        }
        return identities
    }

    /// Sends one request and returns the reply's payload.
    func exchange(_ request: [UInt8]) throws -> [UInt8] {
        let fd = try openSocket()
        defer { close(fd) }
        var frame = SSHWireWriter()
        frame.writeUInt32(UInt32(request.count))
        frame.writeRaw(request)
        try writeAll(fd, frame.bytes)
        let header = try readExactly(fd, count: 4)
        let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        guard length > 0, length <= Self.maximumReply else {
            throw TeleportError.connectionProblem("the SSH agent at \(socketPath) sent a malformed reply")
        }
        return try readExactly(fd, count: length)
    }

    func openSocket() throws -> Int32 {
        #if canImport(Glibc)
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw TeleportError.connectionProblem("cannot create a socket for the SSH agent (errno \(errno))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else {
            close(fd)
            throw TeleportError.badParameter("SSH_AUTH_SOCK \(socketPath) is too long for a Unix socket path")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in pathBytes.enumerated() { buffer[index] = byte }
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw TeleportError.connectionProblem(
                "cannot reach the SSH agent at \(socketPath): \(String(cString: strerror(code))) (is SSH_AUTH_SOCK stale?)")
        }
        return fd
    }

    func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else {
                throw TeleportError.connectionProblem("writing to the SSH agent at \(socketPath) failed (errno \(errno))")
            }
            offset += written
        }
    }

    func readExactly(_ fd: Int32, count: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let received = buffer[offset...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received < 0, errno == EINTR { continue }
            guard received > 0 else {
                throw TeleportError.connectionProblem("the SSH agent at \(socketPath) closed the connection or timed out")
            }
            offset += received
        }
        return buffer
    }
}
