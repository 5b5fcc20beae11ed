import Foundation
import Logging
import Synchronization
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import TeleportAccess
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import TeleportSSH
import TeleportTunnel
import X509

/// Application access at the proxy's web port: a TLS connection whose server name is an app's
/// public address (`APP.<proxy public host>`, or the app's own `public_addr`) is terminated with
/// the web certificate, asking for the user's certificate. Once the handshake is done the proxy
/// checks, before any request is read: a certificate of this cluster's user CA (the TLS layer
/// verified the chain), with a route to *this* app, whose roles' `app_labels` allow it. Then it
/// dials the app's application service with mutual TLS (the `App` identity of the record's
/// host), sends the hand-off (the user's certificate and the client's address) and relays the
/// bytes both ways (streaming, with backpressure). A refusal is an HTTP answer with one line
/// naming the cause (401 without a certificate, 403 for another app's route or the roles, 404
/// for an unknown app, 502 when the service cannot be reached) and an `app.session.start`
/// failure event from the proxy.
final class AppProxy: Sendable {
    let auth: AuthClient
    let clusterName: String
    /// The proxy's identity towards application services.
    let serviceContexts: TLSContextSource
    /// The context for the next connection to a service.
    var serviceContext: NIOSSLContext { serviceContexts.current }
    /// The proxy's public host (lower case, no port): `APP.<host>` names an app.
    let publicHost: String
    let roles: @Sendable ([String]) -> [Role]
    let audit: SSHAudit?
    let logger: Logger
    /// App session cookies checked lately (the browser path).
    let sessionCache: AppSessionCache
    /// The registered apps, and when they were listed.
    private let cache = Mutex<(loaded: NIODeadline, apps: [AppServer])>((.distantPast, []))

    init(
        auth: AuthClient, clusterName: String, identity: ClientIdentity, publicAddr: String, roles: @escaping @Sendable ([String]) -> [Role],
        audit: SSHAudit?, logger: Logger, sessionCache: AppSessionCache = AppSessionCache()
    ) throws {
        self.sessionCache = sessionCache
        self.auth = auth
        self.clusterName = clusterName
        self.publicHost = Self.hostName(publicAddr)
        self.roles = roles
        self.audit = audit
        self.logger = logger
        serviceContexts = TLSContextSource(try Self.serviceContext(identity: identity))
    }

    /// Presents `identity` to the services and trusts its CAs from the next connection on.
    func renew(identity: ClientIdentity) throws {
        serviceContexts.set(try Self.serviceContext(identity: identity))
    }

