/// The database service's side of its handshake with a MySQL/MariaDB server, without I/O: it
/// reads the greeting, asks for TLS (`SSLRequest`; a server without TLS is refused), and once
/// the caller has run TLS sends a `HandshakeResponse41` as the database user with an empty
/// password (the server checks the client certificate: `REQUIRE SUBJECT`), answers an auth
/// switch to `mysql_native_password` or `caching_sha2_password` with the empty password, and
/// ends with the server's `OK` or its error.
public struct MySQLClientHandshake: Sendable {
    /// What the caller does next.
    public enum Action: Sendable, Equatable {
        /// Send these bytes (one packet).
        case send([UInt8])
        /// Run TLS as the client (after sending what came before).
        case startTLS
        /// Logged in: the server's `OK` payload, to be passed on to the client.
        case authenticated(okPayload: [UInt8])
        /// The handshake failed; the reason, one line.
        case failed(String)
    }

    private enum State {
        case greeting
        case tls
        case authenticating
        case done
    }

    private var state = State.greeting
    private var sequence: UInt8 = 0
    let user: String
    let database: String
    let requested: MySQLCapabilities
    let characterSet: UInt8
    let maxPacketSize: UInt32
    /// The flags sent to the server (known after the greeting).
    public private(set) var negotiated: MySQLCapabilities = []

    /// A handshake logging in as `user` to `database` (empty: none), asking for the flags the
    /// client negotiated with the proxy (`requested`).
    public init(user: String, database: String, requested: MySQLCapabilities, characterSet: UInt8, maxPacketSize: UInt32) {
        self.user = user
        self.database = database
        self.requested = requested
        self.characterSet = characterSet
        self.maxPacketSize = maxPacketSize
    }

    /// The next packet from the server.
    public mutating func receive(_ packet: MySQLPacket) -> [Action] {
        sequence = packet.sequence &+ 1
        switch state {
        case .greeting:
            let greeting: MySQLGreeting
            switch MySQLGreeting.parse(packet.payload) {
            case .failure(let error): return fail(error.message)
            case .success(let parsed): greeting = parsed
            }
            let server = greeting.capabilities
            guard server.contains(.ssl) else { return fail("the database does not accept TLS connections (its greeting offers no SSL)") }
            guard server.contains(.protocol41), server.contains(.secureConnection) else {
                return fail("the database does not speak protocol 4.1")
            }
            let missing = requested.intersection(MySQLCapabilities.formatAffecting).subtracting(server)
            guard missing.isEmpty else {
                return fail("the database lacks capabilities the client negotiated (0x\(String(missing.rawValue, radix: 16)))")
            }
            let always: MySQLCapabilities = [.longPassword, .protocol41, .secureConnection, .ssl, .pluginAuth]
            negotiated = requested.intersection(MySQLCapabilities.proxyOffered).union(always).intersection(server.union(.longPassword))
                .subtracting([.connectAttributes, .pluginAuthLengthEncodedData, .connectWithDB])
            if !database.isEmpty { negotiated.insert(.connectWithDB) }
            state = .tls
            let request = MySQLHandshakeResponse.sslRequest(capabilities: negotiated, maxPacketSize: maxPacketSize, characterSet: characterSet)
            return [.send(next(request)), .startTLS]
        case .tls:
            return fail("the database sent a packet before TLS started")
        case .authenticating:
            switch MySQLReply.parse(packet.payload, capabilities: negotiated) {
            case .ok(let payload):
                state = .done
                return [.authenticated(okPayload: payload)]
            case .error(let code, _, let message):
                return fail("\(message) (error \(code))")
            case .authSwitch(let plugin, _):
                guard plugin == "mysql_native_password" || plugin == "caching_sha2_password" else {
                    return fail("the database asks for auth plugin \(plugin): the database user must log in with its certificate and no password")
                }
                return [.send(next([]))]
            case .authMoreData(let data):
                // caching_sha2_password: 3 = fast authentication succeeded, OK follows.
                guard data == [3] else {
                    return fail("the database asks for a password: the database user must log in with its certificate and no password")
                }
                return []
            case .other(let first):
                return fail("the database sent an unexpected reply (0x\(String(first, radix: 16))) during authentication")
            }
        case .done:
            return []
        }
    }

    /// Call once TLS is up: sends the response.
    public mutating func tlsEstablished() -> [Action] {
        guard state == .tls else { return [] }
        state = .authenticating
        let response = MySQLHandshakeResponse(
            capabilities: negotiated, maxPacketSize: maxPacketSize, characterSet: characterSet, user: user, database: database)
        return [.send(next(response.payload))]
    }

    private mutating func next(_ payload: [UInt8]) -> [UInt8] {
        defer { sequence &+= 1 }
        return MySQLPacket(sequence: sequence, payload: payload).bytes
    }

    private mutating func fail(_ reason: String) -> [Action] {
        state = .done
        return [.failed(reason)]
    }
}
