import NIOCore
import NIOSSL
import TeleportSSH
import TeleportWire

/// The first handler of a PostgreSQL client connection: `SSLRequest` → `S` and TLS in front of
/// itself (`GSSENCRequest` → `N`); then the start-up message (at most
/// ``PostgresStartup/maxLength`` bytes), after which it stops reading and hands the session to
/// ``DatabaseProxySessions``; bytes that arrive meanwhile are held (at most 1 MiB) and passed on
/// once the session is relayed. A start-up message before TLS gets a `FATAL` error. On the web
/// port (ALPN `teleport-postgres`) TLS is already up and the start-up message comes first.
final class PostgresFrontGate: HoldingGate, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Where the start-up exchange is (while ``held`` is reading).
    private enum State {
        case beforeTLS
        case startup
    }

    private var state = State.beforeTLS
    var held = HeldInbound()
    private var bytes: [UInt8] = []
    let tls: NIOSSLContext
    let sessions: DatabaseProxySessions

    /// A gate for a client that sends `SSLRequest` first (`postgres_listen_addr`); with
    /// `tlsEstablished`, for one whose TLS the web port's router already terminated (ALPN
    /// `teleport-postgres`): its first message is the start-up message.
    init(tls: NIOSSLContext, sessions: DatabaseProxySessions, tlsEstablished: Bool = false) {
        self.tls = tls
        self.sessions = sessions
        if tlsEstablished { state = .startup }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard !held.pass(data, buffer, context: context) else { return }
        bytes += buffer.readableBytesView
        parse(context: context)
    }

    private func parse(context: ChannelHandlerContext) {
        let (message, consumed) = PostgresStartup.parse(bytes)
        switch message {
        case .needMoreData:
            return
        case .invalid(let reason):
            refuse(context: context, reason)
        case .cancelRequest:
            context.close(promise: nil)
        case .gssEncRequest:
            guard state == .beforeTLS else { return refuse(context: context, "GSSENCRequest after TLS") }
            bytes.removeFirst(consumed)
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: [UInt8(ascii: "N")])), promise: nil)
            if !bytes.isEmpty { parse(context: context) }
        case .sslRequest:
            guard state == .beforeTLS, consumed == bytes.count else {
                return refuse(context: context, "unexpected bytes around the SSLRequest")
            }
            bytes = []
            state = .startup
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: [UInt8(ascii: "S")])), promise: nil)
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
            } catch {
                context.close(promise: nil)
            }
        case .startup(let parameters):
            guard state == .startup else {
                return refuse(context: context, "this proxy accepts PostgreSQL connections over TLS only: use sslmode=verify-ca with tsh db config's files, or tsh db connect")
            }
            held.decide(context: context, rest: bytes[consumed...])
            bytes = []
            let request = DatabaseProxyRequest(parameters: parameters.map { [$0.name, $0.value] }) { denied, message in
                PostgresStartup.errorResponse(code: denied ? "28000" : "08006", message: message)
            }
            sessions.start(channel: context.channel, request: request, relay: releaser(context: context))
        }
    }

    private func refuse(context: ChannelHandlerContext, _ reason: String) {
        held.refuse()
        bytes = []
        let reply = PostgresStartup.errorResponse(code: "08P01", message: reason)
        let channel = context.channel
        context.writeAndFlush(NIOAny(channel.allocator.buffer(bytes: reply))).whenComplete { _ in channel.close(promise: nil) }
    }
}
