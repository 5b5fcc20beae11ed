import NIOCore
import NIOSSL
import TeleportSSH
import TeleportWire

/// The first handler of a MySQL client connection, driving a ``MySQLServerHandshake``: it sends
/// the greeting (offering TLS) when the connection opens, puts TLS in front of itself on the
/// client's `SSLRequest` (a client certificate is required), reads the `HandshakeResponse41`,
/// stops reading and hands the session to ``DatabaseProxySessions``. Bytes that arrive meanwhile
/// are held (at most 1 MiB) and passed on once the session is relayed. A client that skips TLS
/// or sends a malformed or oversized packet gets an `ERR` packet and is closed.
final class MySQLFrontGate: HoldingGate, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var handshake: MySQLServerHandshake
    var held = HeldInbound()
    let tls: NIOSSLContext
    let sessions: DatabaseProxySessions

    /// Whether TLS was terminated before this gate (the web port, ALPN `teleport-mysql`): the
    /// greeting is sent inside it as the gate is added and the client answers with its
    /// `HandshakeResponse41` at once (no `SSLRequest`).
    let tlsEstablished: Bool

    init(tls: NIOSSLContext, sessions: DatabaseProxySessions, tlsEstablished: Bool = false) {
        self.tls = tls
        self.sessions = sessions
        self.tlsEstablished = tlsEstablished
        var generator = SystemRandomNumberGenerator()
        // Printable, never NUL: clients read the second half of the scramble up to a NUL.
        let scramble = (0..<20).map { _ in UInt8.random(in: 0x21...0x7E, using: &generator) }
        handshake = MySQLServerHandshake(
            greeting: MySQLServerHandshake.greeting(connectionID: UInt32.random(in: 1...UInt32.max, using: &generator), scramble: scramble))
        if tlsEstablished { handshake.tlsEstablished() }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // On the web port the connection is active already; TLS holds the greeting until its handshake is done.
        if tlsEstablished { context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: handshake.greetingPacket)), promise: nil) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if !tlsEstablished { context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: handshake.greetingPacket)), promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard !held.pass(data, buffer, context: context) else { return }
        guard let action = handshake.receive(buffer.readableBytesView) else { return }
        switch action {
        case .startTLS(let rest):
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
            } catch {
                context.close(promise: nil)
                return
            }
            handshake.tlsEstablished()
            // The client's TLS hello may have come with the SSLRequest: TLS reads it first.
            if !rest.isEmpty { context.pipeline.syncOperations.fireChannelRead(NIOAny(context.channel.allocator.buffer(bytes: rest))) }
        case .refuse(let reply, _):
            held.refuse()
            let channel = context.channel
            context.writeAndFlush(NIOAny(channel.allocator.buffer(bytes: reply))).whenComplete { _ in channel.close(promise: nil) }
        case .authenticate(let response, let sequence, let rest):
            held.decide(context: context, rest: rest[...])
            let reply = sequence &+ 1
            let request = DatabaseProxyRequest(
                parameters: [
                    ["user", response.user], ["database", response.database], ["capabilities", String(response.capabilities.rawValue)],
                    ["charset", String(response.characterSet)], ["max_packet", String(response.maxPacketSize)], ["sequence", String(sequence)],
                ]
            ) { denied, message in
                MySQLPacket(sequence: reply, payload: denied ? MySQLReply.accessDenied(message) : MySQLReply.unknownError(message)).bytes
            }
            sessions.start(channel: context.channel, request: request, relay: releaser(context: context))
        }
    }
}
