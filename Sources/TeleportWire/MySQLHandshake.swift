/// MySQL capability flags (the `CLIENT_*` bits of the handshake).
public struct MySQLCapabilities: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let longPassword = MySQLCapabilities(rawValue: 1)
    public static let foundRows = MySQLCapabilities(rawValue: 1 << 1)
    public static let longFlag = MySQLCapabilities(rawValue: 1 << 2)
    public static let connectWithDB = MySQLCapabilities(rawValue: 1 << 3)
    public static let noSchema = MySQLCapabilities(rawValue: 1 << 4)
    public static let compress = MySQLCapabilities(rawValue: 1 << 5)
    public static let odbc = MySQLCapabilities(rawValue: 1 << 6)
    public static let localFiles = MySQLCapabilities(rawValue: 1 << 7)
    public static let ignoreSpace = MySQLCapabilities(rawValue: 1 << 8)
    public static let protocol41 = MySQLCapabilities(rawValue: 1 << 9)
    public static let interactive = MySQLCapabilities(rawValue: 1 << 10)
    public static let ssl = MySQLCapabilities(rawValue: 1 << 11)
    public static let ignoreSigpipe = MySQLCapabilities(rawValue: 1 << 12)
    public static let transactions = MySQLCapabilities(rawValue: 1 << 13)
    public static let secureConnection = MySQLCapabilities(rawValue: 1 << 15)
    public static let multiStatements = MySQLCapabilities(rawValue: 1 << 16)
    public static let multiResults = MySQLCapabilities(rawValue: 1 << 17)
    public static let psMultiResults = MySQLCapabilities(rawValue: 1 << 18)
    public static let pluginAuth = MySQLCapabilities(rawValue: 1 << 19)
    public static let connectAttributes = MySQLCapabilities(rawValue: 1 << 20)
    public static let pluginAuthLengthEncodedData = MySQLCapabilities(rawValue: 1 << 21)
    public static let canHandleExpiredPasswords = MySQLCapabilities(rawValue: 1 << 22)
    public static let sessionTrack = MySQLCapabilities(rawValue: 1 << 23)
    public static let deprecateEOF = MySQLCapabilities(rawValue: 1 << 24)

    /// What the proxy offers clients: what every MySQL ≥ 5.5 and MariaDB server also has, so
    /// the session the client negotiated with the proxy and the one the database service
    /// negotiates upstream format their results alike and the bytes can be relayed unchanged.
    /// Not offered: compression, `LOAD DATA LOCAL` (`localFiles`), session tracking and
    /// `deprecateEOF` (result formats not every server has), query attributes.
    public static let proxyOffered: MySQLCapabilities = [
        .longPassword, .foundRows, .longFlag, .connectWithDB, .noSchema, .odbc, .ignoreSpace, .protocol41, .interactive, .ssl,
        .ignoreSigpipe, .transactions, .secureConnection, .multiStatements, .multiResults, .psMultiResults, .pluginAuth,
        .connectAttributes, .pluginAuthLengthEncodedData,
    ]

    /// Flags that change how later packets look: the database must have every one the client
    /// negotiated, or relayed results would be misread.
    public static let formatAffecting: MySQLCapabilities = [.protocol41, .multiResults, .psMultiResults, .sessionTrack, .deprecateEOF]
}

/// The server's greeting, `HandshakeV10`.
public struct MySQLGreeting: Sendable, Equatable {
    public var serverVersion: String
    public var connectionID: UInt32
    /// The 20 bytes the client scrambles its password with.
    public var authData: [UInt8]
    public var capabilities: MySQLCapabilities
    public var characterSet: UInt8
    public var statusFlags: UInt16
    public var authPlugin: String

    /// Creates a greeting.
    public init(
        serverVersion: String, connectionID: UInt32, authData: [UInt8], capabilities: MySQLCapabilities, characterSet: UInt8 = 45,
        statusFlags: UInt16 = 2, authPlugin: String = "mysql_native_password"
    ) {
        self.serverVersion = serverVersion
        self.connectionID = connectionID
        self.authData = authData
        self.capabilities = capabilities
        self.characterSet = characterSet
        self.statusFlags = statusFlags
        self.authPlugin = authPlugin
    }

