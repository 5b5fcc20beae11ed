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
