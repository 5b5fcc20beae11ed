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
    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
    typealias Upstream = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
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

    func serve(_ connection: Connection, handoff: EventLoopFuture<DatabaseHandoff>) async {
        let channel = connection.channel
        var session = AppAudit.Session(id: UUID().uuidString.lowercased(), user: "", app: "", publicAddr: "", uri: "", clientAddress: "")
        do {
            try await connection.executeThenClose { inbound, outbound in
                var requests = inbound.makeAsyncIterator()
                let accepted: Accepted
                do {
                    accepted = try await accept(channel: channel, handoff: handoff, session: &session)
                } catch {
                    let message = (error as? TeleportError)?.message ?? "\(error)"
                    service.audit.started(session, refusal: message)
                    service.logger.info("app session refused: \(message)", metadata: ["tp.user": "\(session.user)", "tp.app": "\(session.app)"])
                    // A TCP client speaks no HTTP: the connection just closes.
                    if try await Self.holdingTCP(channel) { return }
                    guard let first = try await requests.next(), case .head(let head) = first else { return }
                    try await drainBody(&requests)
                    let status: HTTPResponseStatus = (error as? TeleportError)?.code == .accessDenied ? .forbidden : .badGateway
                    try await respond(outbound, status: status, message: message, head: head, close: true)
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
                try await channel.eventLoop.submit { try channel.pipeline.syncOperations.handler(type: AppHandoffGate.self).release() }.get()
                var token: AuthAPI.AppJWTResponse?
                /// One request's checks: the Host names the app, the JWT is current; a WebSocket
                /// upgrade is served here. nil: the connection ends.
                func prepare(_ head: HTTPRequestHead) async throws -> Prepared? {
                    let started = ContinuousClock.now
                    let hostHeader = head.headers.first(name: "host") ?? ""
                    if !AppRequestRules.hostMatches(hostHeader, publicAddr: accepted.publicAddr) {
                        try await drainBody(&requests)
                        let message =
                            "the Host header \"\(hostHeader.prefix(64))\" does not name app \(accepted.app.name) (\(accepted.publicAddr)), which this certificate is for; "
                            + "run tsh apps login for the other app"
                        try await respond(outbound, status: .forbidden, message: message, head: head, close: true)
                        service.audit.request(session, method: head.method.rawValue, path: head.uri, status: 403, milliseconds: 0)
                        return nil
                    }
                    let now = Int(Date().timeIntervalSince1970)
                    if token == nil || (token?.expires ?? 0) - 30 <= now {
                        token = try await service.auth.appJWT(
                            AuthAPI.AppJWTRequest(userCertificatePEM: accepted.certificatePEM, appName: accepted.app.name))
                    }
                    let upstreamHead = AppRequestRules.upstreamHead(
                        head, internalHost: accepted.internalHost, clientAddress: accepted.clientAddress,
                        publicHost: hostHeader, assertion: token?.token ?? "",
                        extraHeaders: accepted.app.headers.map { ($0.name, $0.value) })
                    if AppRequestRules.isWebSocketUpgrade(head) {
                        // The 101 is audited when the connection switches to bytes; the connection ends with the WebSocket.
                        try await forwardUpgrade(
                            upstreamHead, requests: &requests, outbound: outbound, client: channel, accepted: accepted, publicHost: hostHeader
                        ) { status in
                            service.audit.request(session, method: head.method.rawValue, path: head.uri, status: status, milliseconds: Self.milliseconds(since: started))
                        }
                        return nil
                    }
                    return Prepared(head: head, upstream: upstreamHead, publicHost: hostHeader, started: started)
                }
                /// Audits a finished request; false: the connection ends (the audit refused, the
                /// client asked to close, or another protocol's upgrade stopped the decoder).
                func finished(_ request: Prepared, status: Int) -> Bool {
                    let head = request.head
                    guard service.audit.request(session, method: head.method.rawValue, path: head.uri, status: status, milliseconds: Self.milliseconds(since: request.started))
                    else { return false }
                    return head.isKeepAlive && !AppRequestRules.asksUpgrade(head)
                }
                /// The next request's head, or nil at the connection's end.
                func nextHead() async throws -> HTTPRequestHead? {
                    while let part = try await requests.next() {
                        if case .head(let head) = part { return head }
                    }
                    return nil
                }
                var pending: HTTPRequestHead?
                while true {
                    let waiting = pending
                    pending = nil
                    let head: HTTPRequestHead
                    if let waiting { head = waiting } else if let read = try await nextHead() { head = read } else { return }
                    guard var request = try await prepare(head) else { return }
                    // One connection to the app, kept for the next requests while both sides keep it alive.
                    let upstream: Upstream
                    do {
                        upstream = try await connect(accepted.app)
                    } catch {
                        try await drainBody(&requests)
                        let message = "cannot reach app \(accepted.app.name) at \(accepted.app.uri): \((error as? TeleportError)?.message ?? "\(error)")"
                        try await respond(outbound, status: .badGateway, message: message, head: head, close: false)
                        guard finished(request, status: 502) else { return }
                        continue
                    }
                    let upstreamChannel = upstream.channel
                    let outcome: KeptOutcome = try await upstream.executeThenClose { responses, writer in
                        var answers = responses.makeAsyncIterator()
                        while true {
                            let (status, reusable) = try await exchange(
                                request.upstream, requests: &requests, writer: writer, answers: &answers, outbound: outbound, accepted: accepted,
                                publicHost: request.publicHost, channel: upstreamChannel)
                            guard finished(request, status: status) else { return .end }
                            guard let next = try await nextHead() else { return .end }
                            guard reusable, upstreamChannel.isActive, !AppRequestRules.isWebSocketUpgrade(next) else { return .next(next) }
                            guard let prepared = try await prepare(next) else { return .end }
                            request = prepared
                        }
                    }
                    switch outcome {
                    case .end: return
                    case .next(let head): pending = head
                    }
                }
            }
        } catch {
            service.logger.debug("app connection ended: \(error)", metadata: ["tp.app": "\(session.app)"])
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

    /// One request checked and prepared for the app.
    struct Prepared {
        var head: HTTPRequestHead
        var upstream: HTTPRequestHead
        var publicHost: String
        var started: ContinuousClock.Instant
    }

    /// How a kept connection to the app ended: with the client's connection, or with a request
    /// for a new connection.
    enum KeptOutcome {
        case end
        case next(HTTPRequestHead)
    }

    static func milliseconds(since started: ContinuousClock.Instant) -> Int {
        let elapsed = ContinuousClock.now - started
        return Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
    }

    /// Sends one request to the app over the kept connection and streams its response back;
    /// returns the status and whether the connection may carry the next request (the request
    /// went out whole and the app keeps the connection alive). An app that does not start its
    /// answer in time, or closes first, gets a 504 page.
    func exchange(
        _ head: HTTPRequestHead, requests: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator,
        writer: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>, answers: inout NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, accepted: Accepted, publicHost: String, channel: any Channel
    ) async throws -> (status: Int, reusable: Bool) {
        var head = head
        head.headers.remove(name: "expect")
        let internalHosts = accepted.internalHosts
        let timeout = configuration.responseTimeout
        // The app may answer and close before the request's end is written (a GET, or an
        // early 413): then the rest of the body is read and dropped, and its answer relayed.
        var open = (try? await writer.write(.head(head))) != nil
        body: while let part = try await requests.next() {
            switch part {
            case .body(let buffer): if open { open = (try? await writer.write(.body(.byteBuffer(buffer)))) != nil }
            case .end(let trailers):
                if open { open = (try? await writer.write(.end(trailers))) != nil }
                break body
            case .head: throw TeleportError.badParameter("a request head arrived inside a request body")
            }
        }
        // The app has `timeout` to start its answer.
        let deadline = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) { channel.close(promise: nil) }
        var status = 0
        var reusable = open
        while let part = try await answers.next() {
            switch part {
            case .head(let response):
                deadline.cancel()
                status = Int(response.status.code)
                reusable = reusable && response.isKeepAlive
                try await outbound.write(.head(AppRequestRules.clientHead(response, internalHosts: internalHosts, publicHost: publicHost)))
            case .body(let buffer): try await outbound.write(.body(.byteBuffer(buffer)))
            case .end(let trailers):
                try await outbound.write(.end(trailers))
                return (status, reusable)
            }
        }
        deadline.cancel()
        guard status == 0 else { throw TeleportError.connectionProblem("app \(accepted.app.name) closed the connection mid-response") }
        let message = "app \(accepted.app.name) at \(accepted.app.uri) did not answer within \(timeout) or closed the connection"
        try await respond(outbound, status: .gatewayTimeout, message: message, head: head, close: false)
        return (504, false)
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

    /// A WebSocket upgrade: the request goes to the app on a new connection; a `101` is passed
    /// to the client and then both connections carry bytes (``GlueHandler``, with backpressure)
    /// until either side closes; any other answer is relayed as usual and the connection ends.
    /// `audited` is called with the status before the bytes flow (false: the audit refused it,
    /// and the connection ends).
    func forwardUpgrade(
        _ head: HTTPRequestHead, requests: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, client: any Channel, accepted: Accepted, publicHost: String,
        audited: (Int) -> Bool
    ) async throws {
        let upstream: Upstream
        do {
            upstream = try await connect(accepted.app, upgrade: true)
        } catch {
            try await drainBody(&requests)
            let message = "cannot reach app \(accepted.app.name) at \(accepted.app.uri): \((error as? TeleportError)?.message ?? "\(error)")"
            try await respond(outbound, status: .badGateway, message: message, head: head, close: true)
            _ = audited(502)
            return
        }
        let internalHosts = accepted.internalHosts
        let timeout = configuration.responseTimeout
        let upstreamChannel = upstream.channel
        try await upstream.executeThenClose { responses, writer in
            try await writer.write(.head(head))
            // llhttp ends an upgrade request at its head: there is no body to pass on.
            try await drainBody(&requests)
            try await writer.write(.end(nil))
            let deadline = upstreamChannel.eventLoop.scheduleTask(in: TimeAmount(timeout)) { upstreamChannel.close(promise: nil) }
            var answers = responses.makeAsyncIterator()
            guard let first = try await answers.next(), case .head(let response) = first else {
                deadline.cancel()
                let message = "app \(accepted.app.name) at \(accepted.app.uri) did not answer the WebSocket upgrade within \(timeout)"
                try await respond(outbound, status: .gatewayTimeout, message: message, head: head, close: true)
                _ = audited(504)
                return
            }
            deadline.cancel()
            var answer = AppRequestRules.clientHead(response, internalHosts: internalHosts, publicHost: publicHost)
            guard response.status == .switchingProtocols else {
                // Refused by the app: its answer, then the connection ends.
                answer.headers.replaceOrAdd(name: "Connection", value: "close")
                try await outbound.write(.head(answer))
                while let part = try await answers.next() {
                    switch part {
                    case .head: continue
                    case .body(let buffer): try await outbound.write(.body(.byteBuffer(buffer)))
                    case .end(let trailers):
                        try await outbound.write(.end(trailers))
                        _ = audited(Int(response.status.code))
                        return
                    }
                }
                throw TeleportError.connectionProblem("app \(accepted.app.name) closed the connection mid-response")
            }
            guard let end = try await answers.next(), case .end = end else {
                throw TeleportError.connectionProblem("app \(accepted.app.name) sent a body with its 101")
            }
            guard audited(101) else { return }
            // Written straight to the channel (not through the writer) so that it has passed the
            // encoder before the HTTP handlers leave.
            try await client.writeAndFlush(HTTPServerResponsePart.head(answer))
            try await client.writeAndFlush(HTTPServerResponsePart.end(nil))
            try await Self.splice(client: client, upstream: upstreamChannel)
            try? await client.closeFuture.get()
            try? await upstreamChannel.closeFuture.get()
        }
    }

    /// Both connections become byte streams glued together: the HTTP handlers leave their
    /// pipelines and the decoders pass on what they held (a first WebSocket frame sent with the
    /// 101, or by an eager client). The async channels' handlers stay behind and see nothing more.
    static func splice(client: any Channel, upstream: any Channel) async throws {
        let (clientSide, upstreamSide) = GlueHandler.matchedPair()
        try await client.eventLoop.submit {
            let operations = client.pipeline.syncOperations
            removeHTTPServerHandlers(operations)
            let decoder = try operations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try operations.addHandler(clientSide, position: .after(decoder))
            // The decoder leaves on a later turn of the loop, passing on what it held; a read's
            // end then flushes that to the partner.
            operations.removeHandler(decoder).whenSuccess { client.pipeline.fireChannelReadComplete() }
        }.get()
        try await upstream.eventLoop.submit {
            let operations = upstream.pipeline.syncOperations
            if let handler = try? operations.handler(type: NIOHTTPRequestHeadersValidator.self) { operations.removeHandler(handler, promise: nil) }
            if let handler = try? operations.handler(type: HTTPRequestEncoder.self) { operations.removeHandler(handler, promise: nil) }
            let decoder = try operations.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self)
            try operations.addHandler(upstreamSide, position: .after(decoder))
            operations.removeHandler(decoder).whenSuccess { upstream.pipeline.fireChannelReadComplete() }
        }.get()
    }

    /// A new connection to the app: TCP, TLS for `https://` (the app's certificate checked
    /// against the system roots unless `insecure_skip_verify`), HTTP/1.1.
    func connect(_ app: AppService.App, upgrade: Bool = false) async throws -> Upstream {
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
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: parts.host, port: parts.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: isIP ? nil : parts.host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: upgrade ? .forwardBytes : .dropBytes)
                    return try Upstream(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// Reads the rest of a request's body and drops it.
    func drainBody(_ requests: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator) async throws {
        while let part = try await requests.next() {
            if case .end = part { return }
        }
    }

    /// A short plain-text answer (one line naming the cause).
    func respond(
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, status: HTTPResponseStatus, message: String, head: HTTPRequestHead,
        close: Bool
    ) async throws {
        let body = ByteBuffer(string: message + "\n")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        headers.add(name: "Cache-Control", value: "no-store")
        if close { headers.add(name: "Connection", value: "close") }
        try await outbound.write(.head(HTTPResponseHead(version: head.version, status: status, headers: headers)))
        if head.method != .HEAD { try await outbound.write(.body(.byteBuffer(body))) }
        try await outbound.write(.end(nil))
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
