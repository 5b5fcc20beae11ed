/// The prepared statements of one MySQL session, for auditing `COM_STMT_EXECUTE` with the
/// statement's text and its parameters: the client's `COM_STMT_PREPARE` texts wait (in order)
/// for the database's answers (``MySQLBackendScanner``), which give each its id and number of
/// parameters; an execute is decoded with ``MySQLBinaryParameters`` and the types last bound for
/// its statement. Bounded: at most ``maxBytes`` of statement text is kept (the oldest statements
/// are forgotten first; executing a forgotten one is still audited, saying so).
public struct MySQLPreparedStatements: Sendable {
    /// How much statement text is kept across the session's statements.
    public static let maxBytes = 1 << 20
    /// MariaDB's id for "the statement prepared last" (a prepare and execute sent together).
    public static let lastPrepared: UInt32 = 0xFFFF_FFFF

    struct Statement {
        var text: String
        var truncated: Bool
        var parameterCount: Int
        var types: [UInt16]?
    }

    /// One audited execution.
    public struct Execution: Sendable, Equatable {
        /// The statement's text.
        public var text: String
        /// The parameters as text (nil: SQL NULL, or not decoded).
        public var parameters: [String?]
        /// The text was cut, the statement was forgotten, or a parameter could not be decoded.
        public var truncated: Bool

        /// Creates an execution.
        public init(text: String, parameters: [String?], truncated: Bool) {
            self.text = text
            self.parameters = parameters
            self.truncated = truncated
        }
    }

    private var waiting: [(text: String, truncated: Bool)] = []
    private var statements: [UInt32: Statement] = [:]
    private var order: [UInt32] = []
    private var bytes = 0
    private var last: UInt32?

    /// An empty session.
    public init() {}

    /// The number of statements known (for tests).
    public var count: Int { statements.count }

    /// The client sent `COM_STMT_PREPARE` with `text`.
    public mutating func preparing(_ text: String, truncated: Bool) {
        if waiting.count >= MySQLBackendScanner.maxPending { waiting.removeFirst() }
        waiting.append((text, truncated))
    }

    /// The database answered the oldest waiting prepare.
    public mutating func answered(_ event: MySQLBackendScanner.Event) {
        guard !waiting.isEmpty else { return }
        let (text, truncated) = waiting.removeFirst()
        guard case .prepared(let id, let count) = event else { return }
        forget(id)
        statements[id] = Statement(text: text, truncated: truncated, parameterCount: count, types: nil)
        order.append(id)
        bytes += text.utf8.count
        last = id
        while bytes > Self.maxBytes, let oldest = order.first { forget(oldest) }
    }

    /// `COM_STMT_CLOSE`.
    public mutating func closed(_ id: UInt32) { forget(id) }

    /// A `COM_STMT_EXECUTE` of `id` with its body (after the command byte; `truncated` when the
    /// scanner cut it).
    public mutating func execute(_ id: UInt32, body: [UInt8], truncated: Bool) -> Execution {
        let key = id == Self.lastPrepared ? (last ?? id) : id
        guard var statement = statements[key] else {
            return Execution(text: "-- prepared statement \(id) (its text was not seen or was forgotten)", parameters: [], truncated: true)
        }
        let decoded = MySQLBinaryParameters.decode(body: body, count: statement.parameterCount, previousTypes: statement.types)
        if !decoded.types.isEmpty {
            statement.types = decoded.types
            statements[key] = statement
        }
        return Execution(text: statement.text, parameters: decoded.values, truncated: statement.truncated || truncated || !decoded.complete)
    }

    private mutating func forget(_ id: UInt32) {
        guard let statement = statements.removeValue(forKey: id) else { return }
        bytes -= statement.text.utf8.count
        order.removeAll { $0 == id }
    }
}
