import Foundation
import Logging
import NIOCore
import NIOHTTP1
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import TeleportSSH
import TeleportTunnel

/// The app origin for a browser (a connection without a client certificate): one request per
/// connection. `GET /x-teleport-auth?token=T` redeems a launch token (through the auth service:
/// once, for this app, within 60 s) and answers `302 /` with the app session cookie
/// (``cookieName``: Secure, HttpOnly, SameSite=Lax, Path=/). Any other request must carry that
/// cookie: the auth service checks it (this app, its web session still valid, the roles) and
/// answers a certificate of the user with the app route, which the proxy hands to the
/// application service exactly as for a certificate client; the request goes on with the cookie
/// removed and `Connection: close`, the answer comes back as bytes, then the connection closes.
/// Without a valid cookie a browser is sent to the proxy's login page and other clients get
/// 401; both are audited (`app.session.start` failure).
final class AppBrowserFront: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    /// The app session cookie on the app's origin.
    static let cookieName = "__Host-teleport-app-session"
    /// The most request bytes held while the checks run.
    static let maxHeldBytes = 8 << 20

    /// What to do with the request.
    enum Action {
        case respond(ByteBuffer)
        case forward(any Channel, HTTPRequestHead)
    }

    private enum State {
        case idle
        case waiting([HTTPServerRequestPart], Int)
        case forwarding(any Channel)
        case done
    }

    private var state = State.idle
    /// The request being forwarded is a WebSocket upgrade.
    private var upgrading = false
    let proxy: AppProxy
    let app: AppServer
    let serverName: String

    init(proxy: AppProxy, app: AppServer, serverName: String) {
        self.proxy = proxy
        self.app = app
        self.serverName = serverName
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .idle:
            guard case .head(let head) = part else { return }
            state = .waiting([], 0)
            let channel = context.channel
            let proxy = self.proxy
            let app = self.app
            let serverName = self.serverName
            let front = NIOLoopBound(self, eventLoop: context.eventLoop)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            Task {
                let action = await proxy.browserAction(head: head, app: app, serverName: serverName, channel: channel)
                channel.eventLoop.execute { front.value.apply(action, context: bound.value) }
            }
        case .waiting(var held, var count):
            if case .body(let buffer) = part { count += buffer.readableBytes }
            guard count <= Self.maxHeldBytes else {
                state = .done
                context.close(promise: nil)
                return
            }
            held.append(part)
            state = .waiting(held, count)
        case .forwarding(let upstream):
            forward(part, to: upstream, context: context)
        case .done:
            // A client reusing the connection for a second request: close, so that it retries
            // on a new connection instead of waiting.
            if case .head = part { context.close(promise: nil) }
        }
    }

    private func forward(_ part: HTTPServerRequestPart, to upstream: any Channel, context: ChannelHandlerContext) {
        switch part {
        case .head: return
        case .body(let buffer): upstream.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
        case .end(let trailers):
            upstream.writeAndFlush(HTTPClientRequestPart.end(trailers), promise: nil)
            state = .done
            if upgrading { splice(upstream, context: context) }
        }
    }

    /// After a WebSocket upgrade request has gone to the application service: both connections
    /// carry bytes from now on (the service answers the 101, or a refusal and closes). The
    /// request decoder leaves, passing on what it held, to a ``GlueHandler`` placed after it.
    private func splice(_ upstream: any Channel, context: ChannelHandlerContext) {
        let (clientSide, upstreamSide) = GlueHandler.matchedPair()
        do {
            let operations = upstream.pipeline.syncOperations
            try operations.removeHandler(operations.handler(type: AppResponseRelay.self), promise: nil)
            try operations.removeHandler(operations.handler(type: HTTPRequestEncoder.self), promise: nil)
            try operations.addHandler(upstreamSide)
            let decoder = try context.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try context.pipeline.syncOperations.addHandler(clientSide, position: .after(decoder))
            // The decoder leaves on a later turn of the loop, passing on what it held; a read's
            // end then flushes that to the partner.
            let client = context.channel
            context.pipeline.syncOperations.removeHandler(decoder).whenSuccess { client.pipeline.fireChannelReadComplete() }
        } catch {
            upstream.close(promise: nil)
            context.close(promise: nil)
        }
    }

    /// Answers, or starts forwarding (on the loop).
    func apply(_ action: Action, context: ChannelHandlerContext) {
        guard case .waiting(let held, _) = state else {
            if case .forward(let upstream, _) = action { upstream.close(promise: nil) }
            return
        }
        switch action {
        case .respond(let bytes):
            state = .done
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(bytes)).whenComplete { _ in channel.close(promise: nil) }
        case .forward(let upstream, let head):
            let client = context.channel
            do {
                try upstream.pipeline.syncOperations.addHandler(HTTPRequestEncoder())
                try upstream.pipeline.syncOperations.addHandler(AppResponseRelay(client: client))
            } catch {
                upstream.close(promise: nil)
                state = .done
                context.close(promise: nil)
                return
            }
            client.closeFuture.whenComplete { _ in upstream.close(promise: nil) }
            state = .forwarding(upstream)
            upgrading = AppBrowserFront.isWebSocketUpgrade(head)
            upstream.write(HTTPClientRequestPart.head(head), promise: nil)
            for part in held { forward(part, to: upstream, context: context) }
            upstream.flush()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
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
        for field in headers["cookie"] {
            for pair in field.split(separator: ";") {
                let trimmed = pair.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix(cookieName + "=") { return String(trimmed.dropFirst(cookieName.count + 1)) }
            }
        }
        return nil
    }

    /// `headers` without the app session cookie (other cookies are the app's and stay).
    static func strippingCookie(_ headers: HTTPHeaders) -> HTTPHeaders {
        var out = headers
        let fields = headers["cookie"]
        out.remove(name: "cookie")
        let kept = fields.flatMap { $0.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) } }
            .filter { !$0.isEmpty && !$0.hasPrefix(cookieName + "=") }
        if !kept.isEmpty { out.add(name: "Cookie", value: kept.joined(separator: "; ")) }
        return out
    }

    /// A complete HTTP/1.1 answer that closes the connection.
    static func response(
        status: HTTPResponseStatus, headers: [(String, String)] = [], body: String, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let text = body + "\n"
        var head = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n"
        head += "Content-Type: text/plain; charset=utf-8\r\nContent-Length: \(text.utf8.count)\r\nConnection: close\r\n"
        head += "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        return allocator.buffer(string: head + "\r\n" + text)
    }
}

