import Testing
import TeleportWire

/// MySQL packets, the greeting and the client's response, and both sides' handshake machines,
/// driven with bytes only.
@Suite("MySQL handshake")
struct MySQLHandshakeTests {
    static let scramble = Array("abcdefghijklmnopqrst".utf8)

    /// A client's full response as the mariadb client sends it (protocol 4.1, lenenc auth data,
    /// a database, the plugin name, connection attributes).
    static func clientResponse(user: String = "alice", database: String = "shop", ssl: Bool = true) -> [UInt8] {
        var flags: MySQLCapabilities = [
            .longPassword, .longFlag, .protocol41, .transactions, .secureConnection, .multiStatements, .multiResults, .pluginAuth,
            .pluginAuthLengthEncodedData, .connectAttributes, .connectWithDB,
        ]
        if ssl { flags.insert(.ssl) }
        var payload = MySQLWriter.integer(UInt64(flags.rawValue), 4) + MySQLWriter.integer(1 << 24, 4) + [33] + [UInt8](repeating: 0, count: 23)
        payload += MySQLWriter.nulTerminated(user) + MySQLWriter.lengthEncoded(bytes: [])
        payload += MySQLWriter.nulTerminated(database) + MySQLWriter.nulTerminated("mysql_native_password")
        let attributes = MySQLWriter.lengthEncoded(bytes: Array("_client_name".utf8)) + MySQLWriter.lengthEncoded(bytes: Array("libmariadb".utf8))
        payload += MySQLWriter.lengthEncoded(bytes: attributes)
        return payload
    }

    static func sslRequest() -> [UInt8] {
        MySQLHandshakeResponse.sslRequest(capabilities: [.protocol41, .secureConnection, .pluginAuth], maxPacketSize: 1 << 24, characterSet: 33)
    }

    @Test(arguments: [
        ([0x01, 0x00, 0x00, 0x00, 0x2A], MySQLPacket.Parsed.packet(MySQLPacket(sequence: 0, payload: [0x2A]), consumed: 5)),
        ([0x01, 0x00, 0x00], .needMoreData),
        ([0x02, 0x00, 0x00, 0x03, 0x2A], .needMoreData),
        ([0x00, 0x00, 0x00, 0x07], .packet(MySQLPacket(sequence: 7, payload: []), consumed: 4)),
        ([0xFF, 0xFF, 0xFF, 0x01], .tooLong("a packet of 16777215 bytes is longer than the limit of 16384 during the handshake")),
        ([0x01, 0x40, 0x00, 0x01], .tooLong("a packet of 16385 bytes is longer than the limit of 16384 during the handshake")),
    ] as [([UInt8], MySQLPacket.Parsed)])
    func packetsAreFramedAndBounded(bytes: [UInt8], expected: MySQLPacket.Parsed) {
        #expect(MySQLPacket.parse(bytes, limit: MySQLServerHandshake.maxPacket) == expected)
    }

    @Test func lengthEncodedIntegersRoundTrip() {
        for value: UInt64 in [0, 250, 251, 0xFFFF, 0x1_0000, 0xFF_FFFF, 0x100_0000, UInt64.max] {
            var reader = MySQLReader(MySQLWriter.lengthEncoded(value))
            #expect(reader.lengthEncoded() == value)
            #expect(reader.remaining == 0)
        }
        var truncated = MySQLReader([0xFC, 0x01])
        #expect(truncated.lengthEncoded() == nil)
        var overlong = MySQLReader([0x05, 0x61])
        #expect(overlong.lengthEncodedBytes() == nil)
    }

    @Test func greetingRoundTrips() throws {
        let greeting = MySQLServerHandshake.greeting(connectionID: 7, scramble: Self.scramble)
        let parsed = try MySQLGreeting.parse(greeting.payload).get()
        #expect(parsed == greeting)
        #expect(parsed.capabilities.contains(.ssl) && !parsed.capabilities.contains(.compress) && !parsed.capabilities.contains(.localFiles))
        // Cut anywhere before the capability flags: refused, not a crash.
        for cut in 1..<20 {
            if case .success = MySQLGreeting.parse(Array(greeting.payload.prefix(cut))) { Issue.record("cut at \(cut) parsed") }
        }
        if case .success = MySQLGreeting.parse([9] + greeting.payload.dropFirst()) { Issue.record("protocol 9 accepted") }
    }

