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

/// Reads MySQL's field encodings from a payload: little-endian integers, length-encoded
/// integers and strings, NUL-terminated strings. Every read is bounds-checked and returns nil
/// past the end, so a truncated payload is an error, never a crash.
public struct MySQLReader: Sendable {
    /// The payload.
    public let bytes: [UInt8]
    /// The next byte to read.
    public private(set) var offset = 0

    /// Reads `bytes` from the start.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Bytes left.
    public var remaining: Int { bytes.count - offset }

    /// A little-endian unsigned integer of `width` bytes (1 to 8).
    public mutating func integer(_ width: Int) -> UInt64? {
        guard width >= 1, width <= 8, remaining >= width else { return nil }
        var value: UInt64 = 0
        for index in 0..<width { value |= UInt64(bytes[offset + index]) << (8 * index) }
        offset += width
        return value
    }

    /// `count` raw bytes.
    public mutating func take(_ count: Int) -> [UInt8]? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    /// Skips `count` bytes.
    public mutating func skip(_ count: Int) -> Bool { take(count) != nil }

    /// Bytes up to a NUL (which is consumed); nil when there is none.
    public mutating func nulTerminated() -> [UInt8]? {
        guard let end = bytes[offset...].firstIndex(of: 0) else { return nil }
        defer { offset = end + 1 }
        return Array(bytes[offset..<end])
    }

    /// The rest of the payload.
    public mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }

    /// A length-encoded integer (`< 0xFB` itself; `0xFC` 2 bytes, `0xFD` 3, `0xFE` 8).
    public mutating func lengthEncoded() -> UInt64? {
        guard let first = integer(1) else { return nil }
        switch first {
        case 0..<0xFB: return first
        case 0xFC: return integer(2)
        case 0xFD: return integer(3)
        case 0xFE: return integer(8)
        default: return nil
        }
    }

    /// A length-encoded string's bytes.
    public mutating func lengthEncodedBytes() -> [UInt8]? {
        guard let length = lengthEncoded(), length <= UInt64(remaining) else { return nil }
        return take(Int(length))
    }
}

/// Writes MySQL's field encodings.
public enum MySQLWriter {
    /// `value` as `width` little-endian bytes.
    public static func integer(_ value: UInt64, _ width: Int) -> [UInt8] {
        (0..<width).map { UInt8((value >> (8 * UInt64($0))) & 0xFF) }
    }

    /// A length-encoded integer.
    public static func lengthEncoded(_ value: UInt64) -> [UInt8] {
        switch value {
        case 0..<0xFB: return [UInt8(value)]
        case 0xFB..<0x1_0000: return [0xFC] + integer(value, 2)
        case 0x1_0000..<0x100_0000: return [0xFD] + integer(value, 3)
        default: return [0xFE] + integer(value, 8)
        }
    }

    /// A length-encoded string.
    public static func lengthEncoded(bytes: [UInt8]) -> [UInt8] { lengthEncoded(UInt64(bytes.count)) + bytes }

    /// A NUL-terminated string (NULs inside are dropped).
    public static func nulTerminated(_ text: String) -> [UInt8] { Array(text.utf8.filter { $0 != 0 }) + [0] }
}
