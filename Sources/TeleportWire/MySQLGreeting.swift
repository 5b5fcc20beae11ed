/// The server's greeting, `HandshakeV10`.
public struct MySQLGreeting: Sendable, Equatable {
    /// The version the server announces.
    public var serverVersion: String
    /// The server's thread id for this connection.
    public var connectionID: UInt32
    /// The 20 bytes the client scrambles its password with.
    public var authData: [UInt8]
    /// The flags the server offers.
    public var capabilities: MySQLCapabilities
    /// The server's default character set (collation id).
    public var characterSet: UInt8
    /// `SERVER_STATUS_*` (2: autocommit).
    public var statusFlags: UInt16
    /// The default auth plugin.
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