    /// The payload (protocol 10; the scramble in two parts, its second part NUL-terminated).
    public var payload: [UInt8] {
        var data = authData
        while data.count < 20 { data.append(0x30) }
        var bytes: [UInt8] = [10] + MySQLWriter.nulTerminated(serverVersion) + MySQLWriter.integer(UInt64(connectionID), 4)
        bytes += data[0..<8] + [0]
        bytes += MySQLWriter.integer(UInt64(capabilities.rawValue & 0xFFFF), 2) + [characterSet]
        bytes += MySQLWriter.integer(UInt64(statusFlags), 2) + MySQLWriter.integer(UInt64(capabilities.rawValue >> 16), 2)
        bytes += [UInt8(data.count + 1)] + [UInt8](repeating: 0, count: 10)
        bytes += data[8...] + [0]
        if capabilities.contains(.pluginAuth) { bytes += MySQLWriter.nulTerminated(authPlugin) }
        return bytes
    }

    /// Parses a server's greeting; the reason when it is not protocol 10 or is cut short.
    public static func parse(_ payload: [UInt8]) -> Result<MySQLGreeting, MySQLWireError> {
        var reader = MySQLReader(payload)
        if payload.first == 0xFF, let error = MySQLReply.parse(payload, capabilities: .protocol41).error {
            return .failure(MySQLWireError("the server refused the connection: \(error.message)"))
        }
        guard reader.integer(1) == 10 else {
            return .failure(MySQLWireError("the server's greeting is not protocol version 10"))
        }
        guard let version = reader.nulTerminated(), let id = reader.integer(4), let part1 = reader.take(8), reader.skip(1),
            let lower = reader.integer(2)
        else { return .failure(MySQLWireError("the server's greeting is cut short")) }
        var greeting = MySQLGreeting(
            serverVersion: String(decoding: version, as: UTF8.self), connectionID: UInt32(id), authData: part1,
            capabilities: MySQLCapabilities(rawValue: UInt32(lower)))
        guard reader.remaining > 0 else { return .success(greeting) }
        guard let charset = reader.integer(1), let status = reader.integer(2), let upper = reader.integer(2),
            let dataLength = reader.integer(1), reader.skip(10)
        else { return .failure(MySQLWireError("the server's greeting is cut short")) }
        greeting.characterSet = UInt8(charset)
        greeting.statusFlags = UInt16(status)
        greeting.capabilities = MySQLCapabilities(rawValue: UInt32(lower) | UInt32(upper) << 16)
        if greeting.capabilities.contains(.secureConnection) {
            let count = max(13, Int(dataLength) - 8)
            guard let part2 = reader.take(count) else { return .failure(MySQLWireError("the server's greeting is cut short")) }
            greeting.authData += part2.last == 0 ? Array(part2.dropLast()) : part2
        }
        if greeting.capabilities.contains(.pluginAuth) {
            greeting.authPlugin = String(decoding: reader.nulTerminated() ?? reader.rest(), as: UTF8.self)
        }
        return .success(greeting)
    }
}

/// The client's `HandshakeResponse41` (and its first 32 bytes, an `SSLRequest`).
public struct MySQLHandshakeResponse: Sendable, Equatable {
    public var capabilities: MySQLCapabilities
    public var maxPacketSize: UInt32
    public var characterSet: UInt8
    public var user: String
    public var authResponse: [UInt8]
    /// Empty when the client named none.
    public var database: String
    public var authPlugin: String

    /// Creates a response.
    public init(
        capabilities: MySQLCapabilities, maxPacketSize: UInt32 = 1 << 24, characterSet: UInt8 = 45, user: String, authResponse: [UInt8] = [],
        database: String = "", authPlugin: String = "mysql_native_password"
    ) {
        self.capabilities = capabilities
        self.maxPacketSize = maxPacketSize
        self.characterSet = characterSet
        self.user = user
        self.authResponse = authResponse
        self.database = database
        self.authPlugin = authPlugin
    }

