import NIOCore
import TeleportAPI
import TeleportWire

/// The first handler of a web-port connection: holds the bytes the client sends until its TLS
/// ClientHello parses (or shows the client does not speak TLS), and reports that once through
/// ``outcome``. Until it leaves the pipeline it passes nothing on and asks for no more reads once
/// it has decided; when it is removed, it hands the held bytes to the handlers added after it.
///
/// A client that sends no complete ClientHello within `deadline` is closed; so is one whose
/// bytes exceed ``ClientHelloParser/maxSize`` without forming one.
final class ClientHelloSniffer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    /// What the client opened with.
    enum Outcome: Sendable, Equatable {
        /// A complete ClientHello.
        case hello(sni: String?, alpn: [String])
        /// Not TLS; what it looks like.
        case plaintext(PlaintextProbe.Kind)
    }

    let outcome: EventLoopPromise<Outcome>
    let deadline: TimeAmount
    private var held: ByteBuffer?
    private var decided = false
    private var pendingRead = false
    private var timer: Scheduled<Void>?

    init(outcome: EventLoopPromise<Outcome>, deadline: TimeAmount) {
        self.outcome = outcome
        self.deadline = deadline
    }

    func handlerAdded(context: ChannelHandlerContext) {
        held = context.channel.allocator.buffer(capacity: 0)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: deadline) {
            let (sniffer, context) = bound.value
            sniffer.fail(context, TeleportError.connectionProblem("no TLS ClientHello in time"))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        if !decided {
            decided = true
            outcome.fail(TeleportError.connectionProblem("the client closed before its ClientHello was complete"))
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        held?.writeBuffer(&bytes)
        guard !decided, let held else { return }
        let view = held.readableBytesView
        switch ClientHelloParser.parse(view) {
        case .needMoreData:
            return
        case .malformed(let reason):
            fail(context, TeleportError.badParameter("a malformed TLS ClientHello: \(reason)"))
        case .hello(let sni, let alpn):
            decide(.hello(sni: sni, alpn: alpn))
        case .notTLS:
            let kind = PlaintextProbe.classify(view)
            if kind == .needMoreData && view.count < 16 { return }
            decide(.plaintext(kind))
        }
    }

    func read(context: ChannelHandlerContext) {
        // Once decided, the handlers that take over read for themselves (with their backpressure).
        if decided {
            pendingRead = true
        } else {
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !decided {
            decided = true
            timer?.cancel()
            outcome.fail(TeleportError.connectionProblem("the client closed before its ClientHello was complete"))
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard !decided else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // The server allows half-closure: a client that stops sending before its ClientHello is
        // complete will never complete it. A graceful shutdown does not wait for undecided clients.
        if case .inputClosed? = event as? ChannelEvent {
            fail(context, TeleportError.connectionProblem("the client closed before its ClientHello was complete"))
            return
        }
        if event is ChannelShouldQuiesceEvent {
            fail(context, TeleportError.connectionProblem("the proxy is shutting down"))
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !decided else {
            context.fireErrorCaught(error)
            return
        }
        fail(context, error)
    }

    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        if let held, held.readableBytes > 0 {
            self.held = nil
            context.fireChannelRead(wrapInboundOut(held))
            context.fireChannelReadComplete()
        }
        self.held = nil
        let wanted = pendingRead
        context.leavePipeline(removalToken: removalToken)
        if wanted { context.channel.read() }
    }

    private func decide(_ result: Outcome) {
        decided = true
        timer?.cancel()
        outcome.succeed(result)
    }

    private func fail(_ context: ChannelHandlerContext, _ error: any Error) {
        guard !decided else { return }
        decided = true
        timer?.cancel()
        held = nil
        outcome.fail(error)
        context.close(promise: nil)
    }
}

