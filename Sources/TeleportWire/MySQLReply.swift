/// A server's reply during authentication or to a command.
public enum MySQLReply: Sendable, Equatable {
    /// `OK` (0x00): its payload as sent.
    case ok([UInt8])
    /// `ERR` (0xFF).
    case error(code: UInt16, state: String, message: String)
    /// `AuthSwitchRequest` (0xFE): the plugin and its data.
    case authSwitch(plugin: String, data: [UInt8])
    /// `AuthMoreData` (0x01).
    case authMoreData([UInt8])
    /// Anything else.
    case other(UInt8)

    /// The error's fields, when it is one.
    public var error: (code: UInt16, state: String, message: String)? {
        if case .error(let code, let state, let message) = self { return (code, state, message) }
        return nil
    }

    /// Classifies a reply payload.
    public static func parse(_ payload: [UInt8], capabilities: MySQLCapabilities) -> MySQLReply {
        var reader = MySQLReader(payload)
        switch reader.integer(1) {
        case 0x00: return .ok(payload)
        case 0xFF:
            let code = UInt16(reader.integer(2) ?? 0)
            var state = ""
            if capabilities.contains(.protocol41), payload.count >= 9, payload[3] == UInt8(ascii: "#") {
                _ = reader.skip(1)
                state = String(decoding: reader.take(5) ?? [], as: UTF8.self)
            }
            return .error(code: code, state: state, message: String(decoding: reader.rest(), as: UTF8.self))
        case 0xFE:
            let plugin = reader.nulTerminated() ?? reader.rest()
            var data = reader.rest()
            if data.last == 0 { data.removeLast() }
            return .authSwitch(plugin: String(decoding: plugin, as: UTF8.self), data: data)
        case 0x01: return .authMoreData(reader.rest())
        case let first?: return .other(UInt8(first))
        case nil: return .other(0)
        }
    }

    /// An `OK` payload: no rows, no insert id, autocommit on, no warnings.
    public static let okPayload: [UInt8] = [0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]

    /// An `ERR` payload (protocol 4.1: `#` and the 5-character SQL state); the mysql client
    /// prints it as `ERROR code (state): message`.
    public static func errorPayload(code: UInt16, state: String, message: String) -> [UInt8] {
        let sqlState = Array((state + "HY000").utf8.prefix(5))
        return [0xFF] + MySQLWriter.integer(UInt64(code), 2) + [UInt8(ascii: "#")] + sqlState + Array(message.utf8)
    }

    /// `ER_ACCESS_DENIED_ERROR` (1045, 28000).
    public static func accessDenied(_ message: String) -> [UInt8] { errorPayload(code: 1045, state: "28000", message: message) }
    /// `ER_HANDSHAKE_ERROR` (1043, 08S01): a malformed or refused handshake.
    public static func handshakeError(_ message: String) -> [UInt8] { errorPayload(code: 1043, state: "08S01", message: message) }
    /// `ER_UNKNOWN_ERROR` (1105, HY000): the database cannot be reached and the like.
    public static func unknownError(_ message: String) -> [UInt8] { errorPayload(code: 1105, state: "HY000", message: message) }
}
