public import NIOCore
public import NIOSSH
import NIOPosix
import Synchronization

/// Turns an SSH child channel into a byte stream: inbound ``SSHChannelData`` of the main data
/// type becomes `ByteBuffer` (extended data such as stderr is dropped: a byte stream has none),
/// outbound `ByteBuffer` becomes channel data. Used where SSH channels carry another protocol:
/// the proxy's node connections and the client's SSH-in-SSH.
public final class SSHChannelDataCodec: ChannelDuplexHandler {
    public typealias InboundIn = SSHChannelData
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = SSHChannelData

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard message.type == .channel, case .byteBuffer(let bytes) = message.data else { return }
        context.fireChannelRead(wrapInboundOut(bytes))
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        context.write(wrapOutboundOut(SSHChannelData(type: .channel, data: .byteBuffer(bytes))), promise: promise)
    }
}

/// Pipes bytes between two channels with backpressure: what one side reads is written to the other,
/// and a side stops reading while its partner cannot take more. When one side closes, or half-closes
/// its input, the other side's output is closed (half-closed where the channel allows it).
///
/// Add one instance to each channel with ``GlueHandler/matchedPair()``. The two channels may live
/// on different event loops (a user's connection and an agent's reverse tunnel): every call to the
/// partner runs on the partner's loop, in order.
public final class GlueHandler: ChannelDuplexHandler, @unchecked Sendable {
    public typealias InboundIn = NIOAny
    public typealias OutboundIn = NIOAny
    public typealias OutboundOut = NIOAny

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// This handler's loop (set when added) and its channel's writability, read by the partner.
    private let shared = Mutex<(loop: (any EventLoop)?, writable: Bool)>((nil, false))

    /// Runs `body` on this handler's loop: at once when already there, else queued (in order).
    private func onLoop(_ body: @escaping () -> Void) {
        guard let loop = shared.withLock({ $0.loop }) else { return }
        if loop.inEventLoop {
            body()
        } else {
            let transfer = UncheckedBox(body)
            loop.execute { transfer.value() }
        }
    }

    private init() {}

    /// Two handlers, each the other's partner.
    public static func matchedPair() -> (GlueHandler, GlueHandler) {
        let first = GlueHandler()
        let second = GlueHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let writable = context.channel.isWritable
        shared.withLock { $0 = (context.eventLoop, writable) }
        // The partner may have held back a read while this side was not there yet.
        if writable, let partner { partner.onLoop { partner.partnerBecameWritable() } }
    }

    /// Connects to `host:port` on `loop` with `handler` in the new channel's pipeline from the
    /// start, so that nothing the peer sends first (an SSH banner) is read before it is there.
    public static func connect(host: String, port: Int, on loop: any EventLoop, with handler: GlueHandler) -> EventLoopFuture<any Channel> {
        let bound = NIOLoopBound(handler, eventLoop: loop)
        return ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .tcpKeepalive()
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(bound.value) }
            }
            .connect(host: host, port: port)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
        shared.withLock { $0.writable = false }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let partner else { return }
        let transfer = UncheckedBox(data)
        partner.onLoop { partner.partnerWrite(transfer.value) }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        guard let partner else { return }
        partner.onLoop { partner.partnerFlush() }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        guard let partner else { return }
        partner.onLoop { partner.partnerCloseFull() }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event, let partner {
            partner.onLoop { partner.partnerWriteEOF() }
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        shared.withLock { $0.writable = writable }
        if writable, let partner { partner.onLoop { partner.partnerBecameWritable() } }
    }

    public func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }

    private var partnerWritable: Bool { shared.withLock { $0.writable } }

    private func partnerWrite(_ data: NIOAny) {
        context?.write(data, promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerWriteEOF() {
        guard let context else { return }
        context.flush()
        context.close(mode: .output, promise: nil)
    }

    private func partnerCloseFull() {
        context?.flush()
        context?.close(promise: nil)
    }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }
}

/// Carries a non-Sendable value to another event loop where the code guarantees ordered,
/// single-loop use (the glue's partner calls).
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
