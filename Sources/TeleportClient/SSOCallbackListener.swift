public import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
public import TeleportAPI
import TeleportCrypto

/// `tsh login --auth=NAME`'s one-time HTTP listener on 127.0.0.1: the proxy sends the browser
/// here with the login result sealed with ``secret`` (which only this `tsh` knows; it is in the
/// callback address the proxy was given and removed from the redirect). The first request whose
/// result opens with the secret ends the wait; anything else gets 400 and the wait goes on.
public final class SSOCallbackListener: Sendable {
    /// The key the result must be sealed with.
    public let secret: String
    /// The port the listener is bound to.
    public let port: Int
    private let channel: any Channel
    private let results: AsyncStream<Data>
    private let continuation: AsyncStream<Data>.Continuation

    /// The address to give the proxy: `http://127.0.0.1:PORT/callback?secret=KEY`.
    public var clientRedirectURL: String { "http://127.0.0.1:\(port)/callback?\(SSOResultSeal.secretParameter)=\(secret)" }

    /// Binds 127.0.0.1 on a free port.
    public static func start() async throws -> SSOCallbackListener {
        let secret = SSOResultSeal.makeSecret()
        let (stream, continuation) = AsyncStream<Data>.makeStream()
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(ChannelOptions.backlog, value: 8)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try child.pipeline.syncOperations.addHandler(CallbackHandler(secret: secret, deliver: { continuation.yield($0) }))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
        } catch {
            throw TeleportError.connectionProblem("cannot listen on 127.0.0.1 for the login's callback: \(error)")
        }
        guard let port = channel.localAddress?.port else { throw TeleportError.internalError("the callback listener has no port") }
        return SSOCallbackListener(secret: secret, port: port, channel: channel, results: stream, continuation: continuation)
    }

    private init(secret: String, port: Int, channel: any Channel, results: AsyncStream<Data>, continuation: AsyncStream<Data>.Continuation) {
        self.secret = secret
        self.port = port
        self.channel = channel
        self.results = results
        self.continuation = continuation
    }

    /// Waits for the sealed result (opened), at most `timeout`; then stops listening.
    public func wait(timeout: Duration) async throws -> AuthAPI.LoginResponse {
        defer { close() }
        let results = self.results
        let data = try await withDeadline(timeout, timeoutMessage: {
            "no login arrived from the browser within \(Int(timeout.components.seconds / 60)) minutes; run tsh login again and finish it in the browser"
        }) {
            for await data in results { return data }
            throw TeleportError.connectionProblem("the login's callback listener closed")
        }
        do {
            return try ResourceCodec.jsonDecoder().decode(AuthAPI.LoginResponse.self, from: data)
        } catch {
            throw TeleportError.badParameter("the login result from the proxy is not valid")
        }
    }

    /// Stops listening.
    public func close() {
        continuation.finish()
        channel.close(promise: nil)
    }

    /// Answers one HTTP request: a good result gets the "you may close this tab" page.
    final class CallbackHandler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let secret: String
        let deliver: @Sendable (Data) -> Void
        var head: HTTPRequestHead?

        init(secret: String, deliver: @escaping @Sendable (Data) -> Void) {
            self.secret = secret
            self.deliver = deliver
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): self.head = head
            case .body: break
            case .end:
                guard let head else { return }
                let (status, text, result) = Self.answer(uri: head.uri, method: head.method, secret: secret)
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "text/html; charset=utf-8")
                headers.add(name: "Content-Length", value: "\(text.utf8.count)")
                headers.add(name: "Connection", value: "close")
                headers.add(name: "Cache-Control", value: "no-store")
                headers.add(name: "Content-Security-Policy", value: "default-src 'none'")
                headers.add(name: "Referrer-Policy", value: "no-referrer")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
                if let result { deliver(result) }
            }
        }

        /// The reply to a request (pure): the page, and the opened result when it was good.
        static func answer(uri: String, method: HTTPMethod, secret: String) -> (HTTPResponseStatus, String, Data?) {
            func page(_ title: String, _ text: String) -> String {
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>\(title)</title></head><body><h1>\(title)</h1><p>\(text)</p></body></html>"
            }
            guard method == .GET, let components = URLComponents(string: uri), components.path == "/callback" else {
                return (.notFound, page("Not found", "This is tsh's one-time login listener."), nil)
            }
            let items = components.queryItems ?? []
            guard let sealed = items.first(where: { $0.name == SSOResultSeal.responseParameter })?.value,
                let state = items.first(where: { $0.name == SSOResultSeal.stateParameter })?.value,
                let opened = try? SSOResultSeal.open(sealed, secret: secret, state: state)
            else {
                return (.badRequest, page("Login failed", "This callback does not carry a login result for this tsh. Return to the terminal."), nil)
            }
            return (.ok, page("Login successful", "You are logged in. You may close this tab and return to the terminal."), opened)
        }
    }
}