/// The application service's answer, passed to the browser's connection as bytes; the browser's
/// connection closes once the service closes its side.
final class AppResponseRelay: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let client: any Channel
    private var last: EventLoopFuture<Void>?

    init(client: any Channel) { self.client = client }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        last = client.writeAndFlush(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        let client = self.client
        if let last {
            last.whenComplete { _ in client.close(promise: nil) }
        } else {
            client.close(promise: nil)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension AppProxy {
    /// What a browser's request on `app`'s origin gets: the launch redemption, a refusal, or the
    /// forwarding to the application service.
    func browserAction(head: HTTPRequestHead, app: AppServer, serverName: String, channel: any Channel) async -> AppBrowserFront.Action {
        let allocator = channel.allocator
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
        func refuse(_ message: String, status: HTTPResponseStatus = .unauthorized, audited: Bool = true) -> AppBrowserFront.Action {
            if audited {
                fields["error"] = .string(message)
                audit?.add(AuditEventType.appSessionStartFailure, fields)
            }
            logger.info("app request refused: \(message)", metadata: ["tp.sni": "\(serverName)"])
            if browser, status == .unauthorized {
                return .respond(
                    AppBrowserFront.response(
                        status: .found, headers: [("Location", loginURL), ("Set-Cookie", clearCookie)], body: message, allocator: allocator))
            }
            return .respond(AppBrowserFront.response(status: status, headers: [("Set-Cookie", clearCookie)], body: message, allocator: allocator))
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
                return .respond(
                    AppBrowserFront.response(status: .found, headers: [("Location", "/"), ("Set-Cookie", cookie)], body: "", allocator: allocator))
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
        do {
            identity = try await auth.authenticateAppSession(AuthAPI.AppSessionRequest(secret: secret, appName: app.name, clientAddress: clientAddress))
        } catch {
            let message = (error as? TeleportError)?.message ?? "the app session cannot be checked"
            let code = (error as? TeleportError)?.code
            return refuse(message, status: code == .connectionProblem || code == .internalError ? .badGateway : .unauthorized)
        }
        fields["user"] = .string(identity.user)
        guard let addr = app.spec.addr, let target = try? HostPort.parse(addr, defaultPort: 3031, key: "spec.addr") else {
            return refuse("app \(app.name) has no application service address", status: .badGateway)
        }
        do {
            let upstream = try await dialService(target, hostID: app.spec.hostID, on: channel.eventLoop)
            let handoff = DatabaseHandoff(
                userCertificatePEM: identity.certificatePEM, clientAddress: clientAddress,
                parameters: [["app", app.name], ["server_name", serverName]])
            try await upstream.writeAndFlush(upstream.allocator.buffer(bytes: try handoff.frame()))
            var forwarded = head
            forwarded.headers = AppBrowserFront.strippingCookie(head.headers)
            // A WebSocket upgrade keeps its Connection: Upgrade (the service checks it again).
            if !AppBrowserFront.isWebSocketUpgrade(head) { forwarded.headers.replaceOrAdd(name: "Connection", value: "close") }
            return .forward(upstream, forwarded)
        } catch {
            return refuse(
                "cannot reach app \(app.name)'s application service: \((error as? TeleportError)?.message ?? "\(error)")", status: .badGateway)
        }
    }
}
