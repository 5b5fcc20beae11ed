import Testing
import TeleportWire

/// `COM_STMT_EXECUTE` parameters: the binary values as text, the null bitmap, types bound once
/// and reused, answers to prepares split anywhere, and the bounds.
@Suite("MySQL prepared statements")
struct MySQLPreparedStatementsTests {
    /// An execute body (after the command byte): id, flags 0, iteration count 1, bitmap, bound flag, types, values.
    static func body(id: UInt32 = 1, nulls: [UInt8], bound: Bool, types: [UInt16] = [], values: [UInt8] = []) -> [UInt8] {
        var bytes = [UInt8(id & 0xFF), UInt8(id >> 8 & 0xFF), UInt8(id >> 16 & 0xFF), UInt8(id >> 24), 0, 1, 0, 0, 0] + nulls
        bytes.append(bound ? 1 : 0)
        for type in types { bytes += [UInt8(type & 0xFF), UInt8(type >> 8)] }
        return bytes + values
    }

    static func lenenc(_ text: String) -> [UInt8] { [UInt8(text.utf8.count)] + Array(text.utf8) }

    /// One value of each kind, alone: its type (0x8000: unsigned), its bytes, its text.
    static let values: [(UInt16, [UInt8], String?)] = [
        (0x01, [0xFF], "-1"), (0x8001, [0xFF], "255"), (0x02, [0x39, 0x30], "12345"), (0x02, [0xFE, 0xFF], "-2"),
        (0x03, [0x2A, 0, 0, 0], "42"), (0x03, [0xFF, 0xFF, 0xFF, 0xFF], "-1"), (0x8003, [0xFF, 0xFF, 0xFF, 0xFF], "4294967295"),
        (0x08, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], "9223372036854775807"),
        (0x8008, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], "18446744073709551615"), (0x0D, [0xE8, 0x07], "2024"),
        (0x04, [0x00, 0x00, 0xC0, 0x3F], "1.5"), (0x05, [0, 0, 0, 0, 0, 0, 0x04, 0x40], "2.5"),
        (0x0A, [4, 0xE8, 0x07, 2, 29], "2024-02-29"), (0x0C, [7, 0xE8, 0x07, 2, 29, 13, 5, 9], "2024-02-29 13:05:09"),
        (0x07, [11, 0xE8, 0x07, 2, 29, 13, 5, 9, 0x7B, 0, 0, 0], "2024-02-29 13:05:09.000123"), (0x0C, [0], "0000-00-00 00:00:00"),
        (0x0B, [8, 1, 1, 0, 0, 0, 2, 3, 4], "-26:03:04"), (0x0B, [0], "00:00:00"),
        (0xFD, lenenc("héllo"), "héllo"), (0xFE, lenenc(""), ""), (0xF6, lenenc("3.14"), "3.14"), (0xFC, [2, 0xFF, 0x00], "\\xff00"),
        (0x06, [], nil),
    ]

    @Test(arguments: values.indices)
    func eachTypeAsText(index: Int) {
        let (type, bytes, text) = Self.values[index]
        let decoded = MySQLBinaryParameters.decode(body: Self.body(nulls: [0], bound: true, types: [type], values: bytes), count: 1, previousTypes: nil)
        #expect(decoded == MySQLBinaryParameters(values: [text], types: [type], complete: true))
    }

    @Test func nullBitmapSkipsValuesAndTypesAreReused() {
        // Nine parameters: the bitmap takes two bytes; the first and the ninth are NULL.
        let types = [UInt16](repeating: 0x03, count: 9)
        let values: [UInt8] = (2...8).flatMap { (n: Int) -> [UInt8] in [UInt8(n), 0, 0, 0] }
        let first = MySQLBinaryParameters.decode(body: Self.body(nulls: [0x01, 0x01], bound: true, types: types, values: values), count: 9, previousTypes: nil)
        #expect(first.complete && first.values == [nil, "2", "3", "4", "5", "6", "7", "8", nil])
        // The next execute binds no types: the statement's last ones are used.
        let again = MySQLBinaryParameters.decode(body: Self.body(nulls: [0, 0], bound: false, values: (1...9).flatMap { (n: Int) -> [UInt8] in [UInt8(n), 0, 0, 0] }), count: 9, previousTypes: first.types)
        #expect(again.complete && again.values == (1...9).map { String($0) })
        let unknown = MySQLBinaryParameters.decode(body: Self.body(nulls: [0, 0], bound: false, values: [1, 0, 0, 0]), count: 9, previousTypes: nil)
        #expect(!unknown.complete && unknown.values.allSatisfy { $0 == nil })
    }

    @Test func cutShortOrUnknownTypesAreIncompleteNeverACrash() {
        let whole = Self.body(nulls: [0], bound: true, types: [0x03, 0xFD], values: [42, 0, 0, 0] + Self.lenenc("abc"))
        for cut in 0..<whole.count {
            let decoded = MySQLBinaryParameters.decode(body: Array(whole[..<cut]), count: 2, previousTypes: nil)
            #expect(!decoded.complete, "cut at \(cut)")
        }
        #expect(MySQLBinaryParameters.decode(body: whole, count: 2, previousTypes: nil).values == ["42", "abc"])
        let odd = MySQLBinaryParameters.decode(body: Self.body(nulls: [0], bound: true, types: [0x03, 0x42], values: [42, 0, 0, 0, 9]), count: 2, previousTypes: nil)
        #expect(odd == MySQLBinaryParameters(values: ["42", nil], types: [0x03, 0x42], complete: false))
        let long = MySQLBinaryParameters.decode(body: Self.body(nulls: [0], bound: true, types: [0xFD], values: [0xFC, 0x10, 0x27] + [UInt8](repeating: 0x61, count: 10_000)), count: 1, previousTypes: nil)
        #expect(long.values.first??.utf8.count == MySQLBinaryParameters.maxValueBytes)
    }

    /// The database's answer to a prepare, then a column definition and an EOF, fed split at every point.
    @Test func prepareAnswersAreFoundAtEverySplitPoint() {
        let ok = MySQLPacket(sequence: 1, payload: [0, 7, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0]).bytes
        let rest = MySQLPacket(sequence: 2, payload: [UInt8](repeating: 0x41, count: 40)).bytes + MySQLPacket(sequence: 3, payload: [0xFE, 0, 0, 2, 0]).bytes
        let error = MySQLPacket(sequence: 1, payload: [0xFF, 0x28, 0x04] + Array("#42000syntax".utf8)).bytes
        let stream = ok + rest + error
        for cut in 0...stream.count {
            var scanner = MySQLBackendScanner()
            scanner.expectPrepareResponse()
            scanner.expectPrepareResponse()
            let events = scanner.feed(stream[..<cut]) + scanner.feed(stream[cut...])
            #expect(events == [.prepared(statementID: 7, parameters: 2), .prepareFailed], "cut at \(cut)")
        }
        // Nothing expected: a 12-byte packet with sequence 1 is a row, not an answer.
        var idle = MySQLBackendScanner()
        #expect(idle.feed(ok).isEmpty)
    }

    @Test func executionsCarryTheTextAndParameters() {
        var statements = MySQLPreparedStatements()
        statements.preparing("SELECT ? + ?", truncated: false)
        statements.preparing("SELECT nonsense(", truncated: false)
        statements.answered(.prepared(statementID: 5, parameters: 2))
        statements.answered(.prepareFailed)
        let body = Self.body(id: 5, nulls: [0x02], bound: true, types: [0x08, 0x08], values: [41, 0, 0, 0, 0, 0, 0, 0])
        #expect(statements.execute(5, body: body, truncated: false) == .init(text: "SELECT ? + ?", parameters: ["41", nil], truncated: false))
        // MariaDB's "last prepared" id.
        #expect(statements.execute(0xFFFF_FFFF, body: body, truncated: false).text == "SELECT ? + ?")
        statements.closed(5)
        let forgotten = statements.execute(5, body: body, truncated: false)
        #expect(forgotten.truncated && forgotten.text.contains("not seen"))
    }

    @Test func statementTextIsBounded() {
        var statements = MySQLPreparedStatements()
        let text = String(repeating: "x", count: 64 * 1024)
        for id in 0..<40 as Range<UInt32> {
            statements.preparing(text, truncated: false)
            statements.answered(.prepared(statementID: id, parameters: 0))
        }
        #expect(statements.count == 16)
        #expect(statements.execute(0, body: [], truncated: false).truncated)
        #expect(statements.execute(39, body: [], truncated: false) == .init(text: text, parameters: [], truncated: false))
    }
}