    /// The client context of the proxy's `identity` towards the services.
    static func serviceContext(identity: ClientIdentity) throws -> NIOSSLContext {
        do {
            let chain = try NIOSSLCertificate.fromPEMBytes(Array(identity.certificatePEM.utf8)).map { NIOSSLCertificateSource.certificate($0) }
            var client = TLSConfiguration.makeClientConfiguration()
            client.certificateChain = chain
            client.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.keyPEM.utf8), format: .pem))
            client.trustRoots = .certificates(try identity.trustedCAPEMs.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) })
            client.certificateVerification = .noHostnameVerification
            client.minimumTLSVersion = .tlsv12
            return try NIOSSLContext(configuration: client)
        } catch {
            throw TeleportError.badParameter("the proxy's identity cannot be loaded for application access (data_dir/keys/proxy.*): \(error)")
        }
    }

    /// The host part of `host[:port]`, lower case.
    static func hostName(_ address: String) -> String {
        let lower = address.lowercased()
        if lower.hasPrefix("[") { return String(lower.prefix { $0 != "]" }) + "]" }
        return String(lower.prefix { $0 != ":" })
    }

    /// Whether a TLS server name is an app's: a sub-domain of the proxy's public host, or the
    /// public address of an app listed lately.
    func serves(serverName: String) -> Bool {
        let name = serverName.lowercased()
        if !publicHost.isEmpty, name.count > publicHost.count + 1, name.hasSuffix("." + publicHost) { return true }
        return cache.withLock { $0.apps.contains { $0.spec.publicAddr.lowercased() == name } }
    }

    /// The registered apps, listed at most every 2 s (`maxAge`).
    func apps(maxAge: TimeAmount = .seconds(2)) async throws -> [AppServer] {
        let now = NIODeadline.now()
        let cached = cache.withLock { $0 }
        if now - cached.loaded < maxAge { return cached.apps }
        let apps = try await auth.apps()
        cache.withLock { $0 = (now, apps) }
        return apps
    }

    /// Keeps the list of apps fresh so that apps with their own public address are routed.
    func refreshLoop() async {
        while !Task.isCancelled {
            _ = try? await apps()
            do { try await Task.sleep(for: .seconds(5)) } catch { return }
        }
    }

    /// Takes the connection after the route chose TLS: a gate holds the request bytes until
    /// the checks are done.
    func takeOver(_ channel: any Channel, serverName: String) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(AppFrontGate(proxy: self, serverName: serverName.lowercased()))
        }
    }

    /// What to do with a connection.
    enum Decision {
        case relay(any Channel)
        /// No client certificate: the browser path (``AppBrowserFront``).
        case browser(AppServer)
        case refuse(HTTPResponseStatus, String)
    }

    /// The checks, then the dial to the application service and the hand-off.
    func decide(channel: any Channel, serverName: String) async -> Decision {
        var fields: [String: JSONValue] = [
            "app_public_addr": .string(String(serverName.prefix(253))), "addr.remote": .string(channel.remoteAddress.map { "\($0)" } ?? ""),
            "success": false,
        ]
        func refuse(_ status: HTTPResponseStatus, _ message: String) -> Decision {
            fields["error"] = .string(message)
            audit?.add(AuditEventType.appSessionStartFailure, fields)
            logger.info("app request refused: \(message)", metadata: ["tp.sni": "\(serverName)"])
            return .refuse(status, message)
        }
        let peer: NIOSSLCertificate?
        do {
            peer = try await channel.nioSSL_peerCertificate().get()
        } catch {
            return .refuse(.badRequest, "the TLS handshake did not complete")
        }
        let apps: [AppServer]
        do {
            apps = try await self.apps()
        } catch {
            return refuse(.badGateway, "cannot list the cluster's apps: \((error as? TeleportError)?.message ?? "\(error)")")
        }
        // An app registered since the last listing is found by listing again (at most every 200 ms).
        let found = apps.first { $0.spec.publicAddr.lowercased() == serverName }
        let fresh = found == nil ? (try? await self.apps(maxAge: .milliseconds(200))) ?? apps : apps
        guard let app = found ?? fresh.first(where: { $0.spec.publicAddr.lowercased() == serverName }) else {
            return refuse(.notFound, "no app is registered at \(serverName) (tsh apps ls lists the apps)")
        }
        fields["app_name"] = .string(app.name)
        fields["app_uri"] = .string(app.spec.uri)
        guard let peer else { return .browser(app) }
        let pem: String
        let identity: X509Identity
        do {
            let certificate = try Certificate.fromDER(try peer.toDERBytes())
            pem = try certificate.pemText()
            identity = try X509Identity(certificate: certificate)
        } catch {
            return refuse(.forbidden, "the client certificate cannot be read")
        }
        fields["user"] = .string(identity.username)
        guard identity.clusterName == clusterName, identity.systemRole == nil else {
            return refuse(.forbidden, "the client certificate is not a user certificate of this cluster")
        }
        guard let route = identity.routeToApp else {
            return refuse(.forbidden, "the certificate carries no app route: run tsh apps login \(app.name)")
        }
        guard route.name == app.name else {
            return refuse(.forbidden, "the certificate is for app \(route.name), not \(app.name): run tsh apps login \(app.name)")
        }
        let checker = AccessChecker(roles: roles(identity.roles), traits: AccessChecker.templateTraits(identity.traits ?? ["logins": identity.logins]))
        guard let decision = try? checker.checkAppLabels(app.allLabels), decision.allowed else {
            let reasons = (try? checker.checkAppLabels(app.allLabels).reasons.joined(separator: "; ")) ?? "the role check failed"
            return refuse(.forbidden, "access to app \(app.name) denied: \(reasons)")
        }
        guard let addr = app.spec.addr, let target = try? HostPort.parse(addr, defaultPort: 3031, key: "spec.addr") else {
            return refuse(.badGateway, "app \(app.name) has no application service address")
        }
        do {
            let upstream = try await dialService(target, hostID: app.spec.hostID, on: channel.eventLoop)
            let handoff = DatabaseHandoff(
                userCertificatePEM: pem, clientAddress: channel.remoteAddress.map { "\($0)" } ?? "",
                parameters: [["app", app.name], ["server_name", serverName]])
            try await upstream.writeAndFlush(upstream.allocator.buffer(bytes: try handoff.frame()))
            return .relay(upstream)
        } catch {
            return refuse(.badGateway, "cannot reach app \(app.name)'s application service: \((error as? TeleportError)?.message ?? "\(error)")")
        }
    }

    /// Mutual TLS to the application service at `target`; its certificate must be the `App`
    /// identity of host `hostID` of this cluster.
    func dialService(_ target: (host: String, port: Int), hostID: String, on loop: any EventLoop) async throws -> any Channel {
        let handshake = loop.makePromise(of: Void.self)
        let context = serviceContext
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
            throw TeleportError.connectionProblem("cannot connect to \(HostPort.join(target.host, target.port)): \(error)")
        }
        do {
            try await handshake.futureResult.get()
            guard let peer = try await channel.nioSSL_peerCertificate().get() else {
                throw TeleportError.accessDenied("the application service presented no certificate")
            }
            let identity = try X509Identity(certificate: try Certificate.fromDER(try peer.toDERBytes()))
            guard identity.clusterName == clusterName, identity.systemRole == .app, identity.username == "\(hostID).\(clusterName)" else {
                throw TeleportError.accessDenied("the application service's certificate is not the App identity of host \(hostID)")
            }
        } catch {
            channel.close(promise: nil)
            if let error = error as? TeleportError { throw error }
            throw TeleportError.connectionProblem("the TLS handshake with the application service failed: \(error)")
        }
        return channel
    }
}

