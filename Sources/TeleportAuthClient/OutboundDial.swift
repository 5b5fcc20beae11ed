import Foundation
import Synchronization
import TeleportCrypto
public import NIOCore
public import NIOPosix
import TeleportAPI

/// The one way agents open outbound TCP connections (the auth API, the join, the reverse tunnel):
/// directly, or through the HTTP CONNECT proxy that ``ProxyEnvironment`` names for the target.
///
/// Through a proxy, the dial connects to the proxy, sends `CONNECT host:port HTTP/1.1` (with `Host`
/// and, when the proxy URL has `user:password@`, `Proxy-Authorization: Basic`), requires a `200`
/// answer, removes its own handler and only then runs `initializer` (which adds TLS and the
/// protocol's handlers) on the now end-to-end byte stream. Anything but `200` is a one-line
/// ``TeleportError`` naming the proxy and its status line.
public enum OutboundDial {
    /// The proxy settings of this process's environment, read once, with the exceptions the daemon
    /// added (``exemptFromProxy(host:port:)``). Invalid settings are an error at the first outbound
    /// connection (and at daemon start, which checks them first).
    public static func processProxies() throws -> ProxyEnvironment {
        try processSettings.withLock { try $0.get() }
    }

    /// Exempts `host:port` from the process's proxy: the daemon's own auth service, reached by its
    /// proxy and node in the same process, is never dialed through an HTTP proxy.
    public static func exemptFromProxy(host: String, port: Int) {
        let bytes = SSHCIDRBlock.parseAddress(ProxyEnvironment.unbracket(host))
        let exception: ProxyEnvironment.Exception = bytes.map { .network($0, prefixLength: $0.count * 8, port: port) }
            ?? .domain(host.lowercased(), port: port)
        processSettings.withLock { settings in
            if case .success(var environment) = settings {
                environment.exceptions.append(exception)
                settings = .success(environment)
            }
        }
    }

    private static let processSettings = Mutex<Result<ProxyEnvironment, TeleportError>>(readProcessEnvironment())

    private static func readProcessEnvironment() -> Result<ProxyEnvironment, TeleportError> {
        do {
            return .success(try ProxyEnvironment(environment: ProcessInfo.processInfo.environment))
        } catch let error as TeleportError {
            return .failure(error)
        } catch {
            return .failure(TeleportError.badParameter("the proxy environment variables cannot be read: \(error)"))
        }
    }

