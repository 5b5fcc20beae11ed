public import Logging
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
public import ServiceLifecycle
import TeleportAPI
public import TeleportAuthClient
import TeleportCrypto
public import TeleportSSH
import TeleportTunnel
import TeleportWire
import X509

/// `proxy_service.postgres_listen_addr`: PostgreSQL clients (`psql` with the files `tsh db
/// config` prints) connect here. The proxy answers `SSLRequest` with `S`, runs TLS with a
/// required client certificate from the cluster's CAs, reads the start-up message, checks that
/// the certificate is a user's and carries a route to a registered PostgreSQL database, and
/// forwards the session to that database's service (mutual TLS with host identities), which
/// checks the roles. A client that skips TLS, a malformed or oversized start-up message and a
/// certificate without a route are refused with a PostgreSQL `FATAL` error.
public struct PostgresProxyService: Service, CustomStringConvertible {
    public var description: String { "PostgresProxyService" }

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

    /// Creates the listener; `identity` is the proxy's host identity.
    public init(
        host: String, port: Int, clusterName: String, identity: ClientIdentity, auth: AuthClient, audit: SSHAudit?, logger: Logger
    ) throws {
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
            throw TeleportError.badParameter("the proxy's identity cannot be loaded for postgres_listen_addr (data_dir/keys/proxy.*): \(error)")
        }
    }

    public func run() async throws {
        let server: any Channel
        let context = serverContext
        let sessions = PostgresProxySessions(service: self)
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    countConnection("proxy postgres", channel)
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(PostgresFrontGate(tls: context, sessions: sessions))
                    }
                }
                .bindInheritable(host: host, port: port)
        } catch {
            throw ListenError.describe(error, errno: listenErrno(error), address: HostPort.join(host, port), key: "proxy_service.postgres_listen_addr")
        }
        logger.info("PostgreSQL proxy is listening", metadata: ["tp.listen": "\(HostPort.join(host, port))"])
        try? await gracefulShutdown()
        try? await server.close()
    }
}

/// The proxy's side of one PostgreSQL session after the start-up message.
struct PostgresProxySessions: Sendable {
    let service: PostgresProxyService

    func start(channel: any Channel, parameters: [PostgresStartup.Parameter], relay: @escaping @Sendable () -> Void) {
        Task { await serve(channel: channel, parameters: parameters, relay: relay) }
    }

