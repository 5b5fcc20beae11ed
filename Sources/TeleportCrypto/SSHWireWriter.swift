/// Builds byte strings in the SSH wire encoding of RFC 4251 section 5.
///
/// All integers are big-endian; a `string` is a `uint32` length followed by that many bytes; an
/// `mpint` is a two's-complement big-endian integer in a `string`, with the fewest bytes possible.
/// The writer never fails: it only appends.
public struct SSHWireWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    /// Creates an empty writer.
    public init() {
        bytes = []
    }

    /// Appends one byte.
    public mutating func writeByte(_ value: UInt8) {
        bytes.append(value)
    }

    /// Appends a big-endian `uint32`.
    public mutating func writeUInt32(_ value: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    /// Appends a big-endian `uint64`.
    public mutating func writeUInt64(_ value: UInt64) {
        writeUInt32(UInt32(truncatingIfNeeded: value >> 32))
        writeUInt32(UInt32(truncatingIfNeeded: value))
    }

    /// Appends raw bytes with no length prefix.
    public mutating func writeRaw(_ value: some Sequence<UInt8>) {
        bytes.append(contentsOf: value)
    }

    /// Appends an SSH `string`: a `uint32` length, then the bytes.
    public mutating func writeString(_ value: some Collection<UInt8>) {
        writeUInt32(UInt32(truncatingIfNeeded: value.count))
        bytes.append(contentsOf: value)
    }

    /// Appends the UTF-8 form of `value` as an SSH `string`.
    public mutating func writeString(_ value: String) {
        writeString(Array(value.utf8))
    }

    /// Appends a non-negative `mpint` whose magnitude is given as unsigned big-endian bytes.
    ///
    /// Leading zero bytes are dropped, and one zero byte is prepended when the top bit is set, so the
    /// value stays positive; zero is written as an empty string.
    public mutating func writeUnsignedMPInt(_ magnitude: some Collection<UInt8>) {
        let trimmed = magnitude.drop { $0 == 0 }
        if let first = trimmed.first, first & 0x80 != 0 {
            writeUInt32(UInt32(truncatingIfNeeded: trimmed.count + 1))
            bytes.append(0)
            bytes.append(contentsOf: trimmed)
        } else {
            writeString(Array(trimmed))
        }
    }
}
