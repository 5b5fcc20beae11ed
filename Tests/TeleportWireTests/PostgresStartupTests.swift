import Testing
import TeleportWire

@Suite("PostgreSQL start-up messages")
struct PostgresStartupTests {
    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    @Test func sslRequestAndStartupRoundTrip() {
        #expect(PostgresStartup.parse(PostgresStartup.sslRequest) == (.sslRequest, 8))
        let message = PostgresStartup.startupMessage([.init("user", "alice"), .init("database", "postgres"), .init("application_name", "psql")])
        let parsed = PostgresStartup.parse(message)
        #expect(parsed.message == .startup([.init("user", "alice"), .init("database", "postgres"), .init("application_name", "psql")]))
        #expect(parsed.consumed == message.count)
        // Split anywhere: more data is needed until the whole message is there.
        for cut in 0..<message.count {
            #expect(PostgresStartup.parse(Array(message.prefix(cut))).message == .needMoreData)
        }
        #expect(PostgresStartup.parse(Self.be32(8) + Self.be32(PostgresStartup.gssEncRequestCode)).message == .gssEncRequest)
    }

    @Test(arguments: [
        (be32(1 << 30) + be32(196_608), "longer than the limit"),
        (be32(4) + be32(196_608), "too short"),
        (be32(16) + be32(0x0002_0000), "protocol version 2.0"),
        (be32(12) + be32(PostgresStartup.sslRequestCode), "an SSLRequest is 8 bytes"),
        (be32(13) + be32(196_608) + [0x75, 0x00, 0x61, 0x00, 0x62], "not NUL-terminated"),
    ])
    func badMessagesAreRefusedAfterTheirHeader(bytes: [UInt8], reason: String) {
        guard case .invalid(let text) = PostgresStartup.parse(bytes).message else {
            Issue.record("not refused: \(bytes.prefix(8))")
            return
        }
        #expect(text.contains(reason), "\(text)")
    }

    @Test func errorResponseIsAFatalBackendMessage() {
        let bytes = PostgresStartup.errorResponse(code: "28000", message: "denied")
        #expect(bytes.first == UInt8(ascii: "E"))
        let length = Int(bytes[1]) << 24 | Int(bytes[2]) << 16 | Int(bytes[3]) << 8 | Int(bytes[4])
        #expect(length == bytes.count - 1)
        #expect(String(decoding: bytes, as: UTF8.self).contains("SFATAL\0"))
        #expect(String(decoding: bytes, as: UTF8.self).contains("Mdenied\0"))
    }
}

@Suite("PostgreSQL frontend scanner")
struct PostgresFrontendScannerTests {
    static func message(_ type: Character, _ body: [UInt8]) -> [UInt8] {
        [UInt8(ascii: type.unicodeScalars.first ?? "?")] + PostgresStartupTests.be32(UInt32(body.count + 4)) + body
    }

    @Test func queriesAndTerminateAcrossAnySplit() {
        let stream = Self.message("Q", Array("SELECT 1".utf8) + [0]) + Self.message("P", [0, 0, 0]) + Self.message("Q", Array("SELECT 2".utf8) + [0])
            + Self.message("X", [])
        for cut in 0...stream.count {
            var scanner = PostgresFrontendScanner()
            let events = scanner.feed(stream.prefix(cut)) + scanner.feed(stream.dropFirst(cut))
            #expect(events == [.query("SELECT 1", truncated: false), .query("SELECT 2", truncated: false), .terminate], "cut \(cut)")
        }
    }

    @Test func aHugeQueryKeepsOnlyItsHead() {
        var scanner = PostgresFrontendScanner()
        let size = 10 * 1024 * 1024
        var events = scanner.feed([UInt8(ascii: "Q")] + PostgresStartupTests.be32(UInt32(size + 5)))
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
        for _ in 0..<10 { events += scanner.feed(chunk) }
        events += scanner.feed([0])
        #expect(events.count == 1)
        guard case .query(let text, let truncated) = events.first else {
            Issue.record("no query: \(events)")
            return
        }
        #expect(truncated && text.utf8.count == PostgresFrontendScanner.maxQueryBytes)
    }

    @Test func aLengthBelowFourEndsTheStream() {
        var scanner = PostgresFrontendScanner()
        let events = scanner.feed([UInt8(ascii: "Q")] + PostgresStartupTests.be32(2) + Array("more".utf8))
        guard case .invalid = events.first else {
            Issue.record("not invalid: \(events)")
            return
        }
        #expect(scanner.feed(Self.message("Q", [0])).isEmpty)
    }
}