    /// The 32 bytes both an `SSLRequest` and a full response start with.
    static func fixedPart(_ capabilities: MySQLCapabilities, _ maxPacketSize: UInt32, _ characterSet: UInt8) -> [UInt8] {
        MySQLWriter.integer(UInt64(capabilities.rawValue), 4) + MySQLWriter.integer(UInt64(maxPacketSize), 4) + [characterSet]
            + [UInt8](repeating: 0, count: 23)
    }

    /// An `SSLRequest` payload with these flags (which must include `ssl`).
    public static func sslRequest(capabilities: MySQLCapabilities, maxPacketSize: UInt32, characterSet: UInt8) -> [UInt8] {
        fixedPart(capabilities.union(.ssl), maxPacketSize, characterSet)
    }

    /// The payload (the auth response with a 1-byte length: `secureConnection`).
    public var payload: [UInt8] {
        var flags = capabilities.union([.protocol41, .secureConnection]).subtracting([.pluginAuthLengthEncodedData, .connectAttributes])
        if database.isEmpty { flags.remove(.connectWithDB) } else { flags.insert(.connectWithDB) }
        var bytes = Self.fixedPart(flags, maxPacketSize, characterSet) + MySQLWriter.nulTerminated(user)
        bytes += [UInt8(min(authResponse.count, 255))] + authResponse.prefix(255)
        if flags.contains(.connectWithDB) { bytes += MySQLWriter.nulTerminated(database) }
        if flags.contains(.pluginAuth) { bytes += MySQLWriter.nulTerminated(authPlugin) }
        return bytes
    }

    /// What a client's packet after the greeting is.
    public enum Parsed: Sendable, Equatable {
        /// 32 bytes with `ssl`: the client asks for TLS.
        case sslRequest(MySQLCapabilities)
        /// A full response.
        case response(MySQLHandshakeResponse)
    }

    /// Parses a client's packet after the greeting; the reason when it is not a protocol 4.1
    /// response or a field runs past the end.
    public static func parse(_ payload: [UInt8]) -> Result<Parsed, MySQLWireError> {
        var reader = MySQLReader(payload)
        guard let flags = reader.integer(4), let maxPacket = reader.integer(4), let charset = reader.integer(1), reader.skip(23) else {
            return .failure(MySQLWireError("the handshake response is cut short (\(payload.count) bytes)"))
        }
        let capabilities = MySQLCapabilities(rawValue: UInt32(flags))
        guard capabilities.contains(.protocol41) else {
            return .failure(MySQLWireError("the client does not speak protocol 4.1"))
        }
        if reader.remaining == 0 {
            guard capabilities.contains(.ssl) else { return .failure(MySQLWireError("the handshake response names no user")) }
            return .success(.sslRequest(capabilities))
        }
        guard let user = reader.nulTerminated() else { return .failure(MySQLWireError("the handshake response's user name is cut short")) }
        let auth: [UInt8]?
        if capabilities.contains(.pluginAuthLengthEncodedData) {
            auth = reader.lengthEncodedBytes()
        } else if capabilities.contains(.secureConnection) {
            auth = reader.integer(1).flatMap { reader.take(Int($0)) }
        } else {
            auth = reader.nulTerminated()
        }
        guard let auth else { return .failure(MySQLWireError("the handshake response's auth data is cut short")) }
        var response = MySQLHandshakeResponse(
            capabilities: capabilities, maxPacketSize: UInt32(maxPacket), characterSet: UInt8(charset),
            user: String(decoding: user, as: UTF8.self), authResponse: auth, authPlugin: "")
        if capabilities.contains(.connectWithDB) {
            guard let database = reader.nulTerminated() else {
                return .failure(MySQLWireError("the handshake response's database name is cut short"))
            }
            response.database = String(decoding: database, as: UTF8.self)
        }
        if capabilities.contains(.pluginAuth), reader.remaining > 0 {
            guard let plugin = reader.nulTerminated() else {
                return .failure(MySQLWireError("the handshake response's auth plugin name is cut short"))
            }
            response.authPlugin = String(decoding: plugin, as: UTF8.self)
        }
        return .success(.response(response))
    }
}

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

/// Why MySQL bytes were refused, one line.
public struct MySQLWireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The reason.
    public var message: String
    /// Creates the error.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
