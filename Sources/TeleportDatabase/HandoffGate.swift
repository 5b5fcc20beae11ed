import NIOCore
import TeleportAPI

/// The first handler after TLS on a proxy's connection to the database service: collects the
/// ``DatabaseHandoff`` (bounded by ``DatabaseHandoff/maxBytes``), stops reading, and hands the
/// connection to ``DatabaseSessions``. Bytes that arrive meanwhile are held (at most 1 MiB) and
/// passed on, in order, once the session is relayed (``release(context:)``); from then on the
/// gate passes everything through.
final class HandoffGate: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    static let maxHeldBytes = 1 << 20

    private enum State {
        case reading
        case deciding
        case relaying
    }

    private var state = State.reading
    private var bytes: [UInt8] = []
    private var held: [ByteBuffer] = []
    private var heldCount = 0
    let sessions: DatabaseSessions

    init(sessions: DatabaseSessions) { self.sessions = sessions }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        switch state {
        case .relaying:
            context.fireChannelRead(data)
        case .deciding:
            heldCount += buffer.readableBytes
            guard heldCount <= Self.maxHeldBytes else {
                context.close(promise: nil)
                return
            }
            held.append(buffer)
        case .reading:
            bytes += buffer.readableBytesView
            do {
                guard let (handoff, consumed) = try DatabaseHandoff.parse(bytes) else { return }
                state = .deciding
                if consumed < bytes.count {
                    let rest = Array(bytes[consumed...])
                    held.append(context.channel.allocator.buffer(bytes: rest))
                    heldCount = rest.count
                }
                bytes = []
                _ = context.channel.setOption(.autoRead, value: false)
                let channel = context.channel
                let gate = NIOLoopBound(self, eventLoop: context.eventLoop)
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                sessions.start(channel: channel, handoff: handoff) {
                    gate.value.release(context: bound.value)
                }
            } catch {
                context.close(promise: nil)
            }
        }
    }

    /// Passes the held bytes on and lets everything through from now on (on the loop).
    func release(context: ChannelHandlerContext) {
        state = .relaying
        for buffer in held { context.fireChannelRead(NIOAny(buffer)) }
        held = []
        if heldCount > 0 { context.fireChannelReadComplete() }
        heldCount = 0
    }
}
