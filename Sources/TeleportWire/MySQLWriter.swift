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
