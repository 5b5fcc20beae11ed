public import Logging
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
public import ServiceLifecycle
public import TeleportAPI
public import TeleportAuthClient
import TeleportCrypto
public import TeleportSSH
public import TeleportTunnel
import TeleportWire
import X509

/// A database protocol's listener on the proxy: `proxy_service.postgres_listen_addr`
/// (PostgreSQL: `psql` with the files `tsh db config` prints) or `mysql_listen_addr` (MySQL and
/// MariaDB clients). The protocol's first handler (``PostgresFrontGate``, ``MySQLFrontGate``)
/// requires TLS with a client certificate from the cluster's CAs and reads the client's start-up
/// (user, database); then the proxy checks that the certificate is a user's and carries a route
/// to a registered database of this protocol, and forwards the session to that database's
/// service (mutual TLS with host identities), which checks the roles. A client that skips TLS,
/// a malformed or oversized start-up and a certificate without a route are refused with the
/// protocol's own error message.
public struct DatabaseProxyService: Service, CustomStringConvertible {
    public var description: String { "DatabaseProxyService(\(`protocol`.rawValue))" }

    let `protocol`: DatabaseServer.DatabaseProtocol
    let host: String
    let port: Int
    let clusterName: String
    /// The client-facing TLS: the proxy's host identity, client certificates required.
    let serverContexts: TLSContextSource
    /// The same for the web port's ALPN route (which also agrees on the protocol's ALPN value).
    let alpnContexts: TLSContextSource
    /// The proxy's identity towards database services.
    let serviceContexts: TLSContextSource
    /// The context for the next client connection.
    var serverContext: NIOSSLContext { serverContexts.current }
    /// The context for the next connection to a database service.
    var serviceContext: NIOSSLContext { serviceContexts.current }
    let auth: AuthClient
    let audit: SSHAudit?
    /// The proxy's tunnel server: database services behind NAT are reached through it.
    let tunnels: ReverseTunnelServer?
    let logger: Logger

    /// The configuration key of the protocol's listener.
    var listenKey: String { "proxy_service.\(`protocol` == .postgres ? "postgres" : "mysql")_listen_addr" }

    /// Creates the listener for `protocol`; `identity` is the proxy's host identity.
    public init(
        protocol: DatabaseServer.DatabaseProtocol, host: String, port: Int, clusterName: String, identity: ClientIdentity, auth: AuthClient,
        audit: SSHAudit?, tunnels: ReverseTunnelServer? = nil, logger: Logger
    ) throws {
        self.tunnels = tunnels
        self.protocol = `protocol`
        self.host = host
        self.port = port
        self.clusterName = clusterName
        self.auth = auth
        self.audit = audit
        self.logger = logger
        let built = try Self.contexts(protocol: `protocol`, identity: identity)
        serverContexts = TLSContextSource(built.server)
        alpnContexts = TLSContextSource(built.alpn)
        serviceContexts = TLSContextSource(built.service)
    }

    /// Presents `identity` and trusts its CAs (the cluster's user and host CAs, both sets during a
    /// rotation) from the next connection on; open sessions keep their contexts.
    public func renew(identity: ClientIdentity) throws {
        let built = try Self.contexts(protocol: `protocol`, identity: identity)
        serverContexts.set(built.server)
        alpnContexts.set(built.alpn)
        serviceContexts.set(built.service)
    }

    /// The client-facing, ALPN and service-facing contexts of `identity`.
    static func contexts(
        protocol: DatabaseServer.DatabaseProtocol, identity: ClientIdentity
    ) throws -> (server: NIOSSLContext, alpn: NIOSSLContext, service: NIOSSLContext) {
        do {
            let chain = try NIOSSLCertificate.fromPEMBytes(Array(identity.certificatePEM.utf8)).map { NIOSSLCertificateSource.certificate($0) }
            let key = NIOSSLPrivateKeySource.privateKey(try NIOSSLPrivateKey(bytes: Array(identity.keyPEM.utf8), format: .pem))
            let roots = NIOSSLTrustRoots.certificates(try identity.trustedCAPEMs.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) })
            var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
            server.trustRoots = roots
            server.certificateVerification = .noHostnameVerification
            server.minimumTLSVersion = .tlsv12
            let serverContext = try NIOSSLContext(configuration: server)
            server.applicationProtocols = [`protocol`.alpnProtocol]
            let alpnContext = try NIOSSLContext(configuration: server)
            var client = TLSConfiguration.makeClientConfiguration()
            client.certificateChain = chain
            client.privateKey = key
            client.trustRoots = roots
            client.certificateVerification = .noHostnameVerification
            client.minimumTLSVersion = .tlsv12
            return (serverContext, alpnContext, try NIOSSLContext(configuration: client))
        } catch {
            throw TeleportError.badParameter("the proxy's identity cannot be loaded for \(`protocol` == .postgres ? "postgres" : "mysql")_listen_addr (data_dir/keys/proxy.*): \(error)")
        }
    }

    /// The web port's route for this protocol (ALPN ``DatabaseServer/DatabaseProtocol/alpnProtocol``):
    /// TLS with a required client certificate from the cluster's CAs (a client without one fails
    /// the handshake), then the protocol's gate with TLS already up, and the same session path as
    /// the protocol's own listener.
    public var alpnRoute: ALPNRoute {
        let sessions = DatabaseProxySessions(service: self)
        let contexts = serverContexts
        return .terminateCurrent(alpnContexts) { channel in
            countConnection("proxy \(sessions.service.protocol.rawValue)", channel)
            let context = contexts.current
            return channel.eventLoop.makeCompletedFuture {
                switch sessions.service.protocol {
                case .postgres:
                    try channel.pipeline.syncOperations.addHandler(PostgresFrontGate(tls: context, sessions: sessions, tlsEstablished: true))
                case .mysql:
                    try channel.pipeline.syncOperations.addHandler(MySQLFrontGate(tls: context, sessions: sessions, tlsEstablished: true))
                }
            }
        }
    }

    public func run() async throws {
        let server: any Channel
        let contexts = serverContexts
        let sessions = DatabaseProxySessions(service: self)
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    countConnection("proxy \(sessions.service.protocol.rawValue)", channel)
                    let context = contexts.current
                    return channel.eventLoop.makeCompletedFuture {
                        switch sessions.service.protocol {
                        case .postgres:
                            try channel.pipeline.syncOperations.addHandler(PostgresFrontGate(tls: context, sessions: sessions))
                        case .mysql:
                            try channel.pipeline.syncOperations.addHandler(MySQLFrontGate(tls: context, sessions: sessions))
                        }
                    }
                }
                .bindInheritable(host: host, port: port)
        } catch {
            throw ListenError.describe(error, errno: listenErrno(error), address: HostPort.join(host, port), key: listenKey)
        }
        logger.info("database proxy is listening", metadata: ["tp.listen": "\(HostPort.join(host, port))", "tp.db_protocol": "\(`protocol`.rawValue)"])
        try? await gracefulShutdown()
        try? await server.close()
    }
}
