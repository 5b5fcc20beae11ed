import NIOCore
import TeleportAPI
import TeleportSSH

/// The first handler after TLS on a proxy's connection to the database service: collects the
/// ``DatabaseHandoff`` (bounded by ``DatabaseHandoff/maxBytes``), stops reading, and hands the
/// connection to ``DatabaseSessions``. Bytes that arrive meanwhile are held (at most 1 MiB) and
/// passed on, in order, once the session is relayed (``HeldInbound``); from then on the gate passes
/// everything through.
final class HandoffGate: HoldingGate, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    var held = HeldInbound()
    private var bytes: [UInt8] = []
    let sessions: DatabaseSessions

    init(sessions: DatabaseSessions) { self.sessions = sessions }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard !held.pass(data, buffer, context: context) else { return }
        bytes += buffer.readableBytesView
        do {
            guard let (handoff, consumed) = try DatabaseHandoff.parse(bytes) else { return }
            held.decide(context: context, rest: bytes[consumed...])
            bytes = []
            sessions.start(channel: context.channel, handoff: handoff, relay: releaser(context: context))
        } catch {
            context.close(promise: nil)
        }
    }
}
