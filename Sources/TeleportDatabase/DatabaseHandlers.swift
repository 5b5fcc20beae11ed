import NIOCore
import NIOSSL
import NIOTLS
import Synchronization
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

/// Passes the client's bytes on unchanged and shows them to the protocol's scanner
/// (``PostgresFrontendScanner``, ``MySQLFrontendScanner``): each complete statement (a simple
/// query or an extended-protocol execution with its parameters; MySQL's `COM_QUERY` and
/// `COM_STMT_PREPARE`) goes to `onQuery` before its bytes are
/// passed on; when `onQuery` cannot audit it (false), the client gets the protocol's error and
/// the connection closes, and the statement never reaches the database. A malformed PostgreSQL
/// stream closes the connection; MySQL's `COM_CHANGE_USER` (becoming another database user
/// than the one the roles allowed) is refused the same way.
final class QueryTap: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The protocol's scanner.
    enum Scanner {
        case postgres(PostgresFrontendScanner)
        case mysql(MySQLFrontendScanner)
    }

    /// What the tap does with a command.
    enum Step {
        case audit(String, parameters: [String?]?, truncated: Bool)
        case refuse(String)
        case close
    }

    private var scanner: Scanner
    private var stopped = false
    /// Audits one statement (text, extended-protocol parameters, whether cut); false when it cannot.
    let onQuery: @Sendable (_ text: String, _ parameters: [String?]?, _ truncated: Bool) -> Bool

    /// A tap on a PostgreSQL session.
    init(onQuery: @escaping @Sendable (_ text: String, _ parameters: [String?]?, _ truncated: Bool) -> Bool) {
        self.scanner = .postgres(PostgresFrontendScanner())
        self.statements = nil
        self.onQuery = onQuery
    }

    /// A MySQL session's prepared statements, shared with the ``MySQLResponseTap`` on the
    /// database's side (nil for PostgreSQL).
    let statements: MySQLStatementTracker?

    /// A tap on a session of `protocol`; a MySQL tap follows prepared statements with `statements`.
    init(
        protocol: DatabaseServer.DatabaseProtocol, statements: MySQLStatementTracker? = nil,
        onQuery: @escaping @Sendable (_ text: String, _ parameters: [String?]?, _ truncated: Bool) -> Bool
    ) {
        self.scanner = `protocol` == .mysql ? .mysql(MySQLFrontendScanner()) : .postgres(PostgresFrontendScanner())
        self.statements = `protocol` == .mysql ? statements ?? MySQLStatementTracker() : nil
        self.onQuery = onQuery
    }

    private func steps(_ bytes: ByteBufferView) -> [Step] {
        switch scanner {
        case .postgres(var postgres):
            defer { scanner = .postgres(postgres) }
            return postgres.feed(bytes).compactMap { event in
                switch event {
                case .query(let text, let truncated): return .audit(text, parameters: nil, truncated: truncated)
                case .execute(let text, let parameters, let truncated): return .audit(text, parameters: parameters, truncated: truncated)
                case .terminate: return nil
                case .invalid: return .close
                }
            }
        case .mysql(var mysql):
            defer { scanner = .mysql(mysql) }
            return mysql.feed(bytes).compactMap { event in
                switch event {
                case .query(let text, let truncated): return .audit(text, parameters: nil, truncated: truncated)
                case .prepare(let text, let truncated):
                    statements?.preparing(text, truncated: truncated)
                    return .audit(text, parameters: nil, truncated: truncated)
                case .execute(let id, let body, let truncated):
                    guard let execution = statements?.execute(id, body: body, truncated: truncated) else { return nil }
                    return .audit(execution.text, parameters: execution.parameters, truncated: execution.truncated)
                case .close(let id):
                    statements?.closed(id)
                    return nil
                case .changeUser:
                    return .refuse("COM_CHANGE_USER is not allowed through the proxy: connect again with tsh db connect --db-user=NAME")
                case .quit: return nil
                }
            }
        }
    }

    private func refusal(_ message: String) -> [UInt8] {
        switch scanner {
        case .postgres: return PostgresStartup.errorResponse(code: "58000", message: message)
        case .mysql: return MySQLPacket(sequence: 1, payload: MySQLReply.errorPayload(code: 1105, state: "HY000", message: message)).bytes
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !stopped else { return }
        let buffer = unwrapInboundIn(data)
        for step in steps(buffer.readableBytesView) {
            switch step {
            case .audit(let text, let parameters, let truncated):
                if !onQuery(text, parameters, truncated) {
                    return refuse(context: context, "the audit log is unavailable: the session ends rather than go on unaudited")
                }
            case .refuse(let message):
                return refuse(context: context, message)
            case .close:
                stopped = true
                context.close(promise: nil)
                return
            }
        }
        context.fireChannelRead(data)
    }

    private func refuse(context: ChannelHandlerContext, _ message: String) {
        stopped = true
        let channel = context.channel
        context.writeAndFlush(NIOAny(channel.allocator.buffer(bytes: refusal(message)))).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// The prepared statements of one MySQL session, shared by the two sides' taps: the client's
/// (``QueryTap``: prepares, executes, closes) and the database's (``MySQLResponseTap``: the
/// answers that give each prepared statement its id and parameter count).
final class MySQLStatementTracker: Sendable {
    private struct State {
        var statements = MySQLPreparedStatements()
        var backend = MySQLBackendScanner()
    }

    private let state = Mutex(State())

    /// The client sent `COM_STMT_PREPARE`.
    func preparing(_ text: String, truncated: Bool) {
        state.withLock { state in
            state.statements.preparing(text, truncated: truncated)
            state.backend.expectPrepareResponse()
        }
    }

    /// The database's bytes towards the client.
    func backend(_ bytes: ByteBufferView) {
        state.withLock { state in
            for event in state.backend.feed(bytes) { state.statements.answered(event) }
        }
    }

    /// `COM_STMT_EXECUTE`: the statement's text and decoded parameters.
    func execute(_ id: UInt32, body: [UInt8], truncated: Bool) -> MySQLPreparedStatements.Execution {
        state.withLock { $0.statements.execute(id, body: body, truncated: truncated) }
    }

    /// `COM_STMT_CLOSE`.
    func closed(_ id: UInt32) {
        state.withLock { $0.statements.closed(id) }
    }
}

/// Shows the database's bytes of a MySQL session to its ``MySQLStatementTracker`` (for the
/// answers to prepares) and passes them on unchanged.
final class MySQLResponseTap: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let statements: MySQLStatementTracker

    init(statements: MySQLStatementTracker) { self.statements = statements }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        statements.backend(unwrapInboundIn(data).readableBytesView)
        context.fireChannelRead(data)
    }
}
