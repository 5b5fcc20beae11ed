import Hummingbird
import NIOCore
import Synchronization
import Logging
import NIOSSL
import TeleportAPI
import TeleportCrypto
import X509

/// Turns the TLS client certificate (already verified against the cluster CAs by the TLS layer)
/// into a ``Caller``: the CA that signed it decides between user and cluster member. Nothing in
/// the request (headers, body) can change who the caller is.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = AuthRequestContext
    let auth: AuthServer
    /// Where the client certificate comes from (``PeerCertificateSource/tls`` outside tests).
    let peerCertificates: PeerCertificateSource
    /// User callers by connection: a client keeps its connection for many requests, and its
    /// certificate cannot change within one TLS session. Hosts are checked per request.
    let connections = ConnectionCallers()

    func handle(
        _ request: Request, context: AuthRequestContext, next: (Request, AuthRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        do {
            if let known = connections.caller(for: context.channel) {
                context.caller = known
            } else {
                let caller = try await caller(of: context)
                // A host (node, proxy, other agents) is checked on every request: its identity may be
                // removed (`tctl rm node`) or rotated while it keeps a connection, and its next
                // request must learn it. A user's certificate cannot change within a connection.
                if caller.kind == .user { connections.remember(caller, for: context.channel) }
                context.caller = caller
            }
            if let field = HTTPFields.Element.Name(AuthAPI.webSessionHeader), let sessionID = request.headers[field] {
                context.caller = try await webSessionUser(sessionID, for: context.caller)
            }
        } catch let error as TeleportError {
            return APIResponse.error(error)
        }
        return try await next(request, context)
    }

    /// The user of a web session, for a proxy that acts on its behalf: the session must be valid
    /// (this renews it, like any use). Only a proxy may ask: nobody else sees web session ids.
    func webSessionUser(_ sessionID: String, for caller: Caller?) async throws -> Caller {
        guard let caller, caller.kind == .system(.proxy) else {
            throw TeleportError.accessDenied("only a proxy may act for a web session (\(AuthAPI.webSessionHeader))")
        }
        let info = try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: sessionID))
        return Caller(
            kind: .user, identity: X509Identity(username: info.user, roles: info.roles, logins: info.logins, clusterName: auth.clusterName),
            webSessionID: sessionID)
    }

    func caller(of context: AuthRequestContext) async throws -> Caller {
        guard let leaf = try await peerCertificates.read(context.channel) else {
            throw TeleportError.accessDenied("a client certificate is required")
        }
        let identity = try X509Identity(certificate: leaf)
        guard identity.clusterName == auth.clusterName else {
            throw TeleportError.accessDenied("the client certificate belongs to another cluster (\(identity.clusterName))")
        }
        if try await auth.signedByTrusted(.host, leaf) {
            guard let role = identity.systemRole else {
                throw TeleportError.accessDenied("a host certificate must carry exactly one system role")
            }
            if role == .node || role == .proxy,
                try await !auth.isCurrentHostIdentity(leaf, hostID: identity.username, role: role)
            {
                throw TeleportError.accessDenied(
                    "this host's identity was removed from the cluster: join again with a new token (tctl nodes add)")
            }
            return Caller(kind: .system(role), identity: identity)
        }
        if try await auth.signedByTrusted(.user, leaf) {
            return Caller(kind: .user, identity: identity)
        }
        throw TeleportError.accessDenied("the client certificate is not signed by this cluster's CAs")
    }
}

/// The authenticated caller of each open connection; an entry goes when its connection closes.
final class ConnectionCallers: Sendable {
    private let callers = Mutex<[ObjectIdentifier: Caller]>([:])

    func caller(for channel: any Channel) -> Caller? {
        callers.withLock { $0[ObjectIdentifier(channel)] }
    }

    func remember(_ caller: Caller, for channel: any Channel) {
        let id = ObjectIdentifier(channel)
        callers.withLock { $0[id] = caller }
        channel.closeFuture.whenComplete { [weak self] _ in
            _ = self?.callers.withLock { $0.removeValue(forKey: id) }
        }
        // Replies are written as head and body: without TCP_NODELAY the second waits for the
        // client's delayed ACK (~40 ms a request on a kept-alive connection).
        _ = channel.setOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
    }
}
