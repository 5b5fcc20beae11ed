public import TeleportAPI

/// Reads the SSH wire encoding of RFC 4251 section 5 from untrusted bytes.
///
/// Every read checks the remaining length first and throws ``TeleportError`` with code
/// `badParameter` on truncated input or on a length above ``maximumStringLength``; it never traps.
public struct SSHWireReader: Sendable {
    /// The largest `string` this reader accepts, in bytes. Keys, signatures and certificates are far
    /// smaller; a larger length is taken as garbage or an attack, not as data.
    public let maximumStringLength: Int

    private let bytes: [UInt8]
    private var position: Int

    /// Creates a reader over a copy of `bytes`.
    ///
    /// - Parameters:
    ///   - bytes: The encoded input.
    ///   - maximumStringLength: The largest `string` accepted; 256 KiB unless told.
    public init(_ bytes: some Sequence<UInt8>, maximumStringLength: Int = 256 * 1024) {
        self.bytes = Array(bytes)
        self.position = 0
        self.maximumStringLength = maximumStringLength
    }

    /// The number of bytes not read yet.
    public var remainingCount: Int { bytes.count - position }

    /// True when every byte has been read.
    public var isAtEnd: Bool { position >= bytes.count }

    /// The offset of the next byte to read, from the start of the input.
    public var offset: Int { position }

    /// Reads one byte.
    public mutating func readByte() throws(TeleportError) -> UInt8 {
        let raw = try take(1, what: "byte")
        return raw[raw.startIndex]
    }

    /// Reads a big-endian `uint32`.
    public mutating func readUInt32() throws(TeleportError) -> UInt32 {
        let raw = try take(4, what: "uint32")
        return raw.reduce(UInt32(0)) { ($0 << 8) | UInt32($1) }
    }

    /// Reads a big-endian `uint64`.
    public mutating func readUInt64() throws(TeleportError) -> UInt64 {
        let raw = try take(8, what: "uint64")
        return raw.reduce(UInt64(0)) { ($0 << 8) | UInt64($1) }
    }

    /// Reads `count` raw bytes with no length prefix.
    public mutating func readRaw(count: Int) throws(TeleportError) -> [UInt8] {
        guard count >= 0 else {
            throw TeleportError.badParameter("SSH wire data: negative length requested")
        }
        return Array(try take(count, what: "\(count) bytes"))
    }

    /// Reads an SSH `string` and returns its bytes.
    public mutating func readString() throws(TeleportError) -> [UInt8] {
        let length = try readUInt32()
        guard length <= UInt32(clamping: maximumStringLength) else {
            throw TeleportError.badParameter(
                "SSH wire data: string length \(length) exceeds the limit of \(maximumStringLength) bytes"
            )
        }
        return Array(try take(Int(length), what: "string of \(length) bytes"))
    }

    /// Reads an SSH `string` that must be valid UTF-8.
    public mutating func readUTF8String() throws(TeleportError) -> String {
        let raw = try readString()
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw TeleportError.badParameter("SSH wire data: string is not valid UTF-8")
        }
        return text
    }

    /// Reads an `mpint` that must be non-negative and minimally encoded, and returns its magnitude as
    /// unsigned big-endian bytes with no leading zero (empty for zero).
    public mutating func readUnsignedMPInt() throws(TeleportError) -> [UInt8] {
        let raw = try readString()
        guard let first = raw.first else { return [] }
        if first & 0x80 != 0 {
            throw TeleportError.badParameter("SSH wire data: negative mpint where a positive one is required")
        }
        if first == 0 {
            // A leading zero is only allowed to keep the next byte's top bit from reading as a sign.
            guard raw.count > 1, raw[1] & 0x80 != 0 else {
                throw TeleportError.badParameter("SSH wire data: mpint is not minimally encoded")
            }
            return Array(raw.dropFirst())
        }
        return raw
    }

    /// Throws unless every byte has been read; call it after the last field of a structure.
    public func expectEnd(_ context: String) throws(TeleportError) {
        guard isAtEnd else {
            throw TeleportError.badParameter("\(context): \(remainingCount) unexpected trailing bytes")
        }
    }

    private mutating func take(_ count: Int, what: String) throws(TeleportError) -> ArraySlice<UInt8> {
        guard count <= remainingCount else {
            throw TeleportError.badParameter(
                "SSH wire data truncated: needed \(what) at offset \(position), only \(remainingCount) left"
            )
        }
        let slice = bytes[position..<(position + count)]
        position += count
        return slice
    }
}