    /// Connects to `host:port` (through the proxy `proxies` chooses for it, if any) and returns what
    /// `initializer` made of the channel.
    ///
    /// - Parameters:
    ///   - host: the target's host name or IP address (IPv6 with or without brackets).
    ///   - port: the target's port.
    ///   - proxies: the proxy settings (``processProxies()`` in the daemon; injected in tests).
    ///   - group: the event loop group.
    ///   - connectTimeout: the TCP connect timeout, and the time the proxy has to answer `CONNECT`.
    ///   - initializer: sets up the connected channel (TLS, framing); it runs on the channel's
    ///     event loop once the stream reaches the target, as a `ClientBootstrap` initializer would.
    /// - Throws: the connection error of a direct dial unchanged; for a proxied dial, a
    ///   ``TeleportError`` `connectionProblem` naming the proxy.
    public static func connect<Output: Sendable>(
        host: String, port: Int, proxies: ProxyEnvironment, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: TimeAmount = .seconds(5),
        initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Output>
    ) async throws -> Output {
        let target = ProxyEnvironment.unbracket(host)
        guard let proxy = proxies.proxy(forHost: target, port: port) else {
            return try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .connect(host: target, port: port) { channel in initializer(channel) }
        }
        let authority = HostPort.join(target, port)
        let handshake = ConnectHandshake(authority: authority, proxy: proxy, timeout: connectTimeout)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handshake) }
                }
                .connect(host: proxy.host, port: proxy.port).get()
        } catch {
            throw TeleportError.connectionProblem(
                "cannot reach the HTTP CONNECT proxy \(proxy) (\(proxy.variable)) to connect to \(authority): \(HTTPSTransport.describe(error))",
                cause: error)
        }
        do {
            try await handshake.answered.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
        do {
            return try await channel.eventLoop.flatSubmit {
                channel.pipeline.syncOperations.removeHandler(handshake).flatMap { initializer(channel) }
            }.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    /// The `CONNECT` request for `authority` (`host:port`).
    static func connectRequest(authority: String, proxy: ProxyEnvironment.Proxy) -> String {
        var request = "CONNECT \(authority) HTTP/1.1\r\nHost: \(authority)\r\n"
        if let username = proxy.username {
            let credentials = Data("\(username):\(proxy.password ?? "")".utf8).base64EncodedString()
            request += "Proxy-Authorization: Basic \(credentials)\r\n"
        }
        return request + "\r\n"
    }

    /// Checks the proxy's answer head (up to the blank line): nil when it is `200`, else the one-line error.
    static func check(answer head: String, authority: String, proxy: ProxyEnvironment.Proxy) -> TeleportError? {
        let statusLine = head.split(separator: "\r\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        if parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1] == "200" { return nil }
        let printable = String(statusLine.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7f }.prefix(120).map(Character.init))
        return TeleportError.connectionProblem(
            "the HTTP CONNECT proxy \(proxy) (\(proxy.variable)) refused the connection to \(authority): \"\(printable)\" "
                + "(check the proxy's rules for CONNECT to port \(authority.split(separator: ":").last ?? ""), or exempt the address with NO_PROXY)")
    }
}

/// Sends `CONNECT` when the connection to the proxy is up and reads the answer's head.
final class ConnectHandshake: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let authority: String
    let proxy: ProxyEnvironment.Proxy
    let timeout: TimeAmount
    private var promise: EventLoopPromise<Void>?
    private var buffer = ByteBuffer()
    private var timer: Scheduled<Void>?
    private var done = false
    private let answeredBox = AnsweredBox()

    /// The largest answer head accepted.
    static let maxHead = 16 * 1024

    init(authority: String, proxy: ProxyEnvironment.Proxy, timeout: TimeAmount) {
        self.authority = authority
        self.proxy = proxy
        self.timeout = timeout
    }

    /// Completes once the proxy answered `200`; fails with a ``TeleportError`` otherwise.
    var answered: EventLoopFuture<Void> {
        answeredBox.future
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: Void.self)
        self.promise = promise
        answeredBox.set(promise.futureResult)
        if context.channel.isActive { start(context: context) }
    }

    /// A channel that never connected is torn down without going inactive: the promise must still complete.
    func handlerRemoved(context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        timer?.cancel()
        promise?.fail(TeleportError.connectionProblem("the connection to the HTTP CONNECT proxy \(proxy) (\(proxy.variable)) closed"))
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard timer == nil, !done else { return }
        let request = OutboundDial.connectRequest(authority: authority, proxy: proxy)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) { [self] in
            finish(loopContext.value, TeleportError.connectionProblem(
                "the HTTP CONNECT proxy \(proxy) (\(proxy.variable)) did not answer CONNECT \(authority) in time"))
        }
    }

    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return context.fireChannelRead(data) }
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        let bytes = buffer.readableBytesView
        guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else {
            if buffer.readableBytes > Self.maxHead {
                finish(context, TeleportError.connectionProblem(
                    "the HTTP CONNECT proxy \(proxy) (\(proxy.variable)) sent an answer head longer than \(Self.maxHead) bytes"))
            }
            return
        }
        let headLength = end.upperBound - bytes.startIndex
        let head = buffer.readString(length: headLength) ?? ""
        if let error = OutboundDial.check(answer: head, authority: authority, proxy: proxy) {
            finish(context, error)
            return
        }
        // Bytes after the head belong to the target (TLS servers speak second, so normally none).
        if buffer.readableBytes > 0 {
            let rest = buffer
            buffer = ByteBuffer()
            context.fireChannelRead(wrapInboundOut(rest))
        }
        finish(context, nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context, TeleportError.connectionProblem(
            "the HTTP CONNECT proxy \(proxy) (\(proxy.variable)) closed the connection before answering CONNECT \(authority)"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done {
            finish(context, TeleportError.connectionProblem(
                "the connection to the HTTP CONNECT proxy \(proxy) (\(proxy.variable)) failed: \(HTTPSTransport.describe(error))", cause: error))
            return
        }
        context.fireErrorCaught(error)
    }

    private func finish(_ context: ChannelHandlerContext, _ error: TeleportError?) {
        guard !done else { return }
        done = true
        timer?.cancel()
        if let error {
            promise?.fail(error)
            context.close(promise: nil)
        } else {
            promise?.succeed(())
        }
    }
}

/// The handshake's future, readable from outside the event loop once the handler was added.
final class AnsweredBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: EventLoopFuture<Void>?

    func set(_ future: EventLoopFuture<Void>) { lock.withLock { stored = future } }

    var future: EventLoopFuture<Void> {
        lock.withLock { stored } ?? MultiThreadedEventLoopGroup.singleton.next().makeFailedFuture(
            TeleportError.connectionProblem("the HTTP CONNECT handshake did not start"))
    }
}
