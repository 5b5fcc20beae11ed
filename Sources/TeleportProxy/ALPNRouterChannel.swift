import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import TeleportTunnel
import TeleportAPI
import TeleportSSH
import TeleportWire

/// The web port's connection setup: one port for HTTPS, `tsh proxy ssh`, agents' calls to auth and
/// the routes later parts register (reverse tunnels, databases, Kubernetes). Before any TLS
/// handler, a ``ClientHelloSniffer`` holds the first bytes until the ClientHello parses; then the
/// first ALPN protocol the client offers that has an ``ALPNRoute`` decides:
/// - ``ALPNRoute/passthrough(host:port:)``: the raw bytes go to that address (TLS end to end);
/// - ``ALPNRoute/terminate(_:_:)``: TLS with that route's context, then its closure;
/// - anything else (`http/1.1`, `teleport-proxy-ssh`, no ALPN, an unknown one): the web TLS
///   context and `Base` (the HTTP server and the `tsh proxy ssh` switch).
///
/// A client that does not speak TLS gets one line in its own protocol (an HTTP 400 naming the
/// HTTPS address, an SSH banner naming the SSH port) and is closed; garbage, a malformed or late
/// ClientHello, is closed. Those are logged at debug level only.
struct ALPNRouterChannel<Base: ServerChildChannel>: ServerChildChannel {
    /// The connection, and (once routed) `Base`'s value, or `nil` when another route took it.
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        let routed: EventLoopFuture<Base.Value?>
    }

    let base: Base
    let webContext: NIOSSLContext
    let routes: [String: ALPNRoute]
    /// How long a client has to send its ClientHello.
    let deadline: TimeAmount
    /// `host:port` of the HTTPS address, for the answer to plain HTTP.
    let httpsAddress: String
    /// The proxy's SSH port, for the answer to an SSH client.
    let sshPort: Int
    /// `teleport.connection_limits` of the web port (nil: none).
    var limiter: ConnectionLimiter? = nil
    /// Routes by the server name's prefix, for ClientHellos no ALPN route matched.
    var serverNameRoutes: [String: ALPNRoute] = [:]
    /// Routes by the whole server name (apps' public addresses), asked last.
    var serverNameMatcher: (@Sendable (String) -> ALPNRoute?)? = nil
    /// When set, replaces ``webContext`` for each new connection (the user CA's trusted
    /// certificates follow a CA rotation).
    var webContextSource: TLSContextSource? = nil

    /// The route for the protocols a client offers: the first one (in the client's order) registered.
    static func route(alpn: [String], routes: [String: ALPNRoute]) -> (String, ALPNRoute)? {
        for name in alpn {
            if let route = routes[name] { return (name, route) }
        }
        return nil
    }

    /// The route for a ClientHello: its ALPN protocols first (``route(alpn:routes:)``), else the
    /// longest registered server-name prefix its SNI starts with (case-insensitive, as DNS names;
    /// e.g. Kubernetes clients that can set only a server name), else nil (the web TLS).
    static func route(
        alpn: [String], sni: String?, routes: [String: ALPNRoute], serverNameRoutes: [String: ALPNRoute]
    ) -> (String, ALPNRoute)? {
        if let found = route(alpn: alpn, routes: routes) { return found }
        guard let sni = sni?.lowercased(), !sni.isEmpty else { return nil }
        let matches = serverNameRoutes.filter { sni.hasPrefix($0.key.lowercased()) }
        guard let best = matches.max(by: { $0.key.count < $1.key.count }) else { return nil }
        return ("sni:" + best.key, best.value)
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        // `teleport.connection_limits.max_connections`: the excess is closed before any byte is read.
        if let limiter, !limiter.admit(channel) {
            channel.close(promise: nil)
            return channel.eventLoop.makeSucceededFuture(Value(channel: channel, routed: channel.eventLoop.makeSucceededFuture(nil)))
        }
        let outcome = channel.eventLoop.makePromise(of: ClientHelloSniffer.Outcome.self)
        let sniffer = ClientHelloSniffer(outcome: outcome, deadline: deadline)
        do {
            try channel.pipeline.syncOperations.addHandler(sniffer)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let snifferBound = NIOLoopBound(sniffer, eventLoop: channel.eventLoop)
        let remote = channel.remoteAddress.map { "\($0)" } ?? "?"
        let routed = outcome.futureResult.flatMap { result -> EventLoopFuture<Base.Value?> in
            dispatch(result, channel: channel, sniffer: snifferBound, logger: logger)
        }.flatMapError { error -> EventLoopFuture<Base.Value?> in
            let text = (error as? TeleportError)?.message ?? "\(error)"
            logger.debug("web port: closed a connection before routing it: \(text)", metadata: ["tp.remote": "\(remote)"])
            channel.close(promise: nil)
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        // NIO reads nothing from the connection before this future completes: do not wait for bytes here.
        return channel.eventLoop.makeSucceededFuture(Value(channel: channel, routed: routed))
    }

    func handle(value: Value, logger: Logger) async {
        guard let routed = try? await value.routed.get() else { return }
        await base.handle(value: routed, logger: logger)
    }

    private func dispatch(
        _ result: ClientHelloSniffer.Outcome, channel: any Channel, sniffer: NIOLoopBound<ClientHelloSniffer>, logger: Logger
    ) -> EventLoopFuture<Base.Value?> {
        let loop = channel.eventLoop
        switch result {
        case .plaintext(let kind):
            return refusePlaintext(kind, channel: channel, logger: logger).map { nil }
        case .hello(let sni, let alpn):
            let matched = Self.route(alpn: alpn, sni: sni, routes: routes, serverNameRoutes: serverNameRoutes)
                ?? sni.flatMap { name in serverNameMatcher?(name.lowercased()).map { ("sni=" + name, $0) } }
            guard let (name, route) = matched else {
                return loop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLServerHandler(context: webContextSource?.current ?? webContext), position: .after(sniffer.value))
                }.flatMap {
                    base.setup(channel: channel, logger: logger)
                }.flatMap { value in
                    // The value is kept even when the client closed meanwhile (the sniffer went
                    // with the pipeline): it must reach Base's handler, which ends at once then.
                    channel.pipeline.syncOperations.removeHandler(sniffer.value).map { value }.recover { _ in value }
                }
            }
            logger.debug(
                "web port: routing by ALPN", metadata: ["tp.alpn": "\(name)", "tp.sni": "\(sni ?? "")"])
            switch route {
            case .passthrough(let host, let port):
                return passThrough(to: [(host: host, port: port)], name: name, channel: channel, sniffer: sniffer)
            case .passthroughAny(let targets):
                return passThrough(to: targets, name: name, channel: channel, sniffer: sniffer)
            case .terminate, .terminateCurrent:
                let (context, takeOver): (NIOSSLContext, @Sendable (any Channel) -> EventLoopFuture<Void>)
                switch route {
                case .terminateCurrent(let source, let handler): (context, takeOver) = (source.current, handler)
                case .terminate(let fixed, let handler): (context, takeOver) = (fixed, handler)
                case .passthrough, .passthroughAny: return loop.makeSucceededFuture(nil)
                }
                return loop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLServerHandler(context: context), position: .after(sniffer.value))
                }.flatMap {
                    takeOver(channel)
                }.flatMap {
                    channel.pipeline.syncOperations.removeHandler(sniffer.value)
                }.map { nil }
            }
        }
    }

    /// Pipes the connection raw to the first of `targets` that accepts a TCP connection: a refused
    /// or failed connect (nothing was sent yet) moves to the next one.
    private func passThrough(
        to targets: [(host: String, port: Int)], name: String, channel: any Channel, sniffer: NIOLoopBound<ClientHelloSniffer>
    ) -> EventLoopFuture<Base.Value?> {
        let tried = targets.map { HostPort.join($0.host, $0.port) }.joined(separator: ", ")
        return Self.connectFirst(targets[...], on: channel.eventLoop).flatMapThrowing { connected in
            do {
                let closer = CloseOnQuiesce()
                try channel.pipeline.syncOperations.addHandler(closer, position: .after(sniffer.value))
                try channel.pipeline.syncOperations.addHandler(connected.client.value, position: .after(closer))
            } catch {
                connected.upstream.close(promise: nil)
                throw error
            }
        }.flatMap {
            channel.pipeline.syncOperations.removeHandler(sniffer.value)
        }.flatMapErrorThrowing { error in
            throw TeleportError.connectionProblem("cannot reach \(tried) for ALPN \(name): \(error)")
        }.map { nil }
    }

    /// Connects to the first of `targets` that answers, each attempt with its own glue pair.
    static func connectFirst(
        _ targets: ArraySlice<(host: String, port: Int)>, on loop: any EventLoop
    ) -> EventLoopFuture<(upstream: any Channel, client: NIOLoopBound<GlueHandler>)> {
        guard let target = targets.first else {
            return loop.makeFailedFuture(TeleportError.connectionProblem("no address to connect to"))
        }
        let (clientSide, serverSide) = GlueHandler.matchedPair()
        let client = NIOLoopBound(clientSide, eventLoop: loop)
        let rest = targets.dropFirst()
        return GlueHandler.connect(host: target.host, port: target.port, on: loop, with: serverSide)
            .map { (upstream: $0, client: client) }
            .flatMapError { error in
                rest.isEmpty ? loop.makeFailedFuture(error) : connectFirst(rest, on: loop)
            }
    }

    private func refusePlaintext(_ kind: PlaintextProbe.Kind, channel: any Channel, logger: Logger) -> EventLoopFuture<Void> {
        let text: String
        switch kind {
        case .http:
            let body = "this port speaks HTTPS: use https://\(httpsAddress)/\n"
            text = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Connection: close\r\n\r\n" + body
        case .ssh:
            text = "SSH-2.0-Teleport this port speaks TLS; use the proxy's SSH port (\(sshPort))\r\n"
        case .unknown, .needMoreData:
            text = ""
        }
        logger.debug("web port: refused a client that does not speak TLS", metadata: ["tp.kind": "\(kind)"])
        guard !text.isEmpty else { return channel.close() }
        // Straight to the socket: no handler after the sniffer is there yet.
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(channel.allocator.buffer(string: text), promise: promise)
        return promise.futureResult.flatMap { channel.close(mode: .output) }.flatMapError { _ in channel.eventLoop.makeSucceededVoidFuture() }
            .always { _ in
                // Give the client a moment to read the reply before the full close.
                channel.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
            }
    }
}

/// Closes a passed-through connection when the server shuts down gracefully (Hummingbird waits for
/// every child channel to close; a raw pipe has no request boundary to wait for).
final class CloseOnQuiesce: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
