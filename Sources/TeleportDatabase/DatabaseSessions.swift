import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import TeleportAccess
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import TeleportSSH
import TeleportTunnel
import TeleportWire
import TeleportRecording
import TeleportEvents
import X509

/// One proxied database session at the service, from the hand-off to the relay: every check
/// happens before anything is opened upstream, and every refusal is audited and told to the
/// client as a PostgreSQL `FATAL` error.
struct DatabaseSessions: Sendable {
    let service: DatabaseService

    var configuration: DatabaseService.Configuration { service.configuration }

    /// Serves `channel` (reads stopped) whose hand-off arrived; `relay` (on the loop) lets the
    /// gate pass the client's bytes on once the upstream side is glued.
    func start(channel: any Channel, handoff: DatabaseHandoff, relay: @escaping @Sendable () -> Void) {
        Task {
            await serve(channel: channel, handoff: handoff, relay: relay)
        }
    }

    func serve(channel: any Channel, handoff: DatabaseHandoff, relay: @escaping @Sendable () -> Void) async {
        let clientProtocol = DatabaseServer.DatabaseProtocol(rawValue: handoff.protocol ?? "postgres") ?? .postgres
        var session = DatabaseAudit.Session(
            id: UUID().uuidString.lowercased(), user: "", service: "", protocol: clientProtocol.rawValue, uri: "", dbUser: "", dbName: "",
            clientAddress: handoff.clientAddress)
        var recorder: SessionRecorder?
        do {
            try await checkProxy(channel)
            let identity = try await checkUser(handoff.userCertificatePEM)
            guard let route = identity.routeToDatabase else {
                throw TeleportError.accessDenied("the certificate carries no database route: run tsh db login")
            }
            session.user = identity.username
            session.service = route.serviceName
            session.dbUser = route.username
            // The route's database name wins. Without one, PostgreSQL connects to the database
            // named like the user; MySQL to the one the client's handshake names, else to none (the
            // client may USE one later, so no name is checked then).
            switch (route.database.isEmpty, clientProtocol) {
            case (false, _): session.dbName = route.database
            case (true, .postgres): session.dbName = route.username
            case (true, .mysql): session.dbName = handoff.parameter("database") ?? ""
            }
            guard let database = configuration.databases.first(where: { $0.name == route.serviceName }) else {
                throw TeleportError.notFound("this database service does not serve \(route.serviceName)")
            }
            session.uri = database.uri
            guard database.protocol == clientProtocol, route.protocol == database.protocol.rawValue else {
                throw TeleportError.badParameter("database \(database.name) speaks \(database.protocol.rawValue), not \(route.protocol)")
            }
            let checker = AccessChecker(roles: service.cache.roles(named: identity.roles), traits: AccessChecker.templateTraits(identity.traits ?? ["logins": identity.logins]))
            let decision = try checker.checkDatabase(
                labels: service.labels(of: database), user: route.username, name: session.dbName.isEmpty ? nil : session.dbName)
            guard decision.allowed else {
                let name = session.dbName.isEmpty ? "" : " (db name \(session.dbName))"
                throw TeleportError.accessDenied(
                    "access to database \(database.name) as db user \(route.username)\(name) denied: " + decision.reasons.joined(separator: "; "))
            }
            guard service.audit.admits else {
                throw TeleportError.connectionProblem("the audit log is unavailable (events wait for the auth service): refusing to start an unaudited session")
            }
            let upstream: any Channel
            var toUpstream: [UInt8] = []
            var toClient: [UInt8] = []
            switch database.protocol {
            case .postgres:
                upstream = try await connect(database, route: route, on: channel.eventLoop)
                var parameters = handoff.parameters.compactMap { pair -> PostgresStartup.Parameter? in
                    guard pair.count == 2, pair[0] != "user", pair[0] != "database" else { return nil }
                    return PostgresStartup.Parameter(pair[0], pair[1])
                }
                parameters.insert(PostgresStartup.Parameter("user", route.username), at: 0)
                parameters.insert(PostgresStartup.Parameter("database", session.dbName), at: 1)
                toUpstream = PostgresStartup.startupMessage(parameters)
            case .mysql:
                let handshake = MySQLClientHandshake(
                    user: route.username, database: session.dbName,
                    requested: MySQLCapabilities(rawValue: handoff.parameter("capabilities").flatMap { UInt32($0) } ?? 0),
                    characterSet: handoff.parameter("charset").flatMap { UInt8($0) } ?? 45,
                    maxPacketSize: handoff.parameter("max_packet").flatMap { UInt32($0) } ?? 1 << 24)
                let ok: [UInt8]
                (upstream, ok) = try await connectMySQL(database, route: route, handshake: handshake, on: channel.eventLoop)
                toClient = MySQLPacket(sequence: mysqlSequence(handoff) &+ 1, payload: ok).bytes
            }
            let audit = service.audit
            let started = session
            // The session's statements, for `tsh recordings ls` and `tsh play` (after the audit).
            recorder = service.configuration.recordingsDirectory.flatMap { directory in
                try? SessionRecorder(
                    directory: directory,
                    header: SessionRecording.Header(
                        sid: session.id, user: session.user, login: session.dbUser, serverID: service.configuration.hostUUID,
                        serverHostname: "\(database.name) (\(database.protocol.rawValue))", start: Date(), size: ""))
            }
            let recording = recorder
            try await channel.eventLoop.flatSubmit { [toUpstream, toClient] () -> EventLoopFuture<Void> in
                let (clientSide, upstreamSide) = GlueHandler.matchedPair()
                let statements = MySQLStatementTracker()
                do {
                    if database.protocol == .mysql { try upstream.pipeline.syncOperations.addHandler(MySQLResponseTap(statements: statements)) }
                    try upstream.pipeline.syncOperations.addHandler(upstreamSide)
                    try channel.pipeline.syncOperations.addHandlers([
                        QueryTap(protocol: database.protocol, statements: statements) { text, parameters, truncated in
                            guard audit.query(started, text: text, parameters: parameters, truncated: truncated) else { return false }
                            recording?.output(text: DatabaseAudit.recorded(text, parameters: parameters))
                            return true
                        },
                        clientSide,
                    ])
                } catch {
                    upstream.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(error)
                }
                if !toUpstream.isEmpty { upstream.writeAndFlush(upstream.allocator.buffer(bytes: toUpstream), promise: nil) }
                if !toClient.isEmpty { channel.writeAndFlush(channel.allocator.buffer(bytes: toClient), promise: nil) }
                relay()
                _ = channel.setOption(.autoRead, value: true)
                channel.read()
                return channel.eventLoop.makeSucceededVoidFuture()
            }.get()
            audit.started(session)
            channel.closeFuture.whenComplete { _ in
                audit.ended(started)
                recording?.finish()
            }
            service.logger.info(
                "database session started",
                metadata: ["tp.user": "\(session.user)", "tp.db": "\(session.service)", "tp.db_user": "\(session.dbUser)"])
        } catch {
            recorder?.abandon()
            let message = (error as? TeleportError)?.message ?? "\(error)"
            service.audit.started(session, refusal: message)
            service.logger.info("database session refused: \(message)", metadata: ["tp.user": "\(session.user)"])
            let denied = (error as? TeleportError)?.code == .accessDenied
            let bytes: [UInt8]
            switch clientProtocol {
            case .postgres:
                bytes = PostgresStartup.errorResponse(code: denied ? "28000" : "08006", message: message)
            case .mysql:
                bytes = MySQLPacket(
                    sequence: mysqlSequence(handoff) &+ 1, payload: denied ? MySQLReply.accessDenied(message) : MySQLReply.unknownError(message)
                ).bytes
            }
            _ = try? await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
            try? await channel.close()
        }
    }

