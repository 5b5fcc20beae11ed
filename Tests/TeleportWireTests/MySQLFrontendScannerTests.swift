import Testing
import TeleportWire

/// The client's commands after the handshake, split at every point, continued over full-size
/// packets, and bounded however long a statement is.
@Suite("MySQL frontend scanner")
struct MySQLFrontendScannerTests {
    static func command(_ byte: UInt8, _ body: [UInt8], sequence: UInt8 = 0) -> [UInt8] {
        MySQLPacket(sequence: sequence, payload: [byte] + body).bytes
    }

    static let session: [UInt8] =
        command(0x03, Array("SELECT 1".utf8)) + command(0x16, Array("SELECT ? + 1".utf8))
        + command(0x17, [7, 0, 0, 0, 0, 1, 0, 0, 0]) + command(0x0E, []) + command(0x03, Array("SELECT 'é'".utf8)) + command(0x01, [])

    static let events: [MySQLFrontendScanner.Event] = [
        .query("SELECT 1", truncated: false), .prepare("SELECT ? + 1", truncated: false), .execute(statementID: 7, body: [7, 0, 0, 0, 0, 1, 0, 0, 0], truncated: false),
        .query("SELECT 'é'", truncated: false), .quit,
    ]

    @Test func everySplitPointGivesTheSameCommands() {
        var whole = MySQLFrontendScanner()
        #expect(whole.feed(Self.session) == Self.events)
        for cut in 1..<Self.session.count {
            var scanner = MySQLFrontendScanner()
            let events = scanner.feed(Self.session[..<cut]) + scanner.feed(Self.session[cut...])
            #expect(events == Self.events, "split at \(cut)")
        }
        var bytewise = MySQLFrontendScanner()
        #expect(Self.session.flatMap { bytewise.feed([$0]) } == Self.events)
    }

    @Test func packetsThatAreNotCommandsAreIgnored() {
        // A sequence id other than 0 starts no command (auth data, LOAD DATA contents).
        var scanner = MySQLFrontendScanner()
        #expect(scanner.feed(Self.command(0x03, Array("not a query".utf8), sequence: 3) + MySQLPacket(sequence: 0, payload: []).bytes).isEmpty)
        #expect(scanner.feed(Self.command(0x11, Array("root".utf8) + [0])) == [.changeUser])
    }

    @Test func aQueryOverFullSizePacketsContinuesAndIsCut() {
        // 16 MB - 1 of query in the first packet, 10 bytes more in the second.
        var scanner = MySQLFrontendScanner()
        var events: [MySQLFrontendScanner.Event] = []
        let first = [UInt8(0xFF), 0xFF, 0xFF, 0x00, 0x03]
        events += scanner.feed(first)
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
        var left = MySQLPacket.maxPayload - 1
        while left > 0 {
            let count = min(left, chunk.count)
            events += scanner.feed(chunk[..<count])
            left -= count
        }
        #expect(events.isEmpty)
        events += scanner.feed([10, 0, 0, 1] + [UInt8](repeating: UInt8(ascii: "y"), count: 10))
        guard case .query(let text, let truncated) = events.first, events.count == 1 else {
            Issue.record("\(events.count) events")
            return
        }
        #expect(truncated && text.utf8.count == MySQLFrontendScanner.maxStatementBytes && text.hasPrefix("xxx"))
        #expect(scanner.feed(Self.command(0x03, Array("SELECT 2".utf8))) == [.query("SELECT 2", truncated: false)])
    }

    @Test(.timeLimit(.minutes(1)))
    func aOneGigabyteQueryCostsBoundedMemory() {
        // 64 full-size packets and an empty one: 1 GB of query text, fed 1 MiB at a time.
        var scanner = MySQLFrontendScanner()
        let chunk = [UInt8](repeating: UInt8(ascii: "z"), count: 1 << 20)
        var events: [MySQLFrontendScanner.Event] = []
        for index in 0..<64 {
            var left = MySQLPacket.maxPayload
            events += scanner.feed([0xFF, 0xFF, 0xFF, UInt8(index)] + (index == 0 ? [0x03] : []))
            if index == 0 { left -= 1 }
            while left > 0 {
                let count = min(left, chunk.count)
                events += scanner.feed(chunk[..<count])
                left -= count
            }
        }
        #expect(events.isEmpty)
        events += scanner.feed([0, 0, 0, 64])
        #expect(events == [.query(String(repeating: "z", count: MySQLFrontendScanner.maxStatementBytes), truncated: true)])
    }
}
