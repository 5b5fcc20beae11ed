import Foundation
import Logging
import NIOCore
import NIOHTTP1
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import TeleportSSH
import TeleportTunnel
import X509

/// The app origin for a browser (a connection without a client certificate), behind NIO's
/// HTTP/1.1 server handlers (pipelined requests wait their turn), with keep-alive.
/// `GET /x-teleport-auth?token=T` redeems a launch token (through the auth service: once, for
/// this app, within 60 s) and answers `302 /` with the app session cookie (``cookieName``:
/// Secure, HttpOnly, SameSite=Lax, Path=/). Any other request must carry that cookie: the auth
/// service checks it (this app, its web session still valid, the roles) and answers a
/// certificate of the user with the app route — remembered for a while in ``AppSessionCache`` —
/// which the proxy hands to the application service exactly as for a certificate client. The
/// connection to the service is kept for the next requests with the same certificate; each
/// request goes on with the cookie removed, and the answer comes back part by part (with
/// backpressure both ways). A WebSocket upgrade is passed on and, after the service's `101`,
/// both connections carry bytes. Without a valid cookie a browser is sent to the proxy's login
/// page and other clients get 401; both are audited (`app.session.start` failure).
final class AppBrowserFront: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The app session cookie on the app's origin.
    static let cookieName = "__Host-teleport-app-session"
    /// The most request body bytes held while the checks run.
    static let maxHeldBytes = 8 << 20

    /// What to do with the request.
    enum Action {
        /// Answer at once (`close`: then close the connection).
        case respond(HTTPResponseHead, String, close: Bool)
        /// Pass the request on over `upstream` (the kept connection when it is the same).
        case forward(upstream: any Channel, certificate: String, head: HTTPRequestHead)
    }

    private enum State {
        case idle
        /// The checks run; the request's parts wait.
        case checking([HTTPServerRequestPart], Int)
        /// The request goes to the service; its answer comes back through ``AppUpstreamRelay``.
        case forwarding
        case closed
    }

    private var state = State.idle
    private var context: ChannelHandlerContext?
    /// The kept connection to the application service and the certificate handed to it.
    private var upstream: (channel: any Channel, certificate: String)?
    /// The request being forwarded: keep-alive, a WebSocket upgrade, its end passed on, and
    /// whether its answer has begun and ended.
    private var keepAlive = true
    private var upgrading = false
    private var requestEnded = false
    private var answerStarted = false
    private var answerEnded = false
    private var reusable = true
    let proxy: AppProxy
    let app: AppServer
    let serverName: String

    init(proxy: AppProxy, app: AppServer, serverName: String) {
        self.proxy = proxy
        self.app = app
        self.serverName = serverName
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .idle:
            guard case .head(let head) = part else { return }
            state = .checking([], 0)
            keepAlive = head.isKeepAlive
            let channel = context.channel
            let proxy = self.proxy
            let app = self.app
            let serverName = self.serverName
            let kept = upstream.flatMap { $0.channel.isActive && reusable ? $0 : nil }
            // The usual request: a remembered cookie whose certificate the kept connection was
            // handed. It goes on from here, without a task and two hops between threads.
            if let kept, let action = proxy.keptForward(head: head, app: app, kept: kept) {
                apply(action)
                return
            }
            let front = NIOLoopBound(self, eventLoop: context.eventLoop)
            Task {
                let action = await proxy.browserAction(head: head, app: app, serverName: serverName, channel: channel, kept: kept)
                channel.eventLoop.execute { front.value.apply(action) }
            }
        case .checking(var held, var count):
            if case .body(let buffer) = part { count += buffer.readableBytes }
            guard count <= Self.maxHeldBytes else {
                close()
                return
            }
            held.append(part)
            state = .checking(held, count)
        case .forwarding:
            forward(part)
        case .closed:
            return
        }
    }

    /// Passes one request part to the service.
    private func forward(_ part: HTTPServerRequestPart) {
        guard let upstream = upstream?.channel else { return }
        switch part {
        case .head: return
        case .body(let buffer):
            upstream.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
        case .end(let trailers):
            requestEnded = true
            upstream.writeAndFlush(HTTPClientRequestPart.end(trailers), promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .forwarding = state { upstream?.channel.flush() }
        context.fireChannelReadComplete()
    }

    /// Answers, or starts forwarding (on the loop).
    func apply(_ action: Action) {
        guard let context, case .checking(let held, _) = state else {
            if case .forward(let channel, _, _) = action, channel !== upstream?.channel { channel.close(promise: nil) }
            return
        }
        switch action {
        case .respond(let head, let body, let close):
            // A request whose body has not all arrived ends with the connection.
            let ended = held.contains { if case .end = $0 { true } else { false } }
            let closing = close || !keepAlive || !ended
            var head = head
            if closing { head.headers.replaceOrAdd(name: "Connection", value: "close") }
            // The state is set first: writing the end lets NIO's pipeline handler pass on a
            // pipelined request at once.
            state = closing ? .closed : .idle
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if closing {
                let channel = context.channel
                done.whenComplete { _ in channel.close(promise: nil) }
            }
        case .forward(let channel, let certificate, let head):
            if channel !== upstream?.channel {
                upstream?.channel.close(promise: nil)
                do {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes)
                    try channel.pipeline.syncOperations.addHandler(AppUpstreamRelay(front: self, client: context.channel))
                } catch {
                    channel.close(promise: nil)
                    close()
                    return
                }
                upstream = (channel, certificate)
                reusable = true
            }
            state = .forwarding
            upgrading = AppBrowserFront.isWebSocketUpgrade(head)
            requestEnded = false
            answerStarted = false
            answerEnded = false
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            for part in held { forward(part) }
            channel.flush()
        }
    }

    // MARK: the answer, from AppUpstreamRelay (on the same loop)

    /// The service's answer begins.
    func answerHead(_ head: HTTPResponseHead) {
        guard let context, case .forwarding = state else { return }
        answerStarted = true
        if head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "close" }) || head.version != .http1_1 {
            reusable = false
        }
        var head = head
        if head.status != .switchingProtocols {
            head.headers.remove(name: "connection")
            if !keepAlive { head.headers.add(name: "Connection", value: "close") }
        }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
    }

    func answerBody(_ buffer: ByteBuffer) {
        guard let context, case .forwarding = state else { return }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    /// The service's answer ended: the next request may come (or the WebSocket's bytes flow).
    func answerEnd(_ trailers: HTTPHeaders?, switching: Bool) {
        guard let context, case .forwarding = state else { return }
        answerEnded = true
        if switching && upgrading {
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            splice(context: context)
            return
        }
        // Closing is the only way to end a request whose body was not all read. The state is
        // set before the end is written: NIO's pipeline handler passes on a pipelined request then.
        let closing = !keepAlive || !requestEnded
        state = closing ? .closed : .idle
        let done = context.writeAndFlush(wrapOutboundOut(.end(trailers)))
        if closing {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// The service's connection closed.
    func upstreamClosed(_ channel: any Channel) {
        guard channel === upstream?.channel else { return }
        upstream = nil
        guard let context else { return }
        // Reads stopped for a full service connection resume (the next request opens a new one).
        let client = context.channel
        client.setOption(ChannelOptions.autoRead, value: true).whenSuccess { client.read() }
        guard case .forwarding = state, !answerEnded else { return }
        if answerStarted {
            close()
            return
        }
        state = .closed
        let body = "the application service closed the connection before answering\n"
        var headers = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "\(body.utf8.count)"), ("Connection", "close")])
        headers.add(name: "Cache-Control", value: "no-store")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badGateway, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Backpressure towards the service: its reads wait while the browser's connection is full.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        if let channel = upstream?.channel {
            channel.setOption(ChannelOptions.autoRead, value: writable).whenSuccess { if writable { channel.read() } }
        }
        context.fireChannelWritabilityChanged()
    }

    /// Backpressure towards the browser: its reads wait while the service's connection is full.
    func upstreamWritabilityChanged(_ writable: Bool) {
        guard let context else { return }
        let channel = context.channel
        channel.setOption(ChannelOptions.autoRead, value: writable).whenSuccess { if writable { channel.read() } }
    }

    private func close() {
        state = .closed
        context?.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        upstream?.channel.close(promise: nil)
        upstream = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close()
    }

    /// After the service's `101` to a WebSocket upgrade: both connections carry bytes from now
    /// on. The HTTP handlers leave; the decoders pass on what they held to a ``GlueHandler``
    /// placed after them, and a read's end flushes it.
    private func splice(context: ChannelHandlerContext) {
        guard let upstream = upstream?.channel else { return close() }
        let (clientSide, upstreamSide) = GlueHandler.matchedPair()
        do {
            let operations = upstream.pipeline.syncOperations
            try operations.removeHandler(operations.handler(type: AppUpstreamRelay.self), promise: nil)
            if let handler = try? operations.handler(type: NIOHTTPRequestHeadersValidator.self) { operations.removeHandler(handler, promise: nil) }
            try operations.removeHandler(operations.handler(type: HTTPRequestEncoder.self), promise: nil)
            let responseDecoder = try operations.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self)
            try operations.addHandler(upstreamSide, position: .after(responseDecoder))
            operations.removeHandler(responseDecoder).whenSuccess { upstream.pipeline.fireChannelReadComplete() }
            let client = context.pipeline.syncOperations
            for handler in [
                try? client.handler(type: HTTPServerUpgradeHandler.self) as (any RemovableChannelHandler)?,
                try? client.handler(type: HTTPServerPipelineHandler.self), try? client.handler(type: HTTPServerProtocolErrorHandler.self),
                try? client.handler(type: NIOHTTPResponseHeadersValidator.self), try? client.handler(type: HTTPResponseEncoder.self),
            ] {
                if let handler { client.removeHandler(handler, promise: nil) }
            }
            let decoder = try client.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try client.addHandler(clientSide, position: .after(decoder))
            let channel = context.channel
            client.removeHandler(decoder).whenSuccess { channel.pipeline.fireChannelReadComplete() }
            self.upstream = nil
            state = .closed
        } catch {
            upstream.close(promise: nil)
            close()
        }
    }

    /// A WebSocket upgrade request (`GET`, `Connection: upgrade`, `Upgrade: websocket`), the
    /// proxy-side twin of `AppRequestRules.isWebSocketUpgrade` (the application service decides
    /// again what reaches the app).
    static func isWebSocketUpgrade(_ head: HTTPRequestHead) -> Bool {
        func tokens(_ name: String) -> [String] {
            head.headers[name].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        }
        return head.method == .GET && tokens("connection").contains("upgrade") && tokens("upgrade") == ["websocket"]
    }

    /// The value of the app session cookie in `headers`, if sent.
    static func cookie(in headers: HTTPHeaders) -> String? {
        for (name, field) in headers where name.utf8.count == 6 && name.lowercased() == "cookie" {
            for pair in cookiePairs(field) where pair.starts(with: cookiePrefix) {
                return String(decoding: pair.dropFirst(cookiePrefix.count), as: UTF8.self)
            }
        }
        return nil
    }

    /// `cookieName=` as bytes.
    static let cookiePrefix = Array((cookieName + "=").utf8)

    /// The `;`-separated pairs of a Cookie header, spaces and tabs around each trimmed, empty
    /// ones left out (on bytes: this runs for every proxied request).
    static func cookiePairs(_ field: String) -> [Substring.UTF8View] {
        var pairs: [Substring.UTF8View] = []
        for piece in field.utf8.split(separator: UInt8(ascii: ";")) {
            var start = piece.startIndex
            var end = piece.endIndex
            while start < end, piece[start] == 0x20 || piece[start] == 0x09 { start = piece.index(after: start) }
            while end > start, piece[piece.index(before: end)] == 0x20 || piece[piece.index(before: end)] == 0x09 { end = piece.index(before: end) }
            if start < end { pairs.append(Substring(field[start..<end]).utf8) }
        }
        return pairs
    }

    /// `headers` without the app session cookie (other cookies are the app's and stay).
    static func strippingCookie(_ headers: HTTPHeaders) -> HTTPHeaders {
        var out = headers
        let fields = headers["cookie"]
        out.remove(name: "cookie")
        let kept = fields.flatMap { cookiePairs($0) }.filter { !$0.starts(with: cookiePrefix) }.map { String(Substring($0)) }
        if !kept.isEmpty { out.add(name: "Cookie", value: kept.joined(separator: "; ")) }
        return out
    }

    /// A short plain-text answer: its head (with the length) and body.
    static func response(status: HTTPResponseStatus, headers: [(String, String)] = [], body: String) -> (HTTPResponseHead, String) {
        let text = body + "\n"
        var fields = HTTPHeaders([
            ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "\(text.utf8.count)"), ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
        ])
        for (name, value) in headers { fields.add(name: name, value: value) }
        return (HTTPResponseHead(version: .http1_1, status: status, headers: fields), text)
    }
}