    /// The sequence id of the client's MySQL handshake response (2: after TLS).
    func mysqlSequence(_ handoff: DatabaseHandoff) -> UInt8 {
        handoff.parameter("sequence").flatMap { UInt8($0) } ?? 2
    }

    /// The peer of the service's mutual TLS must be a proxy of this cluster.
    func checkProxy(_ channel: any Channel) async throws {
        guard let peer = try await channel.nioSSL_peerCertificate().get() else {
            throw TeleportError.accessDenied("the connection presented no certificate")
        }
        let identity = try X509Identity(certificate: try Certificate.fromDER(try peer.toDERBytes()))
        guard identity.clusterName == configuration.clusterName, identity.systemRole == .proxy else {
            throw TeleportError.accessDenied("only the cluster's proxies connect to the database service")
        }
    }

    /// The user's certificate: this cluster's user CA signed it, it is current, and it is a user's.
    func checkUser(_ pem: String) async throws -> X509Identity {
        let certificate: Certificate
        do {
            certificate = try Certificate.fromPEM(pem)
        } catch {
            throw TeleportError.accessDenied("the user certificate cannot be read")
        }
        guard case .certAuthority(let ca) = try await service.auth.resource(kind: CertAuthority.kind, name: CertAuthority.CAType.user.rawValue)
        else { throw TeleportError.internalError("the auth service sent another kind for cert_authority/user") }
        let roots = try ca.trustedKeys.tls.map { try Certificate.fromPEM($0.cert) }
        guard roots.contains(where: { $0.publicKey.isValidSignature(certificate.signature, for: certificate) }) else {
            throw TeleportError.accessDenied("the certificate is not signed by this cluster's user CA")
        }
        let now = Date()
        guard certificate.notValidBefore <= now, now < certificate.notValidAfter else {
            throw TeleportError.accessDenied("the certificate has expired: log in again (tsh login, then tsh db login)")
        }
        let identity = try X509Identity(certificate: certificate)
        guard identity.clusterName == configuration.clusterName, identity.systemRole == nil else {
            throw TeleportError.accessDenied("the certificate is not a user certificate of this cluster")
        }
        return identity
    }

