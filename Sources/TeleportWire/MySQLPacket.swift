/// One MySQL protocol packet: a 3-byte little-endian payload length, a sequence id, the payload.
/// A payload of exactly ``maxPayload`` bytes continues in the next packet (a logical packet of
/// 1 GB arrives as 64 such packets); ``parse(_:limit:)`` checks the length against a limit
/// before any byte of the payload is waited for.
public struct MySQLPacket: Sendable, Equatable {
    /// The largest payload of one packet (2^24 - 1); a payload this long continues.
    public static let maxPayload = 0xFF_FFFF

    /// The sequence id (0 at the start of each command, then +1 per packet either way).
    public var sequence: UInt8
    /// The payload.
    public var payload: [UInt8]

    /// Creates a packet.
    public init(sequence: UInt8, payload: [UInt8]) {
        self.sequence = sequence
        self.payload = payload
    }

    /// The packet on the wire (one frame: `payload` must be shorter than ``maxPayload``).
    public var bytes: [UInt8] {
        let length = min(payload.count, Self.maxPayload)
        return [UInt8(length & 0xFF), UInt8((length >> 8) & 0xFF), UInt8((length >> 16) & 0xFF), sequence] + payload
    }

    /// What the front of a byte stream holds.
    public enum Parsed: Sendable, Equatable {
        /// Fewer bytes than the packet needs.
        case needMoreData
        /// A complete packet and the number of bytes it took.
        case packet(MySQLPacket, consumed: Int)
        /// The header announces more than the limit; the reason, one line.
        case tooLong(String)
    }

    /// Parses the first packet in `bytes`, refusing a payload over `limit` bytes after its header.
    public static func parse(_ bytes: [UInt8], limit: Int) -> Parsed {
        guard bytes.count >= 4 else { return .needMoreData }
        let length = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        guard length <= limit else {
            return .tooLong("a packet of \(length) bytes is longer than the limit of \(limit) during the handshake")
        }
        guard bytes.count >= 4 + length else { return .needMoreData }
        return .packet(MySQLPacket(sequence: bytes[3], payload: Array(bytes[4..<(4 + length)])), consumed: 4 + length)
    }
}