/// On the proxy's connection to the application service for a browser: passes the service's
/// answers, part by part, to the ``AppBrowserFront`` of the browser's connection (the same
/// loop), and tells it when the connection closes or its writability changes.
final class AppUpstreamRelay: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let front: AppBrowserFront
    let client: any Channel
    private var switching = false

    init(front: AppBrowserFront, client: any Channel) {
        self.front = front
        self.client = client
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            switching = head.status == .switchingProtocols
            front.answerHead(head)
        case .body(let buffer): front.answerBody(buffer)
        case .end(let trailers): front.answerEnd(trailers, switching: switching)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        front.upstreamClosed(context.channel)
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        front.upstreamWritabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension AppProxy {
    /// The request as it goes to the service: the app session cookie removed, and the connection
    /// to the service is the proxy's own, kept alive whatever the browser asked (a WebSocket
    /// upgrade keeps its Connection: Upgrade; the service checks it again).
    static func forwardedHead(_ head: HTTPRequestHead) -> HTTPRequestHead {
        var forwarded = head
        forwarded.headers = AppBrowserFront.strippingCookie(head.headers)
        if !AppBrowserFront.isWebSocketUpgrade(head) { forwarded.headers.remove(name: "connection") }
        return forwarded
    }

    /// The forwarding ``browserAction`` would answer, decided without waiting: a web app, not
    /// the launch redemption, a cookie remembered in ``sessionCache`` whose certificate is the
    /// one `kept` was handed. nil: ``browserAction`` decides.
    func keptForward(head: HTTPRequestHead, app: AppServer, kept: (channel: any Channel, certificate: String)) -> AppBrowserFront.Action? {
        // The launch redemption, and any URI the quick look cannot judge (not origin-form, or
        // percent-encoded), go to browserAction, which parses it with URLComponents.
        guard !AppURI.isTCP(app.spec.uri), head.uri.utf8.first == UInt8(ascii: "/"), !head.uri.utf8.contains(UInt8(ascii: "%")),
            !head.uri.hasPrefix("/x-teleport-auth"),
            let secret = AppBrowserFront.cookie(in: head.headers), let identity = sessionCache.identity(cookie: secret, app: app.name),
            identity.certificatePEM == kept.certificate
        else { return nil }
        return .forward(upstream: kept.channel, certificate: kept.certificate, head: Self.forwardedHead(head))
    }

    /// What a browser's request on `app`'s origin gets: the launch redemption, a refusal, or the
    /// forwarding to the application service (over `kept` when it was handed the same
    /// certificate, else over a new connection).
    func browserAction(
        head: HTTPRequestHead, app: AppServer, serverName: String, channel: any Channel, kept: (channel: any Channel, certificate: String)?
    ) async -> AppBrowserFront.Action {
        let clientAddress = channel.remoteAddress.map { "\($0)" } ?? ""
        let components = URLComponents(string: head.uri)
        let hostHeader = head.headers["host"].first ?? serverName
        let port = AppLaunchRoute.port(of: hostHeader)
        let loginURL = AppLaunchRoute.origin(host: publicHost, port: port) + "/web/login"
        let browser = head.headers["accept"].contains { $0.contains("text/html") }
        var fields: [String: JSONValue] = [
            "app_public_addr": .string(String(serverName.prefix(253))), "addr.remote": .string(clientAddress), "success": false,
            "app_name": .string(app.name), "app_uri": .string(app.spec.uri),
        ]
        let clearCookie = "\(AppBrowserFront.cookieName)=; Max-Age=0; Secure; HttpOnly; SameSite=Lax; Path=/"
        func respond(_ answer: (HTTPResponseHead, String), close: Bool) -> AppBrowserFront.Action {
            .respond(answer.0, answer.1, close: close)
        }
        func refuse(_ message: String, status: HTTPResponseStatus = .unauthorized, audited: Bool = true) -> AppBrowserFront.Action {
            if audited {
                fields["error"] = .string(message)
                audit?.add(AuditEventType.appSessionStartFailure, fields)
            }
            logger.info("app request refused: \(message)", metadata: ["tp.sni": "\(serverName)"])
            if browser, status == .unauthorized {
                return respond(
                    AppBrowserFront.response(status: .found, headers: [("Location", loginURL), ("Set-Cookie", clearCookie)], body: message),
                    close: true)
            }
            return respond(AppBrowserFront.response(status: status, headers: [("Set-Cookie", clearCookie)], body: message), close: true)
        }
        if AppURI.isTCP(app.spec.uri) {
            return refuse(
                "app \(app.name) is a TCP app, which a browser cannot open: run tsh apps login \(app.name), then tsh proxy app \(app.name)",
                status: .badRequest)
        }
        if components?.path == "/x-teleport-auth" {
            let token = components?.queryItems?.first { $0.name == "token" }?.value ?? ""
            do {
                let created = try await auth.redeemAppLaunch(AuthAPI.AppSessionRequest(secret: token, appName: app.name, clientAddress: clientAddress))
                let cookie = "\(AppBrowserFront.cookieName)=\(created.sessionID); Secure; HttpOnly; SameSite=Lax; Path=/"
                return respond(AppBrowserFront.response(status: .found, headers: [("Location", "/"), ("Set-Cookie", cookie)], body: ""), close: false)
            } catch {
                // The auth service audited the refusal.
                let message = (error as? TeleportError)?.message ?? "the app launch failed"
                return refuse(message, status: .forbidden, audited: false)
            }
        }
        guard let secret = AppBrowserFront.cookie(in: head.headers) else {
            return refuse(
                "app \(app.name) needs a session: launch it from the web UI (\(AppLaunchRoute.origin(host: publicHost, port: port))/web/apps), or run tsh apps login \(app.name)")
        }
        let identity: AuthAPI.AppSessionIdentity
        if let remembered = sessionCache.identity(cookie: secret, app: app.name) {
            identity = remembered
        } else {
            do {
                identity = try await auth.authenticateAppSession(AuthAPI.AppSessionRequest(secret: secret, appName: app.name, clientAddress: clientAddress))
                let end = (try? Certificate.fromPEM(identity.certificatePEM).notValidAfter) ?? Date()
                sessionCache.remember(cookie: secret, app: app.name, identity: identity, notAfter: end)
            } catch {
                sessionCache.forget(cookie: secret, app: app.name)
                let message = (error as? TeleportError)?.message ?? "the app session cannot be checked"
                let code = (error as? TeleportError)?.code
                return refuse(message, status: code == .connectionProblem || code == .internalError ? .badGateway : .unauthorized)
            }
        }
        fields["user"] = .string(identity.user)
        let forwarded = Self.forwardedHead(head)
        if let kept, kept.certificate == identity.certificatePEM {
            return .forward(upstream: kept.channel, certificate: kept.certificate, head: forwarded)
        }
        guard let addr = app.spec.addr, let target = try? HostPort.parse(addr, defaultPort: 3031, key: "spec.addr") else {
            return refuse("app \(app.name) has no application service address", status: .badGateway)
        }
        do {
            let upstream = try await dialService(target, hostID: app.spec.hostID, on: channel.eventLoop)
            let handoff = DatabaseHandoff(
                userCertificatePEM: identity.certificatePEM, clientAddress: clientAddress,
                parameters: [["app", app.name], ["server_name", serverName]])
            try await upstream.writeAndFlush(upstream.allocator.buffer(bytes: try handoff.frame()))
            return .forward(upstream: upstream, certificate: identity.certificatePEM, head: forwarded)
        } catch {
            return refuse(
                "cannot reach app \(app.name)'s application service: \((error as? TeleportError)?.message ?? "\(error)")", status: .badGateway)
        }
    }
}
