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
import TeleportTunnel
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
    let serverContext: NIOSSLContext
    /// The proxy's identity towards database services.
    let serviceContext: NIOSSLContext
    let auth: AuthClient
    let audit: SSHAudit?
    let logger: Logger

    /// The configuration key of the protocol's listener.
    var listenKey: String { "proxy_service.\(`protocol` == .postgres ? "postgres" : "mysql")_listen_addr" }

    /// Creates the listener for `protocol`; `identity` is the proxy's host identity.
    public init(
        protocol: DatabaseServer.DatabaseProtocol, host: String, port: Int, clusterName: String, identity: ClientIdentity, auth: AuthClient,
        audit: SSHAudit?, logger: Logger
    ) throws {
        self.protocol = `protocol`
        self.host = host
        self.port = port
        self.clusterName = clusterName
        self.auth = auth
        self.audit = audit
        self.logger = logger
        do {
            let chain = try NIOSSLCertificate.fromPEMBytes(Array(identity.certificatePEM.utf8)).map { NIOSSLCertificateSource.certificate($0) }
            let key = NIOSSLPrivateKeySource.privateKey(try NIOSSLPrivateKey(bytes: Array(identity.keyPEM.utf8), format: .pem))
            let roots = NIOSSLTrustRoots.certificates(try identity.trustedCAPEMs.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) })
            var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
            server.trustRoots = roots
            server.certificateVerification = .noHostnameVerification
            server.minimumTLSVersion = .tlsv12
            serverContext = try NIOSSLContext(configuration: server)
            var client = TLSConfiguration.makeClientConfiguration()
            client.certificateChain = chain
            client.privateKey = key
            client.trustRoots = roots
            client.certificateVerification = .noHostnameVerification
            client.minimumTLSVersion = .tlsv12
            serviceContext = try NIOSSLContext(configuration: client)
        } catch {
            throw TeleportError.badParameter("the proxy's identity cannot be loaded for \(`protocol` == .postgres ? "postgres" : "mysql")_listen_addr (data_dir/keys/proxy.*): \(error)")
        }
    }

    public func run() async throws {
        let server: any Channel
        let context = serverContext
        let sessions = DatabaseProxySessions(service: self)
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        switch sessions.service.protocol {
                        case .postgres:
                            try channel.pipeline.syncOperations.addHandler(PostgresFrontGate(tls: context, sessions: sessions))
                        case .mysql:
                            try channel.pipeline.syncOperations.addHandler(MySQLFrontGate(tls: context, sessions: sessions))
                        }
                    }
                }
                .bind(host: host, port: port).get()
        } catch let error as IOError {
            throw ListenError.describe(error, errno: error.errnoCode, address: HostPort.join(host, port), key: listenKey)
        }
        logger.info("database proxy is listening", metadata: ["tp.listen": "\(HostPort.join(host, port))", "tp.db_protocol": "\(`protocol`.rawValue)"])
        try? await gracefulShutdown()
        try? await server.close()
    }
}

/// What a protocol's gate hands over once the client's start-up is read: its parameters (for
/// the ``DatabaseHandoff``) and how to word a refusal in the protocol (`accessDenied` or not,
/// the one-line message).
struct DatabaseProxyRequest: Sendable {
    /// The client's start-up parameters, in order (`[name, value]`).
    var parameters: [[String]]
    /// The protocol's error message for a refusal, as bytes for the client.
    var refusal: @Sendable (_ accessDenied: Bool, _ message: String) -> [UInt8]
}

/// The proxy's side of one database session after the client's start-up.
struct DatabaseProxySessions: Sendable {
    let service: DatabaseProxyService

    func start(channel: any Channel, request: DatabaseProxyRequest, relay: @escaping @Sendable () -> Void) {
        Task { await serve(channel: channel, request: request, relay: relay) }
    }

