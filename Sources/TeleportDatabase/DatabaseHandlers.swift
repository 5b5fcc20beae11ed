import NIOCore
import NIOSSL
import NIOTLS
import TeleportAPI
import TeleportWire

/// The client side of PostgreSQL's `SSLRequest`: sends it when the connection opens and, on the
/// server's `S`, puts the TLS handler first in the pipeline and leaves; `N` (the server has no
/// TLS) or anything else fails `ready`.
final class PostgresSSLInitiator: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let tls: NIOSSLClientHandler
    let ready: EventLoopPromise<Void>

    init(tls: NIOSSLClientHandler, ready: EventLoopPromise<Void>) {
        self.tls = tls
        self.ready = ready
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: PostgresStartup.sslRequest)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard buffer.readableBytes == 1, let answer = buffer.readInteger(as: UInt8.self), answer == UInt8(ascii: "S") else {
            ready.fail(TeleportError.connectionProblem("the database does not accept TLS connections (it answered the SSLRequest with no)"))
            context.close(promise: nil)
            return
        }
        do {
            try context.pipeline.syncOperations.addHandler(tls, position: .first)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            ready.succeed(())
        } catch {
            ready.fail(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        ready.fail(TeleportError.connectionProblem("the database closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ready.fail(error)
        context.close(promise: nil)
    }
}

/// Passes the client's bytes on unchanged and shows them to a ``PostgresFrontendScanner``: each
/// complete simple query and each extended-protocol execution (text and parameters) goes to
/// `onQuery` before its bytes are passed on; when `onQuery` cannot
/// audit it (false), the client gets a `FATAL` error and the connection closes, and the query
/// never reaches the database. A malformed stream closes the connection.
final class QueryTap: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private var scanner = PostgresFrontendScanner()
    let onQuery: @Sendable (_ text: String, _ parameters: [String?]?, _ truncated: Bool) -> Bool

    init(onQuery: @escaping @Sendable (_ text: String, _ parameters: [String?]?, _ truncated: Bool) -> Bool) { self.onQuery = onQuery }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        for event in scanner.feed(buffer.readableBytesView) {
            switch event {
            case .query(let text, let truncated):
                guard onQuery(text, nil, truncated) else { return endUnaudited(context) }
            case .execute(let text, let parameters, let truncated):
                guard onQuery(text, parameters, truncated) else { return endUnaudited(context) }
            case .terminate: break
            case .invalid:
                context.close(promise: nil)
                return
            }
        }
        context.fireChannelRead(data)
    }

    /// The audit refused the event: the client is told, the connection closes, the bytes stay here.
    private func endUnaudited(_ context: ChannelHandlerContext) {
        let reply = PostgresStartup.errorResponse(code: "58000", message: "the audit log is unavailable: the session ends rather than go on unaudited")
        let channel = context.channel
        context.writeAndFlush(NIOAny(channel.allocator.buffer(bytes: reply))).whenComplete { _ in channel.close(promise: nil) }
    }
}
