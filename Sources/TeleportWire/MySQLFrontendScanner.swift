/// Follows the client's side of a MySQL session after the handshake, packet by packet, for the
/// audit log: a packet with sequence id 0 starts a command (its first payload byte), a payload
/// of 2^24 - 1 bytes continues in the next packet. It reports `COM_QUERY` and
/// `COM_STMT_PREPARE` with their text, `COM_STMT_EXECUTE` with its statement id and body,
/// `COM_STMT_CLOSE`, `COM_QUIT`
/// and `COM_CHANGE_USER`. The bytes are relayed by the caller as they arrive; the scanner keeps
/// at most ``maxStatementBytes`` of a statement, so a 1 GB query (64 full packets) costs no more
/// memory than a short one. Bodies are skipped in one step, not byte by byte.
public struct MySQLFrontendScanner: Sendable {
    /// How much of a statement's text is kept for the audit event.
    public static let maxStatementBytes = 64 * 1024

    /// Command bytes.
    public static let comQuit: UInt8 = 0x01
    public static let comQuery: UInt8 = 0x03
    public static let comChangeUser: UInt8 = 0x11
    public static let comStmtPrepare: UInt8 = 0x16
    public static let comStmtExecute: UInt8 = 0x17
    public static let comStmtClose: UInt8 = 0x19

    /// What a complete command was.
    public enum Event: Sendable, Equatable {
        /// `COM_QUERY`: its text (cut at ``maxStatementBytes``, `truncated` then).
        case query(String, truncated: Bool)
        /// `COM_STMT_PREPARE`: the statement's text.
        case prepare(String, truncated: Bool)
        /// `COM_STMT_EXECUTE`: the prepared statement's id and the command's body (after the
        /// command byte, cut at ``maxStatementBytes``, `truncated` then) for its parameters.
        case execute(statementID: UInt32, body: [UInt8], truncated: Bool)
        /// `COM_STMT_CLOSE`: the statement's id.
        case close(statementID: UInt32)
        /// `COM_QUIT`.
        case quit
        /// `COM_CHANGE_USER`: the client wants to be another database user.
        case changeUser
    }

    private var header: [UInt8] = []
    /// Payload bytes left in the current packet.
    private var remaining = 0
    /// The current packet is full-size: the logical packet continues.
    private var continues = false
    /// The command of the logical packet being read (nil: not a command, such as auth data).
    private var command: UInt8?
    private var awaitingCommandByte = false
    private var text: [UInt8] = []
    private var truncated = false
    private var inCommand = false

    /// Creates a scanner at a packet boundary after the handshake.
    public init() {}

    /// Feeds the next bytes of the stream; returns the events of the commands they complete.
    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) -> [Event] where Bytes.Element == UInt8 {
        var events: [Event] = []
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if remaining == 0 && !awaitingCommandByte {
                header.append(bytes[index])
                index = bytes.index(after: index)
                guard header.count == 4 else { continue }
                let length = Int(header[0]) | Int(header[1]) << 8 | Int(header[2]) << 16
                let sequence = header[3]
                header.removeAll(keepingCapacity: true)
                if !inCommand {
                    // A new logical packet: a command when its sequence id is 0.
                    inCommand = true
                    command = nil
                    text.removeAll(keepingCapacity: true)
                    truncated = false
                    awaitingCommandByte = sequence == 0 && length > 0
                }
                continues = length == MySQLPacket.maxPayload
                remaining = length
                if remaining == 0, let event = finishPacket() { events.append(event) }
                continue
            }
            if awaitingCommandByte {
                command = bytes[index]
                awaitingCommandByte = false
                index = bytes.index(after: index)
                remaining -= 1
                if remaining == 0, let event = finishPacket() { events.append(event) }
                continue
            }
            let available = bytes.distance(from: index, to: bytes.endIndex)
            let take = min(remaining, available)
            let end = bytes.index(index, offsetBy: take)
            if command == Self.comQuery || command == Self.comStmtPrepare || command == Self.comStmtExecute || command == Self.comStmtClose {
                let room = Self.maxStatementBytes - text.count
                if take <= room {
                    text.append(contentsOf: bytes[index..<end])
                } else {
                    text.append(contentsOf: bytes[index..<bytes.index(index, offsetBy: max(room, 0))])
                    truncated = true
                }
            }
            remaining -= take
            index = end
            if remaining == 0, let event = finishPacket() { events.append(event) }
        }
        return events
    }

    /// The end of a packet: the end of the command unless the packet was full-size.
    private mutating func finishPacket() -> Event? {
        guard !continues else { return nil }
        inCommand = false
        defer {
            text.removeAll(keepingCapacity: true)
            command = nil
        }
        switch command {
        case Self.comQuery: return .query(String(decoding: text, as: UTF8.self), truncated: truncated)
        case Self.comStmtPrepare: return .prepare(String(decoding: text, as: UTF8.self), truncated: truncated)
        case Self.comStmtExecute:
            guard text.count >= 4 else { return nil }
            return .execute(statementID: UInt32(text[0]) | UInt32(text[1]) << 8 | UInt32(text[2]) << 16 | UInt32(text[3]) << 24, body: text, truncated: truncated)
        case Self.comStmtClose:
            guard text.count >= 4 else { return nil }
            return .close(statementID: UInt32(text[0]) | UInt32(text[1]) << 8 | UInt32(text[2]) << 16 | UInt32(text[3]) << 24)
        case Self.comQuit: return .quit
        case Self.comChangeUser: return .changeUser
        default: return nil
        }
    }
}
