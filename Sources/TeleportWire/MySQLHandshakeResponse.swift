/// The client's `HandshakeResponse41` (and its first 32 bytes, an `SSLRequest`).
public struct MySQLHandshakeResponse: Sendable, Equatable {
    /// The flags the client chose.
    public var capabilities: MySQLCapabilities
    /// The largest packet the client accepts.
    public var maxPacketSize: UInt32
    /// The client's character set (collation id).
    public var characterSet: UInt8
    /// The database user.
    public var user: String
    /// The scrambled password (empty: none).
    public var authResponse: [UInt8]
    /// Empty when the client named none.
    public var database: String
    /// The auth plugin the response is for.
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
