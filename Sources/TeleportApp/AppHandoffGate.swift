import NIOCore
import TeleportAPI

/// The first handler after TLS on a proxy's connection to the application service: collects the
/// hand-off frame (``DatabaseHandoff``'s format: the user's certificate and the client's
/// address, at most ``DatabaseHandoff/maxBytes``), fulfils `handoff`, and from then on passes
/// every byte on to the HTTP decoder. The session reads no request before it has checked the
/// hand-off (``AppServiceFront`` holds what arrives meanwhile, reading no more past 1 MiB).
///
/// When the hand-off names one of `tcpApps` (its `app` parameter), the bytes after it are held
/// instead: the session checks the certificate (whose route, not the parameter, decides), puts a
/// byte relay after the gate and calls ``release()``. Holding ``maxHeldBytes``, the gate stops
/// reading until then (the proxy, and so the client, wait) rather than closing.
final class AppHandoffGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = NIOAny
    /// The bytes held for a TCP app at which the gate stops reading while the session checks the
    /// hand-off (twice as many, when reads did not stop, close the connection).
    static let maxHeldBytes = 1 << 20
    private var readDeferred = false

    private var bytes: [UInt8] = []
    private var done = false
    private var holding = false
    private var held: [UInt8] = []
    private var context: ChannelHandlerContext?
    let handoff: EventLoopPromise<DatabaseHandoff>
    let tcpApps: Set<String>

    init(handoff: EventLoopPromise<DatabaseHandoff>, tcpApps: Set<String> = []) {
        self.handoff = handoff
        self.tcpApps = tcpApps
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else {
            guard holding else {
                context.fireChannelRead(data)
                return
            }
            held += unwrapInboundIn(data).readableBytesView
            if held.count > 2 * Self.maxHeldBytes { context.close(promise: nil) }
            return
        }
        bytes += unwrapInboundIn(data).readableBytesView
        do {
            guard let (parsed, consumed) = try DatabaseHandoff.parse(bytes) else { return }
            done = true
            let rest = Array(bytes[consumed...])
            bytes = []
            if let app = parsed.parameters.first(where: { $0.count == 2 && $0[0] == "app" })?[1], tcpApps.contains(app) {
                holding = true
                held = rest
                handoff.succeed(parsed)
                return
            }
            handoff.succeed(parsed)
            if !rest.isEmpty { context.fireChannelRead(NIOAny(context.channel.allocator.buffer(bytes: rest))) }
        } catch {
            handoff.fail(error)
            context.close(promise: nil)
        }
    }

    /// Whether the bytes after the hand-off are being held (a TCP app was named).
    var isHolding: Bool { holding }

    func read(context: ChannelHandlerContext) {
        if holding && held.count >= Self.maxHeldBytes {
            readDeferred = true
            return
        }
        context.read()
    }

    /// Passes the held bytes on, and every later byte (on the channel's loop).
    func release() {
        guard holding, let context else { return }
        holding = false
        let rest = held
        held = []
        if !rest.isEmpty {
            context.fireChannelRead(NIOAny(context.channel.allocator.buffer(bytes: rest)))
            context.fireChannelReadComplete()
        }
        if readDeferred {
            readDeferred = false
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done { handoff.fail(TeleportError.connectionProblem("the proxy closed the connection before the hand-off")) }
        done = true
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done {
            done = true
            handoff.fail(error)
        }
        context.fireErrorCaught(error)
    }
}
