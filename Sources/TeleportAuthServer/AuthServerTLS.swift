import Crypto
import Foundation
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import Synchronization
import TeleportAPI
import TeleportCrypto
import X509

/// The auth API's TLS context, read for each new connection: its client CA roots are the user and
/// host CAs' trusted certificates (both key sets during a rotation), and its own certificate is
/// issued again from the host CA's new keys once a rotation reaches `update_servers` (and after a
/// rollback). ``refresh()`` runs every second beside the server.
final class AuthServerTLS: Sendable {
    let auth: AuthServer
    let names: TLSAuthority.ServerNames
    let hostID: String
    private struct State {
        var context: NIOSSLContext
        var roots: [String]
        var certificate: Certificate
        var key: P256.Signing.PrivateKey
    }
    private let state: Mutex<State>

    init(auth: AuthServer, hostID: String, names: TLSAuthority.ServerNames) async throws {
        self.auth = auth
        self.hostID = hostID
        self.names = names
        let (certificate, key) = try await Self.issue(auth: auth, hostID: hostID, names: names)
        let roots = try await Self.rootPEMs(auth)
        state = Mutex(State(context: try Self.context(certificate: certificate, key: key, roots: roots), roots: roots, certificate: certificate, key: key))
    }

    /// The context for a new connection.
    var current: NIOSSLContext { state.withLock { $0.context } }

    /// Reads the CAs; builds a new context when the trusted roots changed or the server's own
    /// certificate must come from the host CA's (new) active keys.
    func refresh() async throws {
        let roots = try await Self.rootPEMs(auth)
        let host = try await auth.certAuthority(.host)
        let (oldRoots, certificate, currentKey) = state.withLock { ($0.roots, $0.certificate, $0.key) }
        // In init and update_clients the server keeps presenting its certificate (clients may not
        // trust the new CA yet); from update_servers on (and after a rollback) it presents one from
        // the active keys.
        let active = try host.spec.activeKeys.tls.map { try Certificate.fromPEM($0.cert) }
        let signedByActive = active.contains { $0.publicKey.isValidSignature(certificate.signature, for: certificate) }
        let reissue = !signedByActive && ![.initialized, .updateClients].contains(host.rotationPhase)
        guard reissue || roots != oldRoots else { return }
        var (fresh, key) = (certificate, currentKey)
        if reissue {
            auth.forgetCachedAuthorities()
            (fresh, key) = try await Self.issue(auth: auth, hostID: hostID, names: names)
        }
        let context = try Self.context(certificate: fresh, key: key, roots: roots)
        state.withLock { $0 = State(context: context, roots: roots, certificate: fresh, key: key) }
    }

    static func rootPEMs(_ auth: AuthServer) async throws -> [String] {
        var pems: [String] = []
        for type in CertAuthority.CAType.clusterTrust {
            pems += try await auth.certAuthority(type).trustedKeys.tls.map(\.cert)
        }
        return pems
    }

    static func issue(auth: AuthServer, hostID: String, names: TLSAuthority.ServerNames) async throws -> (Certificate, P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let issued = try await auth.issueSystemIdentity(role: .auth, hostID: hostID, publicKey: key.publicKey, serverNames: names)
        return (try Certificate.fromPEM(issued.certificatePEM), key)
    }

    static func context(certificate: Certificate, key: P256.Signing.PrivateKey, roots: [String]) throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(try certificate.pemText().utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)))
        tls.trustRoots = .certificates(try roots.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) })
        // Verified when presented; only /v1/join works without one (AuthenticationMiddleware).
        tls.certificateVerification = .optionalVerification
        tls.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: tls)
    }
}

/// TLS in front of a child channel with the context current when the connection arrives.
struct ReloadingTLSChannel<BaseChannel: ServerChildChannel>: ServerChildChannel {
    typealias Value = BaseChannel.Value
    let base: BaseChannel
    let tls: AuthServerTLS

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let context = tls.current
        return channel.eventLoop.makeCompletedFuture {
            // First: the socket's end of input (TCP FIN), whether or not a TLS close_notify came before it.
            try channel.pipeline.syncOperations.addHandler(CloseWhenInputEnds())
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: BaseChannel.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension ReloadingTLSChannel: HTTPChannelHandler where BaseChannel: HTTPChannelHandler {
    var responder: HTTPChannelHandler.Responder { base.responder }
}

/// Closes an auth API connection as soon as the client's side ends. The listener allows remote
/// half-closure (the proxy's web port needs it), but no auth API client sends a request and then
/// half-closes: a client that ends its side is gone. Without this, the connection of a client that
/// kept it between requests and then closed it stayed open (CLOSE-WAIT) until the idle timeout,
/// and a stopping server waited for each one's TLS close (`shutdownTimeout`, 5 s).
final class CloseWhenInputEnds: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
