import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TeleportAccess
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import TeleportSSH
import X509

/// One proxied app connection at the service: the checks (the peer is a proxy; the user's
/// certificate is current, this cluster's, and routes to an app this service serves; the roles
/// allow the app's labels), then each request forwarded to the app with the rewritten headers,
/// its response streamed back, and an audit event per request. A refusal is a 403 with one line
/// naming the cause, and an `app.session.start` failure event.
struct AppSessions: Sendable {
    let service: AppService

    var configuration: AppService.Configuration { service.configuration }

    /// What an accepted session knows.
    struct Accepted: Sendable {
        var app: AppService.App
        var identity: X509Identity
        var certificatePEM: String
        var publicAddr: String
        var clientAddress: String
        /// The app's Host header and the host names its redirects may name (lower case),
        /// derived once per session rather than per request.
        var internalHost: String = ""
        var internalHosts: Set<String> = []
    }

    /// Serves one connection: the checks (``accept(channel:handoff:session:)``) in this task,
    /// then, for a web app, the requests in ``AppServiceFront`` on the connection's loop (this
    /// task waits for the connection's end); a TCP app's bytes go to a ``GlueHandler``.
    func serve(_ channel: any Channel, front: AppServiceFront, handoff: EventLoopFuture<DatabaseHandoff>) async {
        var session = AppAudit.Session(id: UUID().uuidString.lowercased(), user: "", app: "", publicAddr: "", uri: "", clientAddress: "")
        let loop = channel.eventLoop
        do {
            let accepted: Accepted
            do {
                accepted = try await accept(channel: channel, handoff: handoff, session: &session)
            } catch {
                let message = (error as? TeleportError)?.message ?? "\(error)"
                service.audit.started(session, refusal: message)
                service.logger.info("app session refused: \(message)", metadata: ["tp.user": "\(session.user)", "tp.app": "\(session.app)"])
                // A TCP client speaks no HTTP: the connection just closes.
                if try await Self.holdingTCP(channel) {
                    channel.close(promise: nil)
                    return
                }
                let status: HTTPResponseStatus = (error as? TeleportError)?.code == .accessDenied ? .forbidden : .badGateway
                try await loop.submit { front.refuse(status: status, message: message) }.get()
                try? await channel.closeFuture.get()
                return
            }
            service.audit.started(session)
            defer { service.audit.ended(session) }
            service.logger.info("app session started", metadata: ["tp.user": "\(session.user)", "tp.app": "\(session.app)"])
            if AppURI.isTCP(accepted.app.uri) {
                try await relayTCP(channel, accepted: accepted)
                return
            }
            // A hand-off that named a TCP app for a certificate routed to a web app: HTTP after all.
            let started = AppServiceFront.Session(accepted: accepted, audit: session)
            try await loop.submit {
                try channel.pipeline.syncOperations.handler(type: AppHandoffGate.self).release()
                front.start(started)
            }.get()
            try? await channel.closeFuture.get()
        } catch {
            service.logger.debug("app connection ended: \(error)", metadata: ["tp.app": "\(session.app)"])
            channel.close(promise: nil)
        }
    }

    /// The checks before any request is read.
    func accept(channel: any Channel, handoff: EventLoopFuture<DatabaseHandoff>, session: inout AppAudit.Session) async throws -> Accepted {
        // The hand-off arrives after the TLS handshake, so the proxy's certificate is known then.
        let frame = try await handoff.get()
        try await checkProxy(channel)
        session.clientAddress = frame.clientAddress
        let identity = try await checkUser(frame.userCertificatePEM)
        session.user = identity.username
        guard let route = identity.routeToApp else {
            throw TeleportError.accessDenied("the certificate carries no app route: run tsh apps login APP")
        }
        session.app = route.name
        guard let app = configuration.apps.first(where: { $0.name == route.name }) else {
            throw TeleportError.accessDenied("this application service does not serve app \(route.name)")
        }
        session.uri = app.uri
        let publicAddr = service.publicAddrs.get(app.name) ?? route.publicAddr
        session.publicAddr = publicAddr
        let checker = AccessChecker(
            roles: service.cache.roles(named: identity.roles), traits: AccessChecker.templateTraits(identity.traits ?? ["logins": identity.logins]))
        let decision = try checker.checkAppLabels(app.labels)
        guard decision.allowed else {
            throw TeleportError.accessDenied("access to app \(app.name) denied: " + decision.reasons.joined(separator: "; "))
        }
        guard service.audit.admits else {
            throw TeleportError.connectionProblem("the audit log is unavailable (events wait for the auth service): refusing to start an unaudited session")
        }
        var accepted = Accepted(
            app: app, identity: identity, certificatePEM: frame.userCertificatePEM, publicAddr: publicAddr, clientAddress: frame.clientAddress)
        if let parts = try? AppURI.parse(app.uri, source: "uri") { accepted.internalHost = parts.hostHeader }
        accepted.internalHosts = Self.internalHosts(of: app)
        return accepted
    }