    func serve(channel: any Channel, request: DatabaseProxyRequest, relay: @escaping @Sendable () -> Void) async {
        var user = ""
        var databaseName = ""
        do {
            guard let peer = try await channel.nioSSL_peerCertificate().get() else {
                throw TeleportError.accessDenied("a client certificate is required: run tsh db login and use tsh db config")
            }
            let certificate = try Certificate.fromDER(try peer.toDERBytes())
            let identity = try X509Identity(certificate: certificate)
            user = identity.username
            guard identity.clusterName == service.clusterName, identity.systemRole == nil else {
                throw TeleportError.accessDenied("the certificate is not a user certificate of cluster \(service.clusterName)")
            }
            guard let route = identity.routeToDatabase else {
                throw TeleportError.accessDenied("the certificate carries no database route: run tsh db login NAME first")
            }
            databaseName = route.serviceName
            guard route.protocol == service.protocol.rawValue else {
                throw TeleportError.badParameter(
                    "the certificate is for a \(route.protocol) database; this port speaks \(service.protocol == .postgres ? "PostgreSQL" : "MySQL")")
            }
            guard let database = try await service.auth.databases().first(where: { $0.name == route.serviceName && $0.spec.protocol == service.protocol })
            else {
                throw TeleportError.notFound("database \(route.serviceName) is not registered (is its database service running?)")
            }
            guard let addr = database.spec.addr, !addr.isEmpty else {
                throw TeleportError.connectionProblem("database \(database.name) has no database service address to reach")
            }
            let target = try HostPort.parse(addr, defaultPort: 3029, key: "db_server \(database.name) spec.addr")
            let upstream = try await dialService(target, hostID: database.spec.hostID, on: channel.eventLoop)
            let handoff = DatabaseHandoff(
                userCertificatePEM: try certificate.pemText(), clientAddress: channel.remoteAddress.map { "\($0)" } ?? "",
                parameters: request.parameters, protocol: service.protocol.rawValue)
            let frame = try handoff.frame()
            try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
                let (clientSide, upstreamSide) = GlueHandler.matchedPair()
                do {
                    upstream.writeAndFlush(upstream.allocator.buffer(bytes: frame), promise: nil)
                    try upstream.pipeline.syncOperations.addHandler(upstreamSide)
                    try channel.pipeline.syncOperations.addHandler(clientSide)
                } catch {
                    upstream.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(error)
                }
                relay()
                _ = channel.setOption(.autoRead, value: true)
                channel.read()
                return channel.eventLoop.makeSucceededVoidFuture()
            }.get()
        } catch {
            let message = (error as? TeleportError)?.message ?? "\(error)"
            service.logger.info("database connection refused: \(message)", metadata: ["tp.user": "\(user)"])
            if let audit = service.audit {
                audit.add(
                    AuditEventType.dbSessionStartFailure,
                    [
                        "user": .string(user), "db_service": .string(databaseName), "db_protocol": .string(service.protocol.rawValue), "success": false,
                        "error": .string(message), "addr.remote": .string(channel.remoteAddress.map { "\($0)" } ?? ""),
                    ])
            }
            let reply = request.refusal((error as? TeleportError)?.code == .accessDenied, message)
            _ = try? await channel.writeAndFlush(channel.allocator.buffer(bytes: reply))
            try? await channel.close()
        }
    }

    /// Mutual TLS to the database service at `target` on `loop`; its certificate must be the
    /// `Db` identity of host `hostID` of this cluster.
    func dialService(_ target: (host: String, port: Int), hostID: String, on loop: any EventLoop) async throws -> any Channel {
        let handshake = loop.makePromise(of: Void.self)
        let context = service.serviceContext
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.seconds(10))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                        try channel.pipeline.syncOperations.addHandler(TLSHandshakeWatcher(done: handshake))
                    }
                }
                .connect(host: target.host, port: target.port).get()
        } catch {
            handshake.fail(error)
            throw TeleportError.connectionProblem("cannot reach the database service at \(HostPort.join(target.host, target.port)): \(error)")
        }
        do {
            try await handshake.futureResult.get()
            guard let peer = try await channel.nioSSL_peerCertificate().get() else {
                throw TeleportError.accessDenied("the database service presented no certificate")
            }
            let identity = try X509Identity(certificate: try Certificate.fromDER(try peer.toDERBytes()))
            guard identity.clusterName == service.clusterName, identity.systemRole == .db,
                identity.username == "\(hostID).\(service.clusterName)"
            else {
                throw TeleportError.accessDenied("the database service's certificate is not the Db identity of host \(hostID)")
            }
        } catch {
            channel.close(promise: nil)
            if let error = error as? TeleportError { throw error }
            throw TeleportError.connectionProblem("the TLS handshake with the database service failed: \(error)")
        }
        return channel
    }
}

