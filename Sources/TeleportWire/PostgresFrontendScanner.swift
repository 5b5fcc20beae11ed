/// Follows the client's side of a PostgreSQL session after the start-up message, message by
/// message (a type byte, a 4-byte length, the body), for the audit log: it reports each
/// simple-protocol `Query` (`Q`) with its text and a `Terminate` (`X`). The bytes themselves are
/// relayed by the caller as they arrive; the scanner keeps at most ``maxQueryBytes`` of a query's
/// text, so a 100 MB query costs no more memory than a short one.
public struct PostgresFrontendScanner: Sendable {
    /// How much of a query's text is kept for the audit event.
    public static let maxQueryBytes = 64 * 1024

    /// What a complete message was.
    public enum Event: Sendable, Equatable {
        /// A simple `Query`: its text (cut at ``maxQueryBytes``, `truncated` then).
        case query(String, truncated: Bool)
        /// An extended-protocol `Execute`: the statement's text and the portal's parameters (text
        /// values as sent, binary ones as `\x` and hex, SQL NULL as nil); `truncated` when any of it
        /// was cut.
        case execute(String, parameters: [String?], truncated: Bool)
        /// `Terminate`: the client ends the session.
        case terminate
        /// The stream is not PostgreSQL (a length below 4): the session must end.
        case invalid(String)
    }

    private var header: [UInt8] = []
    private var type: UInt8 = 0
    private var remaining = 0
    private var text: [UInt8] = []
    private var truncated = false
    private var failed = false
    private var extended = ExtendedQueries()

    /// Creates a scanner at a message boundary.
    public init() {}

    /// Feeds the next bytes of the stream; returns the events of the messages they complete.
    /// Message bodies other than a query's are skipped in one step, not byte by byte.
    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) -> [Event] where Bytes.Element == UInt8 {
        guard !failed else { return [] }
        var events: [Event] = []
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if remaining == 0 {
                header.append(bytes[index])
                index = bytes.index(after: index)
                guard header.count == 5 else { continue }
                type = header[0]
                let length = Int(PostgresStartup.readUInt32(header, at: 1))
                header.removeAll(keepingCapacity: true)
                guard length >= 4 else {
                    failed = true
                    events.append(.invalid("a message of type \(type) announces \(length) bytes (at least 4)"))
                    return events
                }
                remaining = length - 4
                text.removeAll(keepingCapacity: true)
                truncated = false
                if remaining == 0, let event = finish() { events.append(event) }
                continue
            }
            let available = bytes.distance(from: index, to: bytes.endIndex)
            let take = min(remaining, available)
            let end = bytes.index(index, offsetBy: take)
            if Self.keptTypes.contains(type) {
                let room = Self.maxQueryBytes - text.count
                if take <= room {
                    text.append(contentsOf: bytes[index..<end])
                } else {
                    text.append(contentsOf: bytes[index..<bytes.index(index, offsetBy: max(room, 0))])
                    truncated = true
                }
            }
            remaining -= take
            index = end
            if remaining == 0, let event = finish() { events.append(event) }
        }
        return events
    }

    /// The message types whose bodies are kept (up to ``maxQueryBytes``): `Query`, `Parse`, `Bind`,
    /// `Execute`, `Close`.
    static let keptTypes: Set<UInt8> = Set("QPBEC".utf8)

    private mutating func finish() -> Event? {
        switch type {
        case UInt8(ascii: "Q"):
            if text.last == 0 { text.removeLast() }
            return .query(String(decoding: text, as: UTF8.self), truncated: truncated)
        case UInt8(ascii: "P"):
            extended.parse(text, truncated: truncated)
            return nil
        case UInt8(ascii: "B"):
            extended.bind(text, truncated: truncated)
            return nil
        case UInt8(ascii: "C"):
            extended.close(text)
            return nil
        case UInt8(ascii: "E"):
            return extended.execute(text).map { .execute($0.query, parameters: $0.parameters, truncated: $0.truncated) }
        case UInt8(ascii: "X"):
            return .terminate
        default:
            return nil
        }
    }
}
