import NIOCore
import NIOSSL
import NIOTLS
import TeleportAPI
import TeleportWire

/// Drives a ``MySQLClientHandshake`` on the connection to a MySQL/MariaDB server: frames the
/// server's packets (at most 64 KiB each during the handshake), sends what the machine says,
/// puts `tls` first in the pipeline when it asks for TLS and reports the TLS handshake back,
/// then succeeds `done` with the server's `OK` payload and leaves the pipeline. A failure (the
/// machine's reason, TLS, the server closing) fails `done` and closes the connection.
final class MySQLUpstreamHandshaker: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    static let maxPacket = 64 * 1024

    private var machine: MySQLClientHandshake
    private var buffer: [UInt8] = []
    private var finished = false
    let tls: NIOSSLClientHandler
    let done: EventLoopPromise<[UInt8]>

    init(machine: MySQLClientHandshake, tls: NIOSSLClientHandler, done: EventLoopPromise<[UInt8]>) {
        self.machine = machine
        self.tls = tls
        self.done = done
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        buffer += unwrapInboundIn(data).readableBytesView
        while !finished {
            switch MySQLPacket.parse(buffer, limit: Self.maxPacket) {
            case .needMoreData:
                return
            case .tooLong(let reason):
                fail(context: context, TeleportError.connectionProblem("the database sent \(reason)"))
                return
            case .packet(let packet, let consumed):
                buffer.removeFirst(consumed)
                perform(machine.receive(packet), context: context)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event, !finished {
            perform(machine.tlsEstablished(), context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func perform(_ actions: [MySQLClientHandshake.Action], context: ChannelHandlerContext) {
        for action in actions where !finished {
            switch action {
            case .send(let bytes):
                context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
            case .startTLS:
                do {
                    try context.pipeline.syncOperations.addHandler(tls, position: .first)
                } catch {
                    fail(context: context, error)
                }
            case .authenticated(let okPayload):
                finished = true
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                done.succeed(okPayload)
            case .failed(let reason):
                fail(context: context, TeleportError.connectionProblem(reason))
            }
        }
    }

    private func fail(context: ChannelHandlerContext, _ error: any Error) {
        guard !finished else { return }
        finished = true
        done.fail(error)
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, TeleportError.connectionProblem("TLS failed: \(error)"))
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished {
            finished = true
            done.fail(TeleportError.connectionProblem("the database closed the connection during the handshake"))
        }
        context.fireChannelInactive()
    }
}