    func serve(channel: any Channel, parameters: [PostgresStartup.Parameter], relay: @escaping @Sendable () -> Void) async {
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
            guard route.protocol == DatabaseServer.DatabaseProtocol.postgres.rawValue else {
                throw TeleportError.badParameter("the certificate is for a \(route.protocol) database; this port speaks PostgreSQL")
            }
            guard let database = try await service.auth.databases().first(where: { $0.name == route.serviceName }) else {
                throw TeleportError.notFound("database \(route.serviceName) is not registered (is its database service running?)")
            }
            guard let addr = database.spec.addr, !addr.isEmpty else {
                throw TeleportError.connectionProblem("database \(database.name) has no database service address to reach")
            }
            let target = try HostPort.parse(addr, defaultPort: 3029, key: "db_server \(database.name) spec.addr")
            let upstream = try await dialService(target, hostID: database.spec.hostID, on: channel.eventLoop)
            let handoff = DatabaseHandoff(
                userCertificatePEM: try certificate.pemText(), clientAddress: channel.remoteAddress.map { "\($0)" } ?? "",
                parameters: parameters.map { [$0.name, $0.value] })
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
            service.logger.info("PostgreSQL connection refused: \(message)", metadata: ["tp.user": "\(user)"])
            if let audit = service.audit {
                audit.add(
                    AuditEventType.dbSessionStartFailure,
                    [
                        "user": .string(user), "db_service": .string(databaseName), "db_protocol": "postgres", "success": false,
                        "error": .string(message), "addr.remote": .string(channel.remoteAddress.map { "\($0)" } ?? ""),
                    ])
            }
            let code = (error as? TeleportError)?.code == .accessDenied ? "28000" : "08006"
            _ = try? await channel.writeAndFlush(channel.allocator.buffer(bytes: PostgresStartup.errorResponse(code: code, message: message)))
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

/// The first handler of a PostgreSQL client connection: `SSLRequest` → `S` and TLS in front of
/// itself (`GSSENCRequest` → `N`); then the start-up message (at most
/// ``PostgresStartup/maxLength`` bytes), after which it stops reading and hands the session to
/// ``PostgresProxySessions``; bytes that arrive meanwhile are held (at most 1 MiB) and passed on
/// once the session is relayed. A start-up message before TLS gets a `FATAL` error.
final class PostgresFrontGate: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    static let maxHeldBytes = 1 << 20

    private enum State {
        case beforeTLS
        case startup
        case deciding
        case relaying
    }

    private var state = State.beforeTLS
    private var bytes: [UInt8] = []
    private var held: [ByteBuffer] = []
    private var heldCount = 0
    let tls: NIOSSLContext
    let sessions: PostgresProxySessions

    init(tls: NIOSSLContext, sessions: PostgresProxySessions) {
        self.tls = tls
        self.sessions = sessions
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        switch state {
        case .relaying:
            context.fireChannelRead(data)
        case .deciding:
            heldCount += buffer.readableBytes
            guard heldCount <= Self.maxHeldBytes else {
                context.close(promise: nil)
                return
            }
            held.append(buffer)
        case .beforeTLS, .startup:
            bytes += buffer.readableBytesView
            parse(context: context)
        }
    }

    private func parse(context: ChannelHandlerContext) {
        let (message, consumed) = PostgresStartup.parse(bytes)
        switch message {
        case .needMoreData:
            return
        case .invalid(let reason):
            refuse(context: context, reason)
        case .cancelRequest:
            context.close(promise: nil)
        case .gssEncRequest:
            guard state == .beforeTLS else { return refuse(context: context, "GSSENCRequest after TLS") }
            bytes.removeFirst(consumed)
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: [UInt8(ascii: "N")])), promise: nil)
            if !bytes.isEmpty { parse(context: context) }
        case .sslRequest:
            guard state == .beforeTLS, consumed == bytes.count else {
                return refuse(context: context, "unexpected bytes around the SSLRequest")
            }
            bytes = []
            state = .startup
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: [UInt8(ascii: "S")])), promise: nil)
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
            } catch {
                context.close(promise: nil)
            }
        case .startup(let parameters):
            guard state == .startup else {
                return refuse(context: context, "this proxy accepts PostgreSQL connections over TLS only: use sslmode=verify-ca with tsh db config's files, or tsh db connect")
            }
            state = .deciding
            if consumed < bytes.count {
                let rest = Array(bytes[consumed...])
                held.append(context.channel.allocator.buffer(bytes: rest))
                heldCount = rest.count
            }
            bytes = []
            _ = context.channel.setOption(.autoRead, value: false)
            let gate = NIOLoopBound(self, eventLoop: context.eventLoop)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            sessions.start(channel: context.channel, parameters: parameters) {
                gate.value.release(context: bound.value)
            }
        }
    }

    private func refuse(context: ChannelHandlerContext, _ reason: String) {
        state = .deciding
        bytes = []
        let reply = PostgresStartup.errorResponse(code: "08P01", message: reason)
        let channel = context.channel
        context.writeAndFlush(NIOAny(channel.allocator.buffer(bytes: reply))).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Passes the held bytes on and lets everything through from now on (on the loop).
    func release(context: ChannelHandlerContext) {
        state = .relaying
        for buffer in held { context.fireChannelRead(NIOAny(buffer)) }
        held = []
        if heldCount > 0 { context.fireChannelReadComplete() }
        heldCount = 0
    }
}