/// After TLS on an app connection: holds the client's bytes until the TLS handshake is done and
/// ``AppProxy`` decided; then either glues the connection to the application service or answers
/// the first request with the refusal, and passes the held bytes on. Once it holds
/// ``maxHeldBytes`` it stops reading (the client waits, as TCP makes it) rather than closing: an
/// upload that starts at once must not be cut because the checks took a while on a loaded host.
final class AppFrontGate: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = NIOAny
    static let maxHeldBytes = 1 << 20

    private var released = false
    private var held: [ByteBuffer] = []
    private var heldCount = 0
    /// A read asked for while the gate held its most.
    private var readDeferred = false
    let proxy: AppProxy
    let serverName: String

    init(proxy: AppProxy, serverName: String) {
        self.proxy = proxy
        self.serverName = serverName
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !released else {
            context.fireChannelRead(data)
            return
        }
        let buffer = unwrapInboundIn(data)
        heldCount += buffer.readableBytes
        // One socket read past the mark is still taken (a read may carry several TLS records);
        // more than twice the mark means reads did not stop, and the connection is closed.
        guard heldCount <= 2 * Self.maxHeldBytes else {
            context.close(promise: nil)
            return
        }
        held.append(buffer)
    }

    func read(context: ChannelHandlerContext) {
        if !released && heldCount >= Self.maxHeldBytes {
            readDeferred = true
            return
        }
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            let channel = context.channel
            let proxy = self.proxy
            let serverName = self.serverName
            let gate = NIOLoopBound(self, eventLoop: context.eventLoop)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            Task {
                let decision = await proxy.decide(channel: channel, serverName: serverName)
                channel.eventLoop.execute {
                    gate.value.apply(decision, context: bound.value)
                }
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Installs the relay or the refusal, then releases the held bytes (on the loop).
    func apply(_ decision: AppProxy.Decision, context: ChannelHandlerContext) {
        do {
            switch decision {
            case .relay(let upstream):
                let (clientSide, upstreamSide) = GlueHandler.matchedPair()
                try upstream.pipeline.syncOperations.addHandler(upstreamSide)
                try context.pipeline.syncOperations.addHandler(clientSide, position: .after(self))
                context.channel.closeFuture.whenComplete { _ in upstream.close(promise: nil) }
            case .browser(let app):
                // NIO's server handlers: pipelined requests wait their turn, bad requests get a
                // 400; an upgrade configuration without upgraders keeps the bytes after a
                // WebSocket upgrade for the splice.
                try context.pipeline.syncOperations.configureHTTPServerPipeline(
                    position: .after(self), withPipeliningAssistance: true, withServerUpgrade: (upgraders: [], completionHandler: { _ in }),
                    withErrorHandling: true)
                try context.pipeline.syncOperations.addHandler(AppBrowserFront(proxy: proxy, app: app, serverName: serverName))
            case .refuse(let status, let message):
                try context.pipeline.syncOperations.addHandlers(
                    [HTTPResponseEncoder(), ByteToMessageHandler(HTTPRequestDecoder()), AppRefusal(status: status, message: message)],
                    position: .after(self))
            }
        } catch {
            if case .relay(let upstream) = decision { upstream.close(promise: nil) }
            context.close(promise: nil)
            return
        }
        released = true
        for buffer in held { context.fireChannelRead(NIOAny(buffer)) }
        held = []
        heldCount = 0
        readDeferred = false
        context.fireChannelReadComplete()
        context.read()
    }
}

/// Answers the first request on a refused app connection with the status and one line, then closes.
final class AppRefusal: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let status: HTTPResponseStatus
    let message: String
    private var answered = false

    init(status: HTTPResponseStatus, message: String) {
        self.status = status
        self.message = message
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data), !answered else { return }
        answered = true
        let body = context.channel.allocator.buffer(string: message + "\n")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        headers.add(name: "Connection", value: "close")
        headers.add(name: "Cache-Control", value: "no-store")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