    @Test func clientResponseIsParsed() throws {
        guard case .response(let response) = try MySQLHandshakeResponse.parse(Self.clientResponse()).get() else {
            Issue.record("not a response")
            return
        }
        #expect(response.user == "alice" && response.database == "shop" && response.authPlugin == "mysql_native_password")
        #expect(response.characterSet == 33 && response.authResponse.isEmpty && response.capabilities.contains(.ssl))
        #expect(try MySQLHandshakeResponse.parse(Self.sslRequest()).get() == .sslRequest([.protocol41, .secureConnection, .pluginAuth, .ssl]))
        // Our own response (1-byte auth length, no attributes) parses back.
        let ours = MySQLHandshakeResponse(capabilities: [.protocol41, .pluginAuth, .ssl], user: "bob", authResponse: [1, 2], database: "")
        guard case .response(let back) = try MySQLHandshakeResponse.parse(ours.payload).get() else {
            Issue.record("ours not a response")
            return
        }
        #expect(back.user == "bob" && back.database == "" && back.authResponse == [1, 2] && !back.capabilities.contains(.connectWithDB))
    }

    @Test func truncatedResponsesAreRefused() {
        let full = Self.clientResponse()
        // Every cut inside the user name, the auth data or the database name is refused (32
        // fixed bytes, "alice\0", an empty auth response, "shop\0"; the plugin name after it may
        // be absent).
        for cut in 33..<(32 + 6 + 1 + 5) {
            guard case .failure(let error) = MySQLHandshakeResponse.parse(Array(full.prefix(cut))) else {
                Issue.record("cut at \(cut) parsed")
                continue
            }
            #expect(error.message.contains("cut short"), "\(error)")
        }
        let pre41 = MySQLWriter.integer(0, 4) + [UInt8](repeating: 0, count: 28)
        #expect(MySQLHandshakeResponse.parse(pre41) == .failure(MySQLWireError("the client does not speak protocol 4.1")))
        // An auth length running past the end.
        var flags = MySQLCapabilities([.protocol41, .secureConnection])
        flags.insert(.ssl)
        let overrun = MySQLWriter.integer(UInt64(flags.rawValue), 4) + [0, 0, 0, 1, 33] + [UInt8](repeating: 0, count: 23) + [0x61, 0, 200, 1]
        if case .success = MySQLHandshakeResponse.parse(overrun) { Issue.record("overrun parsed") }
    }

