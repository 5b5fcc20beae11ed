import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import TeleportSSH
import TeleportTunnel
import X509

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
            let upstream = try await dialService(database, on: channel.eventLoop)
            let handoff = DatabaseHandoff(
                userCertificatePEM: try certificate.pemText(), clientAddress: channel.remoteAddress.map { "\($0)" } ?? "",
                parameters: request.parameters, protocol: service.protocol.rawValue)
            let frame = try handoff.frame()
            // The upstream may live on another loop (a tunnel channel lives on its tunnel's): each
            // side's handler is added on its own loop, the client's first (it still reads nothing),
            // so nothing the service answers can arrive before there is somewhere to put it.
            let (clientSide, upstreamSide) = GlueHandler.matchedPair()
            do {
                try await channel.pipeline.addHandler(clientSide).get()
                try await upstream.pipeline.addHandler(upstreamSide).get()
                try await upstream.writeAndFlush(upstream.allocator.buffer(bytes: frame)).get()
            } catch {
                upstream.close(promise: nil)
                throw error
            }
            try await channel.eventLoop.submit {
                relay()
                _ = channel.setOption(.autoRead, value: true)
                channel.read()
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

    /// Mutual TLS to the service of `database` on `loop` (TCP to `spec.addr`, or a `db` channel
    /// of its reverse tunnel when `spec.use_tunnel`); its certificate must be the `Db` identity of
    /// the record's host of this cluster.
    func dialService(_ database: DatabaseServer, on loop: any EventLoop) async throws -> any Channel {
        let hostID = database.spec.hostID
        let handshake = loop.makePromise(of: Void.self)
        let context = service.serviceContext
        let channel: any Channel
        if database.spec.useTunnel == true {
            guard let tunnels = service.tunnels else {
                throw TeleportError.connectionProblem("database \(database.name) is reached through a reverse tunnel, and this proxy serves none")
            }
            do {
                channel = try await tunnels.openChannel(to: hostID, service: .database, originator: nil) { channel in
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(TLSHandshakeWatcher(done: handshake))
                }.get()
            } catch {
                handshake.fail(error)
                throw TeleportError.connectionProblem(
                    "cannot reach the database service of \(database.name) through its reverse tunnel: \((error as? TeleportError)?.message ?? "\(error)")")
            }
        } else {
            guard let addr = database.spec.addr, !addr.isEmpty else {
                throw TeleportError.connectionProblem("database \(database.name) has no database service address to reach")
            }
            let target = try HostPort.parse(addr, defaultPort: 3029, key: "db_server \(database.name) spec.addr")
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

