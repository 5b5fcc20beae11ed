/// Follows the database's side of a MySQL session after the handshake, packet by packet, for one
/// purpose: the answer to each `COM_STMT_PREPARE` (announced with ``expectPrepareResponse()``
/// when the client's scanner sees one). The first packet of that answer (sequence id 1) is either
/// `COM_STMT_PREPARE_OK` (12 bytes: `0x00`, the statement id, the column and parameter counts)
/// or an `ERR`. Every other payload is skipped without being kept, so memory is bounded
/// whatever the results hold.
public struct MySQLBackendScanner: Sendable {
    /// The most prepares awaiting an answer (a client cannot have more in flight in practice).
    public static let maxPending = 1024

    /// What an answer was.
    public enum Event: Sendable, Equatable {
        /// `COM_STMT_PREPARE_OK`: the statement's id and its number of parameters.
        case prepared(statementID: UInt32, parameters: Int)
        /// The prepare failed (`ERR`, or an answer of another shape).
        case prepareFailed
    }

    private var header: [UInt8] = []
    private var remaining = 0
    private var pending = 0
    /// The first bytes of the packet that answers a prepare (nil: not capturing).
    private var capture: [UInt8]?
    private var captureLength = 0

    /// Creates a scanner at a packet boundary after the handshake.
    public init() {}

    /// The client sent a `COM_STMT_PREPARE`: its answer is the next response.
    public mutating func expectPrepareResponse() { pending = min(pending + 1, Self.maxPending) }

    /// Feeds the database's next bytes; returns the prepares they answer.
    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) -> [Event] where Bytes.Element == UInt8 {
        var events: [Event] = []
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if remaining == 0 && capture == nil {
                header.append(bytes[index])
                index = bytes.index(after: index)
                guard header.count == 4 else { continue }
                remaining = Int(header[0]) | Int(header[1]) << 8 | Int(header[2]) << 16
                let sequence = header[3]
                header.removeAll(keepingCapacity: true)
                if pending > 0 && sequence == 1 {
                    capture = []
                    captureLength = remaining
                }
                if remaining == 0, let event = finish() { events.append(event) }
                continue
            }
            let take = min(remaining, bytes.distance(from: index, to: bytes.endIndex))
            let end = bytes.index(index, offsetBy: take)
            if var kept = capture {
                kept.append(contentsOf: bytes[index..<bytes.index(index, offsetBy: min(take, max(0, 12 - kept.count)))])
                capture = kept
            }
            remaining -= take
            index = end
            if remaining == 0, let event = finish() { events.append(event) }
        }
        return events
    }

    private mutating func finish() -> Event? {
        guard let kept = capture else { return nil }
        capture = nil
        pending -= 1
        guard captureLength == 12, kept.count == 12, kept[0] == 0x00 else { return .prepareFailed }
        let id = UInt32(kept[1]) | UInt32(kept[2]) << 8 | UInt32(kept[3]) << 16 | UInt32(kept[4]) << 24
        return .prepared(statementID: id, parameters: Int(kept[7]) | Int(kept[8]) << 8)
    }
}