    @Test func errorPacketsCarryCodeStateAndMessage() {
        let payload = MySQLReply.accessDenied("access to database db denied")
        #expect(MySQLReply.parse(payload, capabilities: .protocol41) == .error(code: 1045, state: "28000", message: "access to database db denied"))
        #expect(MySQLReply.parse(MySQLReply.okPayload, capabilities: .protocol41) == .ok(MySQLReply.okPayload))
        #expect(MySQLReply.parse([0xFE] + MySQLWriter.nulTerminated("mysql_native_password") + Self.scramble + [0], capabilities: .protocol41)
            == .authSwitch(plugin: "mysql_native_password", data: Self.scramble))
    }

    // MARK: the proxy's side

    @Test func proxyHandshakeRequiresTLSThenReadsTheResponse() {
        var handshake = MySQLServerHandshake(greeting: MySQLServerHandshake.greeting(connectionID: 1, scramble: Self.scramble))
        #expect(handshake.greetingPacket.prefix(4) == [UInt8(handshake.greeting.payload.count), 0, 0, 0])
        let request = MySQLPacket(sequence: 1, payload: Self.sslRequest()).bytes
        let hello: [UInt8] = [0x16, 0x03, 0x01]
        // Byte by byte: nothing until the SSLRequest is whole; the TLS bytes after it are kept.
        for byte in request.dropLast() { #expect(handshake.receive([byte]) == nil) }
        #expect(handshake.receive([request.last ?? 0] + hello) == .startTLS(rest: hello))
        handshake.tlsEstablished()
        let response = MySQLPacket(sequence: 2, payload: Self.clientResponse()).bytes
        for byte in response.dropLast() { #expect(handshake.receive([byte]) == nil) }
        guard case .authenticate(let parsed, let sequence, let rest) = handshake.receive([response.last ?? 0]) else {
            Issue.record("no response")
            return
        }
        #expect(parsed.user == "alice" && parsed.database == "shop" && sequence == 2 && rest.isEmpty)
    }

    @Test(arguments: [
        (MySQLPacket(sequence: 1, payload: clientResponse(ssl: false)).bytes, "over TLS only", UInt8(2)),
        ([0xFF, 0xFF, 0xFF, 0x01], "longer than the limit", UInt8(2)),
        (MySQLPacket(sequence: 1, payload: Array(clientResponse().prefix(40))).bytes, "cut short", UInt8(2)),
        (MySQLPacket(sequence: 1, payload: [UInt8](repeating: 0, count: 32)).bytes, "protocol 4.1", UInt8(2)),
    ])
    func proxyHandshakeRefusals(bytes: [UInt8], reason: String, sequence: UInt8) throws {
        var handshake = MySQLServerHandshake(greeting: MySQLServerHandshake.greeting(connectionID: 1, scramble: Self.scramble))
        guard case .refuse(let reply, let text) = handshake.receive(bytes) else {
            Issue.record("not refused")
            return
        }
        #expect(text.contains(reason), "\(text)")
        guard case .packet(let packet, _) = MySQLPacket.parse(reply, limit: 1 << 20) else {
            Issue.record("the reply is not a packet")
            return
        }
        #expect(packet.sequence == sequence)
        #expect(MySQLReply.parse(packet.payload, capabilities: .protocol41).error?.message.contains(reason) == true)
        #expect(handshake.receive([0]) == nil, "nothing after a refusal")
    }

    // MARK: the database service's side

    static func mariaDBGreeting(_ capabilities: MySQLCapabilities) -> MySQLPacket {
        let greeting = MySQLGreeting(
            serverVersion: "5.5.5-10.11.19-MariaDB", connectionID: 9, authData: scramble, capabilities: capabilities, characterSet: 45)
        return MySQLPacket(sequence: 0, payload: greeting.payload)
    }

    static let server: MySQLCapabilities = MySQLCapabilities.proxyOffered.union([.sessionTrack, .deprecateEOF, .compress, .localFiles])

    @Test func serviceLogsInOverTLSAndFollowsAnAuthSwitch() throws {
        var handshake = MySQLClientHandshake(
            user: "alice", database: "", requested: [.protocol41, .multiResults, .interactive, .connectAttributes], characterSet: 33,
            maxPacketSize: 1 << 24)
        let first = handshake.receive(Self.mariaDBGreeting(Self.server))
        #expect(first.count == 2 && first.last == .startTLS)
        guard case .send(let request) = first.first, case .packet(let packet, _) = MySQLPacket.parse(request, limit: 1 << 20) else {
            Issue.record("no SSLRequest")
            return
        }
        #expect(packet.sequence == 1)
        guard case .sslRequest(let flags) = try MySQLHandshakeResponse.parse(packet.payload).get() else {
            Issue.record("not an SSLRequest")
            return
        }
        #expect(flags.contains([.ssl, .protocol41, .interactive, .multiResults]) && !flags.contains(.connectWithDB))
        #expect(!flags.contains(.deprecateEOF) && !flags.contains(.sessionTrack) && !flags.contains(.connectAttributes))
        let sent = handshake.tlsEstablished()
        guard case .send(let responseBytes)? = sent.first, case .packet(let response, _) = MySQLPacket.parse(responseBytes, limit: 1 << 20),
            case .response(let parsed) = try MySQLHandshakeResponse.parse(response.payload).get()
        else {
            Issue.record("no response")
            return
        }
        #expect(response.sequence == 2 && parsed.user == "alice" && parsed.authResponse.isEmpty)
        // An auth switch is answered with the empty password, then the OK ends the handshake.
        let switchPayload = [0xFE] + MySQLWriter.nulTerminated("mysql_native_password") + Self.scramble + [0]
        #expect(handshake.receive(MySQLPacket(sequence: 3, payload: switchPayload)) == [.send([0, 0, 0, 4])])
        #expect(handshake.receive(MySQLPacket(sequence: 5, payload: MySQLReply.okPayload)) == [.authenticated(okPayload: MySQLReply.okPayload)])
    }

    @Test(arguments: [
        (mariaDBGreeting(server.subtracting(.ssl)), [MySQLPacket](), "does not accept TLS"),
        (mariaDBGreeting(server.subtracting(.multiResults)), [], "lacks capabilities"),
        (MySQLPacket(sequence: 0, payload: MySQLReply.errorPayload(code: 1040, state: "08004", message: "Too many connections")), [], "Too many connections"),
        (mariaDBGreeting(server), [MySQLPacket(sequence: 3, payload: MySQLReply.accessDenied("Access denied for user 'alice'@'localhost'"))], "Access denied for user"),
        (mariaDBGreeting(server), [MySQLPacket(sequence: 3, payload: [0xFE] + MySQLWriter.nulTerminated("client_ed25519") + [1, 2])], "auth plugin client_ed25519"),
        (mariaDBGreeting(server), [MySQLPacket(sequence: 3, payload: [0x01, 0x04])], "asks for a password"),
    ])
    func serviceHandshakeFailures(greeting: MySQLPacket, replies: [MySQLPacket], reason: String) {
        var handshake = MySQLClientHandshake(user: "alice", database: "shop", requested: [.protocol41, .multiResults], characterSet: 33, maxPacketSize: 1 << 24)
        var actions = handshake.receive(greeting)
        if actions.contains(.startTLS) { actions = handshake.tlsEstablished() }
        for reply in replies { actions = handshake.receive(reply) }
        guard case .failed(let text)? = actions.last else {
            Issue.record("not failed: \(actions)")
            return
        }
        #expect(text.contains(reason), "\(text)")
    }
}
