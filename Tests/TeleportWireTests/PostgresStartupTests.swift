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

@Suite("PostgreSQL frontend scanner: extended protocol")
struct PostgresExtendedScannerTests {
    static func cstring(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }
    static func be16(_ value: Int) -> [UInt8] { [UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)] }
    static func parse(_ name: String, _ query: String) -> [UInt8] {
        PostgresFrontendScannerTests.message("P", cstring(name) + cstring(query) + be16(0))
    }
    /// `Bind` with per-parameter formats; a nil value is SQL NULL.
    static func bind(_ portal: String, _ statement: String, formats: [Int], _ values: [[UInt8]?]) -> [UInt8] {
        var body = cstring(portal) + cstring(statement) + be16(formats.count)
        for format in formats { body += be16(format) }
        body += be16(values.count)
        for value in values {
            if let value {
                body += PostgresStartupTests.be32(UInt32(value.count)) + value
            } else {
                body += PostgresStartupTests.be32(UInt32(bitPattern: -1))
            }
        }
        return PostgresFrontendScannerTests.message("B", body + be16(0))
    }
    static func execute(_ portal: String) -> [UInt8] {
        PostgresFrontendScannerTests.message("E", cstring(portal) + PostgresStartupTests.be32(0))
    }
    static let sync = PostgresFrontendScannerTests.message("S", [])

    @Test func parseBindExecuteAcrossAnySplit() {
        let stream = Self.parse("", "SELECT $1::int + $2") + Self.bind("", "", formats: [0, 1], [Array("41".utf8), [0x00, 0x01]])
            + PostgresFrontendScannerTests.message("D", [UInt8(ascii: "P"), 0]) + Self.execute("") + Self.sync
            + Self.bind("", "", formats: [], [nil, Array("7".utf8)]) + Self.execute("") + Self.sync
        let expected: [PostgresFrontendScanner.Event] = [
            .execute("SELECT $1::int + $2", parameters: ["41", "\\x0001"], truncated: false),
            .execute("SELECT $1::int + $2", parameters: [nil, "7"], truncated: false),
        ]
        for cut in 0...stream.count {
            var scanner = PostgresFrontendScanner()
            let events = scanner.feed(stream.prefix(cut)) + scanner.feed(stream.dropFirst(cut))
            #expect(events == expected, "cut \(cut)")
        }
    }

    @Test func binaryParametersOfKnownTypesAreShownAsText() {
        var scanner = PostgresFrontendScanner()
        // Parse with declared types: int4, bool, text, uuid, int8, float8, and an unknown one (bytea).
        let types: [UInt32] = [23, 16, 25, 2950, 20, 701, 17]
        let parse = PostgresFrontendScannerTests.message(
            "P", Self.cstring("t") + Self.cstring("INSERT …") + Self.be16(types.count) + types.flatMap { PostgresStartupTests.be32($0) })
        let uuid: [UInt8] = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]
        let values: [[UInt8]?] = [
            PostgresStartupTests.be32(UInt32(bitPattern: -7)), [1], Array("héllo".utf8), uuid,
            [0, 0, 0, 1, 0, 0, 0, 0], Array(withUnsafeBytes(of: (2.5 as Double).bitPattern.bigEndian) { Array($0) }), [0xde, 0xad],
        ]
        let events = scanner.feed(parse + Self.bind("", "t", formats: [1], values) + Self.execute(""))
        #expect(events == [
            .execute(
                "INSERT …", parameters: ["-7", "t", "héllo", "12345678-9abc-def0-0123-456789abcdef", "4294967296", "2.5", "\\xdead"],
                truncated: false)
        ])
    }

    @Test func namedStatementsPortalsAndClose() {
        var scanner = PostgresFrontendScanner()
        var events = scanner.feed(Self.parse("s1", "SELECT 1") + Self.parse("s2", "SELECT 2"))
        events += scanner.feed(Self.bind("p1", "s2", formats: [], []) + Self.bind("p2", "s1", formats: [], []))
        events += scanner.feed(Self.execute("p1") + Self.execute("p2"))
        #expect(events == [.execute("SELECT 2", parameters: [], truncated: false), .execute("SELECT 1", parameters: [], truncated: false)])
        // Close the statement: a portal bound to it still runs, but its text is no longer known.
        let closed = scanner.feed(PostgresFrontendScannerTests.message("C", [UInt8(ascii: "S")] + Self.cstring("s1")) + Self.execute("p2"))
        guard case .execute(let text, _, let truncated)? = closed.first else {
            Issue.record("no execute: \(closed)")
            return
        }
        #expect(text.contains("s1") && text.contains("no longer kept") && truncated)
        // An Execute of a portal never bound is reported too.
        guard case .execute(let unknown, _, _)? = scanner.feed(Self.execute("nope")).first else {
            Issue.record("no execute for an unknown portal")
            return
        }
        #expect(unknown.contains("nope"))
    }

    @Test func memoryStaysBoundedWithManyStatements() {
        var scanner = PostgresFrontendScanner()
        let text = String(repeating: "x", count: 60_000)
        for index in 0..<200 { _ = scanner.feed(Self.parse("s\(index)", "SELECT '\(text)'")) }
        // The newest is kept; the oldest was forgotten (200 × 60 KB is far above the 1 MiB kept).
        _ = scanner.feed(Self.bind("a", "s199", formats: [], []) + Self.bind("b", "s0", formats: [], []))
        let events = scanner.feed(Self.execute("a") + Self.execute("b"))
        guard events.count == 2, case .execute(let newest, _, let newestCut) = events[0], case .execute(let oldest, _, let oldestCut) = events[1] else {
            Issue.record("\(events.count) events")
            return
        }
        #expect(newest.hasPrefix("SELECT 'xxx") && !newestCut)
        #expect(oldest.contains("no longer kept") && oldestCut)
    }

    @Test func malformedAndOversizedBodies() {
        var scanner = PostgresFrontendScanner()
        // A Bind whose parameter announces more bytes than the body has: reported as cut, not a crash.
        let bad = PostgresFrontendScannerTests.message(
            "B", Self.cstring("") + Self.cstring("") + Self.be16(0) + Self.be16(1) + PostgresStartupTests.be32(1000) + Array("ab".utf8))
        let events = scanner.feed(Self.parse("", "SELECT $1") + bad + Self.execute(""))
        #expect(events == [.execute("SELECT $1", parameters: ["ab"], truncated: true)])
        // A 200 KB text parameter is cut at 4 KiB.
        let big = [UInt8](repeating: UInt8(ascii: "b"), count: 200_000)
        let cut = scanner.feed(Self.bind("", "", formats: [], [big]) + Self.execute(""))
        guard case .execute(_, let parameters, let truncated)? = cut.first else {
            Issue.record("no execute: \(cut)")
            return
        }
        #expect(truncated && (parameters.first??.utf8.count ?? 0) <= 4096)
    }
}