    /// The client TLS towards the database: a fresh one-hour client certificate for the database
    /// user from the db CA, the server checked per `tls.mode`; and the name to send (SNI).
    func clientTLS(_ database: DatabaseService.Database, route: X509Identity.DatabaseRoute, host: String) async throws -> (NIOSSLContext, String?) {
        let key = P256.Signing.PrivateKey()
        let signed = try await service.auth.signDatabase(
            AuthAPI.SignDatabaseRequest(
                usage: .client, user: route.username, publicKeyPEM: key.publicKey.pemRepresentation, ttlSeconds: 3600,
                keyProof: try DatabaseCertProof.sign(usage: .client, hosts: [], user: route.username, key: key, now: Date())))
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(signed.certificatePEM.utf8)).map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem))
        let caPEMs: [String]
        if let file = database.caCertFile {
            caPEMs = [try String(contentsOfFile: file, encoding: .utf8)]
        } else {
            caPEMs = signed.caPEMs
        }
        tls.trustRoots = .certificates(try caPEMs.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) })
        switch database.tlsMode {
        case .verifyFull: tls.certificateVerification = .fullVerification
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .insecure: tls.certificateVerification = .none
        }
        let context = try NIOSSLContext(configuration: tls)
        let hostname = database.tlsMode == .verifyFull ? (database.serverName ?? host) : nil
        return (context, hostname.flatMap { IPAddressBytes.parse($0) == nil ? $0 : nil })
    }

    /// Connects to a PostgreSQL database over TLS (its `SSLRequest`, then the handshake checked
    /// per `tls.mode`) with a fresh client certificate for the database user from the db CA.
    func connect(
        _ database: DatabaseService.Database, route: X509Identity.DatabaseRoute, on loop: any EventLoop
    ) async throws -> any Channel {
        let address = try HostPort.parse(database.uri, defaultPort: 5432, key: "db_service.databases[\(database.name)].uri")
        let (context, sni) = try await clientTLS(database, route: route, host: address.host)
        let ready = loop.makePromise(of: Void.self)
        let handshake = loop.makePromise(of: Void.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.seconds(10))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = try NIOSSLClientHandler(context: context, serverHostname: sni)
                        try channel.pipeline.syncOperations.addHandler(PostgresSSLInitiator(tls: handler, ready: ready))
                        try channel.pipeline.syncOperations.addHandler(TLSHandshakeWatcher(done: handshake))
                    }
                }
                .connect(host: address.host, port: address.port).get()
        } catch {
            ready.fail(error)
            handshake.fail(error)
            throw TeleportError.connectionProblem("cannot reach database \(database.name) at \(database.uri): \(error)")
        }
        do {
            try await ready.futureResult.get()
            try await handshake.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw TeleportError.connectionProblem("database \(database.name) at \(database.uri): TLS failed: \(error)")
        }
        return channel
    }

    /// Connects to a MySQL/MariaDB database and logs in as the route's database user
    /// (``MySQLClientHandshake``: TLS with the db CA client certificate, no password); returns the
    /// connection and the server's `OK` payload. A failure names the database.
    func connectMySQL(
        _ database: DatabaseService.Database, route: X509Identity.DatabaseRoute, handshake: MySQLClientHandshake, on loop: any EventLoop
    ) async throws -> (any Channel, [UInt8]) {
        let address = try HostPort.parse(database.uri, defaultPort: 3306, key: "db_service.databases[\(database.name)].uri")
        let (context, sni) = try await clientTLS(database, route: route, host: address.host)
        let done = loop.makePromise(of: [UInt8].self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.seconds(10))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let tls = try NIOSSLClientHandler(context: context, serverHostname: sni)
                        try channel.pipeline.syncOperations.addHandler(MySQLUpstreamHandshaker(machine: handshake, tls: tls, done: done))
                    }
                }
                .connect(host: address.host, port: address.port).get()
        } catch {
            done.fail(error)
            throw TeleportError.connectionProblem("cannot reach database \(database.name) at \(database.uri): \(error)")
        }
        do {
            return (channel, try await done.futureResult.get())
        } catch {
            channel.close(promise: nil)
            let reason = (error as? TeleportError)?.message ?? "\(error)"
            throw TeleportError.connectionProblem("database \(database.name) at \(database.uri): \(reason)")
        }
    }
}