    /// The host names in the app's redirects that are rewritten to its public address: its URI's
    /// host and its `rewrite.redirect` hosts, lower case.
    static func internalHosts(of app: AppService.App) -> Set<String> {
        Set([(try? AppURI.parse(app.uri, source: "uri").host.lowercased()) ?? ""] + app.redirectHosts.map { $0.lowercased() })
    }

    static func milliseconds(since started: ContinuousClock.Instant) -> Int {
        let elapsed = ContinuousClock.now - started
        return Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
    }

    /// Whether the hand-off named a TCP app, so that its gate holds the client's bytes.
    static func holdingTCP(_ channel: any Channel) async throws -> Bool {
        try await channel.eventLoop.submit { try channel.pipeline.syncOperations.handler(type: AppHandoffGate.self).isHolding }.get()
    }

    /// A TCP app (`tcp://HOST:PORT`): the HTTP handlers leave the connection, a ``GlueHandler``
    /// after the hand-off gate carries the bytes to a new connection to the target (with
    /// backpressure), and the gate releases what it held. Ends when either side closes.
    func relayTCP(_ channel: any Channel, accepted: Accepted) async throws {
        let target = try AppURI.parse(accepted.app.uri, source: "uri")
        let (clientSide, targetSide) = GlueHandler.matchedPair()
        try await channel.eventLoop.submit {
            let operations = channel.pipeline.syncOperations
            Self.removeHTTPServerHandlers(operations)
            if let decoder = try? operations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self) {
                operations.removeHandler(decoder, promise: nil)
            }
            // The glue reads nothing from the client until its partner is there.
            try operations.addHandler(clientSide, position: .after(try operations.handler(type: AppHandoffGate.self)))
        }.get()
        let upstream: any Channel
        do {
            let loop = channel.eventLoop
            upstream = try await loop.flatSubmit { GlueHandler.connect(host: target.host, port: target.port, on: loop, with: targetSide) }.get()
        } catch {
            service.logger.info(
                "cannot reach TCP app \(accepted.app.name) at \(accepted.app.uri): \(error)", metadata: ["tp.app": "\(accepted.app.name)"])
            channel.close(promise: nil)
            return
        }
        try await channel.eventLoop.submit { try channel.pipeline.syncOperations.handler(type: AppHandoffGate.self).release() }.get()
        try? await channel.closeFuture.get()
        try? await upstream.closeFuture.get()
    }

    /// Removes the HTTP server handlers other than the request decoder (which goes last, passing
    /// on what it held).
    static func removeHTTPServerHandlers(_ operations: ChannelPipeline.SynchronousOperations) {
        if let handler = try? operations.handler(type: HTTPServerUpgradeHandler.self) { operations.removeHandler(handler, promise: nil) }
        if let handler = try? operations.handler(type: HTTPServerPipelineHandler.self) { operations.removeHandler(handler, promise: nil) }
        if let handler = try? operations.handler(type: HTTPServerProtocolErrorHandler.self) { operations.removeHandler(handler, promise: nil) }
        if let handler = try? operations.handler(type: NIOHTTPResponseHeadersValidator.self) { operations.removeHandler(handler, promise: nil) }
        if let handler = try? operations.handler(type: HTTPResponseEncoder.self) { operations.removeHandler(handler, promise: nil) }
    }

    /// A new connection to the app on `loop` (the proxy's connection's, so that both are served
    /// by one thread): TCP, TLS for `https://`, HTTP/1.1 client handlers.
    func connectChannel(_ app: AppService.App, upgrade: Bool, on loop: any EventLoop) async throws -> any Channel {
        let parts = try AppURI.parse(app.uri, source: "uri")
        let tls: NIOSSLContext?
        if parts.scheme == "https" {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if app.insecureSkipVerify { configuration.certificateVerification = .none }
            tls = try NIOSSLContext(configuration: configuration)
        } else {
            tls = nil
        }
        let isIP = IPAddressBytes.parse(parts.host) != nil
        return try await ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: isIP ? nil : parts.host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: upgrade ? .forwardBytes : .dropBytes)
                }
            }
            .connect(host: parts.host, port: parts.port).get()
    }

    /// The peer of the service's mutual TLS must be a proxy of this cluster.
    func checkProxy(_ channel: any Channel) async throws {
        guard let peer = try await channel.nioSSL_peerCertificate().get() else {
            throw TeleportError.accessDenied("the connection presented no certificate")
        }
        let identity = try X509Identity(certificate: try Certificate.fromDER(try peer.toDERBytes()))
        guard identity.clusterName == configuration.clusterName, identity.systemRole == .proxy else {
            throw TeleportError.accessDenied("only the cluster's proxies connect to the application service")
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
            throw TeleportError.accessDenied("the certificate has expired: log in again (tsh login, then tsh apps login)")
        }
        let identity = try X509Identity(certificate: certificate)
        guard identity.clusterName == configuration.clusterName, identity.systemRole == nil else {
            throw TeleportError.accessDenied("the certificate is not a user certificate of this cluster")
        }
        return identity
    }
}
