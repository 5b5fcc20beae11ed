import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import TeleportAPI
import TeleportAuthClient
import TeleportSSH

/// The request path of one proxied app connection at the service, as channel handlers on the
/// connection's event loop (no task and no thread hop per request): after ``AppSessions`` accepted
/// the session (``start(_:)``), each request's `Host` is checked, its head rewritten
/// (``AppRequestRules/upstreamHead(_:internalHost:clientAddress:publicHost:assertion:extraHeaders:)``)
/// and sent over the kept connection to the app (``AppServiceUpstream`` on the same loop), the
/// answer streamed back part by part with backpressure both ways, and audited when it ends
/// (`app.session.request`; a refused event — the outbox full under `fail_closed` — ends the
/// connection). Only a JWT to renew (every few minutes) or a new connection to the app goes
/// through a task. A WebSocket upgrade gets a connection of its own and, after the app's `101`,
/// both connections carry bytes (``GlueHandler``). A refused session answers its first request
/// with the status and one line (``refuse(status:message:)``), then closes.
final class AppServiceFront: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = NIOAny
    typealias OutboundOut = HTTPServerResponsePart

    /// The request bytes held while the session is checked or a connection to the app opens, at
    /// which reading stops.
    static let maxHeldBytes = 1 << 20

    /// What the session knows once accepted.
    struct Session {
        var accepted: AppSessions.Accepted
        var audit: AppAudit.Session
    }

    private enum State {
        /// The session is being checked; request parts wait.
        case waiting
        /// A refused session: the first request gets this answer.
        case refused(HTTPResponseStatus, String)
        case idle
        /// A JWT or a connection to the app is on its way; request parts wait.
        case preparing
        /// The request goes to the app; its answer comes back through ``AppServiceUpstream``.
        case forwarding
        case closed
    }

    private var state = State.waiting
    private var context: ChannelHandlerContext?
    private var held: [HTTPServerRequestPart] = []
    private var heldBytes = 0
    private var readDeferred = false
    private var session: Session?
    private var token: AuthAPI.AppJWTResponse?
    /// The kept connection to the app.
    private var upstream: (any Channel)?
    private var upstreamReusable = false
    /// The request being forwarded.
    private var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
    private var publicHost = ""
    private var started = ContinuousClock.now
    private var keepAlive = true
    private var upgrading = false
    private var requestEnded = false
    private var answerStatus = 0
    private var answerEnded = false
    private var deadline: Scheduled<Void>?
    let sessions: AppSessions

    init(sessions: AppSessions) {
        self.sessions = sessions
    }

    var service: AppService { sessions.service }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    // MARK: from AppSessions (on the loop)

    /// The session was accepted: requests flow.
    func start(_ session: Session) {
        self.session = session
        guard case .waiting = state else { return }
        state = .idle
        releaseHeld()
    }

    /// The session was refused: the first request gets `status` and `message`, then the connection closes.
    func refuse(status: HTTPResponseStatus, message: String) {
        guard case .waiting = state else { return }
        state = .refused(status, message)
        releaseHeld()
    }

    /// Passes on what waited, in order, while the state allows.
    private func releaseHeld() {
        let parts = held
        held = []
        heldBytes = 0
        for (index, part) in parts.enumerated() {
            switch state {
            case .waiting, .preparing:
                held.append(contentsOf: parts[index...])
                for case .body(let buffer) in parts[index...] { heldBytes += buffer.readableBytes }
                return
            default: handle(part)
            }
        }
        if readDeferred, let context {
            readDeferred = false
            context.read()
        }
    }

    // MARK: the client's requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .waiting, .preparing:
            if case .body(let buffer) = part { heldBytes += buffer.readableBytes }
            held.append(part)
        default: handle(part)
        }
    }

    func read(context: ChannelHandlerContext) {
        switch state {
        case .waiting, .preparing:
            if heldBytes >= Self.maxHeldBytes {
                readDeferred = true
                return
            }
        default: break
        }
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
    }

    private func handle(_ part: HTTPServerRequestPart) {
        switch state {
        case .refused(let status, let message):
            guard case .head(let head) = part else { return }
            state = .closed
            respond(status: status, message: message, head: head, close: true)
        case .idle:
            guard case .head(let head) = part else { return }
            begin(head)
        case .forwarding:
            forward(part)
        case .waiting, .preparing, .closed:
            return
        }
    }

    /// One request's checks, then its forwarding (at once when the JWT is current and the kept
    /// connection to the app can carry it).
    private func begin(_ head: HTTPRequestHead) {
        guard let session, let context else { return }
        let accepted = session.accepted
        self.head = head
        started = ContinuousClock.now
        keepAlive = head.isKeepAlive
        requestEnded = false
        answerStatus = 0
        answerEnded = false
        let hostHeader = head.headers.first(name: "host") ?? ""
        publicHost = hostHeader
        guard AppRequestRules.hostMatches(hostHeader, publicAddr: accepted.publicAddr) else {
            let message =
                "the Host header \"\(hostHeader.prefix(64))\" does not name app \(accepted.app.name) (\(accepted.publicAddr)), which this certificate is for; "
                + "run tsh apps login for the other app"
            state = .closed
            audit(status: 403, milliseconds: 0)
            respond(status: .forbidden, message: message, head: head, close: true)
            return
        }
        upgrading = AppRequestRules.isWebSocketUpgrade(head)
        let now = Int(Date().timeIntervalSince1970)
        let tokenCurrent = token.map { $0.expires - 30 > now } ?? false
        let kept = upstreamReusable && (upstream?.isActive ?? false) && !upgrading
        if tokenCurrent && kept {
            send()
            return
        }
        // A JWT to ask for, or a connection to open: a task, then back on the loop.
        state = .preparing
        let channel = context.channel
        let loop = context.eventLoop
        let front = NIOLoopBound(self, eventLoop: loop)
        let certificatePEM = accepted.certificatePEM
        let app = accepted.app
        let service = self.service
        let sessions = self.sessions
        let upgrading = self.upgrading
        let needsToken = !tokenCurrent
        Task {
            var fetched: AuthAPI.AppJWTResponse?
            if needsToken {
                do {
                    fetched = try await service.auth.appJWT(AuthAPI.AppJWTRequest(userCertificatePEM: certificatePEM, appName: app.name))
                } catch {
                    service.logger.info("app connection ended: no JWT: \(error)", metadata: ["tp.app": "\(app.name)"])
                    channel.close(promise: nil)
                    return
                }
            }
            var connected: Result<any Channel, any Error>?
            if !kept {
                do {
                    connected = .success(try await sessions.connectChannel(app, upgrade: upgrading, on: loop))
                } catch {
                    connected = .failure(error)
                }
            }
            loop.execute { [fetched, connected] in front.value.prepared(token: fetched, connected: connected) }
        }
    }

    /// Back on the loop with what ``begin(_:)`` waited for.
    private func prepared(token fetched: AuthAPI.AppJWTResponse?, connected: Result<any Channel, any Error>?) {
        if let fetched { token = fetched }
        guard case .preparing = state, let session else {
            if case .success(let channel)? = connected { channel.close(promise: nil) }
            return
        }
        switch connected {
        case .success(let channel)?:
            if !upgrading { upstream?.close(promise: nil) }
            do {
                try channel.pipeline.syncOperations.addHandler(AppServiceUpstream(front: self))
            } catch {
                channel.close(promise: nil)
                close()
                return
            }
            if !upgrading {
                upstream = channel
                upstreamReusable = true
            } else {
                webSocket = channel
            }
        case .failure(let error)?:
            let accepted = session.accepted
            let message = "cannot reach app \(accepted.app.name) at \(accepted.app.uri): \((error as? TeleportError)?.message ?? "\(error)")"
            // The request's body (if any) is dropped: the connection ends after the answer unless it has all arrived.
            let ended = held.contains { if case .end = $0 { true } else { false } }
            state = upgrading || !ended || !keepAlive ? .closed : .idle
            let closing: Bool
            if case .closed = state { closing = true } else { closing = false }
            held = []
            heldBytes = 0
            // Audited before the answer: its end lets NIO's pipeline handler pass on the next request.
            let audited = audit(status: 502, milliseconds: AppSessions.milliseconds(since: started))
            if !audited { state = .closed }
            respond(status: .badGateway, message: message, head: head, close: closing || !audited)
            releaseHeld()
            return
        case nil: break
        }
        send()
        releaseHeld()
    }

    /// The WebSocket's own connection to the app.
    private var webSocket: (any Channel)?

    /// The channel the current request goes to.
    private var target: (any Channel)? { upgrading ? webSocket : upstream }

    /// Sends the request's head (and what of it waited) to the app.
    private func send() {
        guard let session, let target else { return close() }
        let accepted = session.accepted
        var upstreamHead = AppRequestRules.upstreamHead(
            head, internalHost: accepted.internalHost, clientAddress: accepted.clientAddress, publicHost: publicHost,
            assertion: token?.token ?? "", extraHeaders: accepted.app.headers.map { ($0.name, $0.value) })
        upstreamHead.headers.remove(name: "expect")
        state = .forwarding
        target.write(HTTPClientRequestPart.head(upstreamHead), promise: nil)
        if upgrading {
            // llhttp ends an upgrade request at its head: there is no body to pass on.
            requestEnded = true
            target.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            armDeadline(target)
        }
    }

    /// Passes one request part to the app (dropped once the app's connection is gone).
    private func forward(_ part: HTTPServerRequestPart) {
        switch part {
        case .head: return
        case .body(let buffer):
            guard !upgrading, let target, target.isActive else { return }
            target.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
        case .end(let trailers):
            guard !requestEnded else { return }
            requestEnded = true
            if let target, target.isActive {
                target.writeAndFlush(HTTPClientRequestPart.end(trailers), promise: nil)
                if answerStatus == 0 { armDeadline(target) }
            } else {
                upstreamReusable = false
            }
            if answerEnded {
                finishAfterAnswer()
                if case .closed = state { close() }
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .forwarding = state { target?.flush() }
        context.fireChannelReadComplete()
    }

    /// The app has the configured time to start its answer once the request is sent.
    private func armDeadline(_ channel: any Channel) {
        deadline?.cancel()
        deadline = channel.eventLoop.scheduleTask(in: TimeAmount(sessions.configuration.responseTimeout)) { channel.close(promise: nil) }
    }

    // MARK: the app's answer, from AppServiceUpstream (on the same loop)

    func answerHead(_ response: HTTPResponseHead, from channel: any Channel) {
        guard let context, let session, case .forwarding = state, channel === target else { return }
        deadline?.cancel()
        deadline = nil
        answerStatus = Int(response.status.code)
        if !response.isKeepAlive { upstreamReusable = false }
        var answer = AppRequestRules.clientHead(response, internalHosts: session.accepted.internalHosts, publicHost: publicHost)
        if upgrading && response.status != .switchingProtocols {
            // Refused by the app: its answer, then the connection ends.
            answer.headers.replaceOrAdd(name: "Connection", value: "close")
        }
        // A 101 is written with its end once the upgrade is audited.
        if upgrading && response.status == .switchingProtocols { return }
        context.write(wrapOutboundOut(.head(answer)), promise: nil)
    }

    func answerBody(_ buffer: ByteBuffer, from channel: any Channel) {
        guard let context, case .forwarding = state, channel === target else { return }
        if upgrading && answerStatus == 101 {
            // A body with a 101: the connection ends.
            close()
            return
        }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    func answerEnd(_ trailers: HTTPHeaders?, head response: HTTPResponseHead?, from channel: any Channel) {
        guard let context, let session, case .forwarding = state, channel === target else { return }
        answerEnded = true
        if upgrading {
            guard answerStatus == 101, let response else {
                state = .closed
                _ = audit(status: answerStatus, milliseconds: AppSessions.milliseconds(since: started))
                let client = context.channel
                context.writeAndFlush(wrapOutboundOut(.end(trailers))).whenComplete { _ in client.close(promise: nil) }
                return
            }
            guard audit(status: 101, milliseconds: AppSessions.milliseconds(since: started)) else { return close() }
            var answer = AppRequestRules.clientHead(response, internalHosts: session.accepted.internalHosts, publicHost: publicHost)
            answer.headers.replaceOrAdd(name: "Connection", value: "Upgrade")
            context.write(wrapOutboundOut(.head(answer)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            splice(context: context, upstream: channel)
            return
        }
        // Audited, and the state set, before the end is written: the end lets NIO's pipeline
        // handler pass on a pipelined request at once.
        let audited = audit(status: answerStatus, milliseconds: AppSessions.milliseconds(since: started))
        if !audited {
            state = .closed
        } else if requestEnded {
            finishAfterAnswer()
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(trailers)))
        if case .closed = state {
            let client = context.channel
            done.whenComplete { _ in client.close(promise: nil) }
        }
    }

    /// The request and its answer are done: the next request may come, or the connection ends
    /// (the client asked, or another protocol's upgrade stopped the decoder).
    private func finishAfterAnswer() {
        guard case .forwarding = state else { return }
        if !upstreamReusable {
            upstream?.close(promise: nil)
            upstream = nil
        }
        guard keepAlive, !AppRequestRules.asksUpgrade(head) else {
            state = .closed
            return
        }
        state = .idle
    }

    /// The app's connection closed.
    func upstreamClosed(_ channel: any Channel) {
        let current = channel === target
        if channel === upstream { upstream = nil }
        if channel === webSocket { webSocket = nil }
        guard current, let session, case .forwarding = state else { return }
        deadline?.cancel()
        deadline = nil
        if answerEnded { return }
        if answerStatus != 0 {
            // Mid-answer: the client's connection ends too.
            service.logger.debug("app \(session.accepted.app.name) closed the connection mid-response", metadata: ["tp.app": "\(session.accepted.app.name)"])
            return close()
        }
        let accepted = session.accepted
        let message = upgrading
            ? "app \(accepted.app.name) at \(accepted.app.uri) did not answer the WebSocket upgrade within \(sessions.configuration.responseTimeout)"
            : "app \(accepted.app.name) at \(accepted.app.uri) did not answer within \(sessions.configuration.responseTimeout) or closed the connection"
        let audited = audit(status: 504, milliseconds: AppSessions.milliseconds(since: started))
        let closing = upgrading || !requestEnded || !keepAlive || !audited
        state = closing ? .closed : .idle
        respond(status: .gatewayTimeout, message: message, head: head, close: closing)
    }

    // MARK: backpressure

    /// Towards the app: its reads wait while the client's connection is full.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        if let channel = target {
            channel.setOption(ChannelOptions.autoRead, value: writable).whenSuccess { if writable { channel.read() } }
        }
        context.fireChannelWritabilityChanged()
    }

    /// Towards the client: its reads wait while the app's connection is full.
    func upstreamWritabilityChanged(_ writable: Bool) {
        guard let context else { return }
        let channel = context.channel
        channel.setOption(ChannelOptions.autoRead, value: writable).whenSuccess { if writable { channel.read() } }
    }

    // MARK: ends

    @discardableResult
    private func audit(status: Int, milliseconds: Int) -> Bool {
        guard let session else { return false }
        return service.audit.request(session.audit, method: head.method.rawValue, path: head.uri, status: status, milliseconds: milliseconds)
    }

    /// A short plain-text answer (one line naming the cause).
    private func respond(status: HTTPResponseStatus, message: String, head: HTTPRequestHead, close: Bool) {
        guard let context else { return }
        let body = context.channel.allocator.buffer(string: message + "\n")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        headers.add(name: "Cache-Control", value: "no-store")
        if close { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    private func close() {
        state = .closed
        context?.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        deadline?.cancel()
        upstream?.close(promise: nil)
        upstream = nil
        webSocket?.close(promise: nil)
        webSocket = nil
        held = []
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close()
    }

    /// After the app's `101`: both connections carry bytes. The HTTP handlers leave; the
    /// decoders pass on what they held (a first WebSocket frame sent with the 101, or by an
    /// eager client) to a ``GlueHandler`` placed after them, and a read's end flushes it.
    private func splice(context: ChannelHandlerContext, upstream: any Channel) {
        let (clientSide, upstreamSide) = GlueHandler.matchedPair()
        state = .closed
        do {
            let operations = upstream.pipeline.syncOperations
            if let handler = try? operations.handler(type: NIOHTTPRequestHeadersValidator.self) { operations.removeHandler(handler, promise: nil) }
            try operations.removeHandler(operations.handler(type: HTTPRequestEncoder.self), promise: nil)
            let responseDecoder = try operations.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self)
            try operations.addHandler(upstreamSide, position: .after(responseDecoder))
            operations.removeHandler(responseDecoder).whenSuccess { upstream.pipeline.fireChannelReadComplete() }
            let client = context.pipeline.syncOperations
            AppSessions.removeHTTPServerHandlers(client)
            let decoder = try client.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try client.addHandler(clientSide, position: .after(decoder))
            let channel = context.channel
            client.removeHandler(decoder).whenSuccess { channel.pipeline.fireChannelReadComplete() }
            webSocket = nil
            // The glue owns both ends now; the client's close closes the app's connection through it.
        } catch {
            upstream.close(promise: nil)
            context.close(promise: nil)
        }
    }
}

/// On the service's connection to the app: passes the answer, part by part, to the
/// ``AppServiceFront`` of the proxy's connection (the same loop), and tells it when the
/// connection closes or its writability changes.
final class AppServiceUpstream: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let front: AppServiceFront
    private var head: HTTPResponseHead?

    init(front: AppServiceFront) {
        self.front = front
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let response):
            head = response
            front.answerHead(response, from: context.channel)
        case .body(let buffer): front.answerBody(buffer, from: context.channel)
        case .end(let trailers):
            let response = head
            head = nil
            front.answerEnd(trailers, head: response, from: context.channel)
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
