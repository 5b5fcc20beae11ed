/// The first message of a PostgreSQL connection, parsed without I/O: an `SSLRequest`, a
/// `GSSENCRequest`, a `CancelRequest` or a protocol 3.0 `StartupMessage` (a length, a code, then
/// `name\0value\0` pairs and a final `\0`). The length is checked before any byte of the body is
/// waited for, so a client announcing a gigabyte is refused after eight bytes.
public enum PostgresStartup {
    /// The largest first message accepted (PostgreSQL's own limit is 10,000 bytes).
    public static let maxLength = 10_000
    /// `SSLRequest`'s code.
    public static let sslRequestCode: UInt32 = 80_877_103
    /// `GSSENCRequest`'s code.
    public static let gssEncRequestCode: UInt32 = 80_877_104
    /// `CancelRequest`'s code.
    public static let cancelRequestCode: UInt32 = 80_877_102
    /// Protocol version 3.0.
    public static let protocolVersion3: UInt32 = 196_608

    /// One startup parameter (`user`, `database`, `application_name`, ...).
    public struct Parameter: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// What the bytes so far hold.
    public enum Message: Sendable, Equatable {
        /// Fewer bytes than the message needs.
        case needMoreData
        /// `SSLRequest`: the client asks for TLS.
        case sslRequest
        /// `GSSENCRequest`: the client asks for GSSAPI encryption (answered `N`).
        case gssEncRequest
        /// `CancelRequest`.
        case cancelRequest
        /// A protocol 3.0 start-up message and its parameters.
        case startup([Parameter])
        /// Not a PostgreSQL start-up message; the reason, one line.
        case invalid(String)
    }

    /// Parses the first message in `bytes`; `consumed` is its length when it is complete.
    public static func parse(_ bytes: [UInt8]) -> (message: Message, consumed: Int) {
        guard bytes.count >= 8 else { return (.needMoreData, 0) }
        let length = Int(readUInt32(bytes, at: 0))
        let code = readUInt32(bytes, at: 4)
        guard length >= 8 else { return (.invalid("a start-up message of \(length) bytes is too short"), 0) }
        guard length <= maxLength else {
            return (.invalid("a start-up message of \(length) bytes is longer than the limit of \(maxLength)"), 0)
        }
        switch code {
        case sslRequestCode, gssEncRequestCode:
            guard length == 8 else { return (.invalid("an SSLRequest is 8 bytes, not \(length)"), 0) }
            return (code == sslRequestCode ? .sslRequest : .gssEncRequest, 8)
        case cancelRequestCode:
            guard length == 16 else { return (.invalid("a CancelRequest is 16 bytes, not \(length)"), 0) }
            guard bytes.count >= 16 else { return (.needMoreData, 0) }
            return (.cancelRequest, 16)
        case protocolVersion3:
            guard bytes.count >= length else { return (.needMoreData, 0) }
            guard let parameters = parameters(Array(bytes[8..<length])) else {
                return (.invalid("the start-up message's parameters are not NUL-terminated name/value pairs"), 0)
            }
            return (.startup(parameters), length)
        default:
            return (.invalid("protocol version \(code >> 16).\(code & 0xFFFF) is not supported (only 3.0)"), 0)
        }
    }

    /// `name\0value\0...\0` as pairs; nil when malformed (odd strings, missing terminator, bad UTF-8).
    static func parameters(_ body: [UInt8]) -> [Parameter]? {
        guard body.last == 0 else { return nil }
        let pairs = body.dropLast()
        if pairs.isEmpty { return [] }
        // Each string ends with its own NUL: the list ends with one, then the terminator.
        guard pairs.last == 0 else { return nil }
        let strings = pairs.dropLast().split(separator: 0, omittingEmptySubsequences: false)
        guard strings.count % 2 == 0 else { return nil }
        var result: [Parameter] = []
        var index = strings.startIndex
        while index < strings.endIndex {
            guard let name = String(validating: strings[index], as: UTF8.self),
                let value = String(validating: strings[index + 1], as: UTF8.self), !name.isEmpty
            else { return nil }
            result.append(Parameter(name, value))
            index += 2
        }
        return result
    }

    /// The 8 bytes of an `SSLRequest`.
    public static let sslRequest: [UInt8] = uint32(8) + uint32(sslRequestCode)

    /// A protocol 3.0 start-up message with `parameters`.
    public static func startupMessage(_ parameters: [Parameter]) -> [UInt8] {
        var body = uint32(protocolVersion3)
        for parameter in parameters {
            body += Array(parameter.name.utf8) + [0] + Array(parameter.value.utf8) + [0]
        }
        body.append(0)
        return uint32(UInt32(body.count + 4)) + body
    }

    /// A backend `ErrorResponse` (`E`) with severity FATAL, the SQLSTATE `code` (such as `28000`,
    /// invalid authorization) and `message`; psql prints it as `FATAL:  message`.
    public static func errorResponse(code: String, message: String) -> [UInt8] {
        var body: [UInt8] = []
        for (field, value) in [(UInt8(ascii: "S"), "FATAL"), (UInt8(ascii: "V"), "FATAL"), (UInt8(ascii: "C"), code), (UInt8(ascii: "M"), message)] {
            body.append(field)
            body += Array(value.utf8.filter { $0 != 0 }) + [0]
        }
        body.append(0)
        return [UInt8(ascii: "E")] + uint32(UInt32(body.count + 4)) + body
    }

    static func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    static func uint32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}
