public import NIOCore

/// What the first handler of a relayed connection (a database client's at the proxy, the proxy's
/// at a database service) does once it has read what it needs (a start-up message, a hand-off):
/// it stops reading while the session is decided, holds what arrives meanwhile (at most
/// ``limit`` bytes), and passes that on, in order, once the session is relayed; from then on
/// everything passes through. The handler keeps its own reading state; this is the rest.
package struct HeldInbound {
    /// The most bytes held while a session is decided.
    package static let limit = 1 << 20

    /// Where the connection is.
    package enum Phase: Equatable {
        /// The handler is still reading its first message(s).
        case reading
        /// Reading stopped; what arrives is held.
        case deciding
        /// Everything passes through.
        case relaying
    }

    package private(set) var phase = Phase.reading
    private var buffers: [ByteBuffer] = []
    private var count = 0

    /// Starting state: reading.
    package init() {}

    /// Stops reading: the first message is complete; `rest` (bytes that came after it) is held.
    package mutating func decide(context: ChannelHandlerContext, rest: ArraySlice<UInt8> = []) {
        phase = .deciding
        if !rest.isEmpty {
            buffers.append(context.channel.allocator.buffer(bytes: rest))
            count = rest.count
        }
        _ = context.channel.setOption(.autoRead, value: false)
    }

    /// Marks the connection refused (nothing more is read or relayed; the handler closes it).
    package mutating func refuse() {
        phase = .deciding
    }

    /// Handles a read outside ``Phase/reading``: passed on when relaying, held when deciding (the
    /// connection is closed past ``limit``). Returns false while still reading (the handler's turn).
    package mutating func pass(_ data: NIOAny, _ buffer: ByteBuffer, context: ChannelHandlerContext) -> Bool {
        switch phase {
        case .reading:
            return false
        case .relaying:
            context.fireChannelRead(data)
        case .deciding:
            count += buffer.readableBytes
            guard count <= Self.limit else {
                context.close(promise: nil)
                return true
            }
            buffers.append(buffer)
        }
        return true
    }

    /// Passes the held bytes on and lets everything through from now on (on the channel's loop).
    package mutating func release(context: ChannelHandlerContext) {
        phase = .relaying
        for buffer in buffers { context.fireChannelRead(NIOAny(buffer)) }
        if count > 0 { context.fireChannelReadComplete() }
        buffers = []
        count = 0
    }
}

/// A gate: a first handler that holds a connection while its session is decided (``HeldInbound``).
package protocol HoldingGate: ChannelInboundHandler {
    /// The gate's held bytes and phase.
    var held: HeldInbound { get set }
}

extension HoldingGate {
    /// A closure that, called from any task, releases the gate on its loop (what a session calls
    /// once it is glued to its other side).
    package func releaser(context: ChannelHandlerContext) -> @Sendable () -> Void {
        let gate = NIOLoopBound(self, eventLoop: context.eventLoop)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        return { gate.value.held.release(context: bound.value) }
    }
}
