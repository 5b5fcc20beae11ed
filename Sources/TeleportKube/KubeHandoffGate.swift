import NIOCore
import TeleportAPI

/// The first handler after TLS on a proxy's connection to the Kubernetes service: collects the
/// hand-off frame (``DatabaseHandoff``'s format: the user's certificate and the client's
/// address, at most ``DatabaseHandoff/maxBytes``), fulfils `handoff`, and from then on passes
/// every byte on to the session. The session reads no request before it has checked the
/// hand-off (NIOAsyncChannel's backpressure bounds what waits meanwhile).
final class KubeHandoffGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var bytes: [UInt8] = []
    private var done = false
    let handoff: EventLoopPromise<DatabaseHandoff>

    init(handoff: EventLoopPromise<DatabaseHandoff>) { self.handoff = handoff }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else {
            context.fireChannelRead(data)
            return
        }
        bytes += unwrapInboundIn(data).readableBytesView
        do {
            guard let (parsed, consumed) = try DatabaseHandoff.parse(bytes) else { return }
            done = true
            let rest = Array(bytes[consumed...])
            bytes = []
            handoff.succeed(parsed)
            if !rest.isEmpty { context.fireChannelRead(NIOAny(context.channel.allocator.buffer(bytes: rest))) }
        } catch {
            handoff.fail(error)
            context.close(promise: nil)
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
