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

    /// Creates a scanner at a message boundary.
    public init() {}

    /// Feeds the next bytes of the stream; returns the events of the messages they complete.
    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [Event] where Bytes.Element == UInt8 {
        guard !failed else { return [] }
        var events: [Event] = []
        for byte in bytes {
            if remaining == 0 && header.count < 5 {
                header.append(byte)
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
                if remaining == 0 { if let event = finish() { events.append(event) } }
                continue
            }
            remaining -= 1
            if type == UInt8(ascii: "Q") {
                if text.count < Self.maxQueryBytes { text.append(byte) } else { truncated = true }
            }
            if remaining == 0, let event = finish() { events.append(event) }
        }
        return events
    }

    private mutating func finish() -> Event? {
        switch type {
        case UInt8(ascii: "Q"):
            if text.last == 0 { text.removeLast() }
            return .query(String(decoding: text, as: UTF8.self), truncated: truncated)
        case UInt8(ascii: "X"):
            return .terminate
        default:
            return nil
        }
    }
}
