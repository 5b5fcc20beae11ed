public import NIOCore
public import NIOSSH
public import TeleportCrypto
import TeleportAPI
import Foundation

/// A user who proved possession of a key that a trusted, valid certificate certifies.
public struct SSHAuthenticatedUser: Sendable {
    /// The Teleport user (the certificate's key ID).
    public let username: String
    /// The OS login the client asked for (one of the certificate's principals).
    public let login: String
    /// The key the client signed with.
    public let publicKey: SSHPublicKey
    /// The certificate that certifies it.
    public let certificate: SSHCertificate
    /// What the checks granted (extensions, `force-command`, expiry).
    public let checked: SSHCertificateChecker.CheckedCertificate

    /// Creates the record.
    public init(username: String, login: String, publicKey: SSHPublicKey, certificate: SSHCertificate, checked: SSHCertificateChecker.CheckedCertificate) {
        self.username = username
        self.login = login
        self.publicKey = publicKey
        self.certificate = certificate
        self.checked = checked
    }

    /// Whether the certificate carries the extension `name` (`permit-port-forwarding`, ...).
    public func permits(_ name: String) -> Bool { checked.extensions[name] != nil }

    /// The Teleport roles in the certificate's `teleport-roles` extension.
    public var roles: [String] {
        guard let text = checked.extensions["teleport-roles"],
            case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)), case .array(let list)? = object["roles"]
        else { return [] }
        return list.compactMap { if case .string(let name) = $0 { name } else { nil } }
    }

    /// The user's traits in the certificate's `teleport-traits` extension (`logins` → values).
    public var traits: [String: [String]] {
        guard let text = checked.extensions["teleport-traits"],
            let traits = try? JSONDecoder().decode([String: [String]].self, from: Data(text.utf8))
        else { return [:] }
        return traits
    }
}

/// Why the roles refuse a request: a one-line reason for the user and the role-by-role reasons
/// for the audit event.
public struct AccessRefusal: Error, Sendable, Equatable {
    /// The one-line reason.
    public var reason: String
    /// One line per rule the role engine looked at.
    public var reasons: [String]

    /// Creates a refusal.
    public init(reason: String, reasons: [String] = []) {
        self.reason = reason
        self.reasons = reasons
    }
}

/// What a user asks a node for, as the role check sees it.
public enum AccessRequest: Sendable, Equatable {
    /// A shell, a command or a subsystem.
    case session
    /// scp or sftp (`ssh_file_copy`).
    case fileCopy
    /// A `direct-tcpip` or `tcpip-forward` port forward (`port_forwarding`).
    case portForwarding
}

/// Decides whether a key may log in as `login`: it looks up the certificate that certifies the key
/// (the certificate-bound key registry) and checks it as if it had been presented.
public protocol SSHUserAuthorizer: Sendable {
    /// The authenticated user, or a ``TeleportError`` (`accessDenied` as a rule) saying why not.
    func authorize(key: SSHPublicKey, login: String, clientAddress: SocketAddress?) async throws -> SSHAuthenticatedUser
}

/// Per-connection facts the SSH handlers share: the peer's addresses and, after authentication,
/// the user. Confined to the connection's event loop.
public final class SSHConnectionInfo: @unchecked Sendable {
    /// The client's address.
    public let remoteAddress: SocketAddress?
    /// The address the client connected to.
    public let localAddress: SocketAddress?
    /// Set once authentication succeeded.
    public internal(set) var user: SSHAuthenticatedUser?
    /// Called (on the event loop) once authentication succeeded.
    var onAuthenticated: (() -> Void)?

    init(remoteAddress: SocketAddress?, localAddress: SocketAddress?) {
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
    }

    /// The remote IP address without the port (`source-address` checks use it).
    public var remoteIP: String? { remoteAddress?.ipAddress }

    /// The session channels open on the connection that can show the user a notice before the
    /// server closes the connection (why a lock ended it), by channel.
    private let noticeLock = NSLock()
    private var noticeWriters: [ObjectIdentifier: @Sendable (String) -> EventLoopFuture<Void>] = [:]

    /// Registers a session channel's way to write a notice to its user (its stderr).
    package func addNoticeWriter(_ id: ObjectIdentifier, _ write: @escaping @Sendable (String) -> EventLoopFuture<Void>) {
        noticeLock.withLock { noticeWriters[id] = write }
    }

    /// Unregisters a session channel (it closed).
    package func removeNoticeWriter(_ id: ObjectIdentifier) {
        noticeLock.withLock { _ = noticeWriters.removeValue(forKey: id) }
    }

    /// Writes `text` to every open session of the connection; the futures complete once written.
    func notifySessions(_ text: String) -> [EventLoopFuture<Void>] {
        noticeLock.withLock { Array(noticeWriters.values) }.map { $0(text) }
    }
}

/// The swift-nio-ssh user-authentication delegate of our servers: public-key only; the library has
/// already verified the signature when this runs, so what remains is the certificate lookup and checks.
final class CertificateBoundKeyDelegate: NIOSSHServerUserAuthenticationDelegate, @unchecked Sendable {
    let authorizer: any SSHUserAuthorizer
    let connection: SSHConnectionInfo
    let onRefused: @Sendable (_ login: String, _ key: SSHPublicKey?, _ error: any Error) -> Void

    init(
        authorizer: any SSHUserAuthorizer, connection: SSHConnectionInfo,
        onRefused: @escaping @Sendable (String, SSHPublicKey?, any Error) -> Void, uncheckable: UncheckableOffers? = nil
    ) {
        self.authorizer = authorizer
        self.connection = connection
        self.onRefused = onRefused
        self.uncheckable = uncheckable
    }

    /// Counts the offers swift-nio-ssh refused without asking us (see ``UncheckableOffers``).
    let uncheckable: UncheckableOffers?

    var supportedAuthenticationMethods: NIOSSHAvailableUserAuthenticationMethods {
        uncheckable?.methodsRead()
        return .publicKey
    }

    func requestReceived(
        request: NIOSSHUserAuthenticationRequest, responsePromise: EventLoopPromise<NIOSSHUserAuthenticationOutcome>
    ) {
        uncheckable?.requestSeen()
        guard case .publicKey(let offer) = request.request else {
            responsePromise.succeed(.failure)
            return
        }
        let login = request.username
        let key: SSHPublicKey
        do {
            key = try SSHKeyBridge.publicKey(offer.publicKey)
        } catch {
            onRefused(login, nil, error)
            responsePromise.succeed(.failure)
            return
        }
        let authorizer = self.authorizer
        let address = connection.remoteAddress
        let connection = self.connection
        let onRefused = self.onRefused
        let loop = responsePromise.futureResult.eventLoop
        Task {
            do {
                let user = try await authorizer.authorize(key: key, login: login, clientAddress: address)
                loop.execute {
                    connection.user = user
                    connection.onAuthenticated?()
                    responsePromise.succeed(.success)
                }
            } catch {
                onRefused(login, key, error)
                responsePromise.succeed(.failure)
            }
        }
    }
}
