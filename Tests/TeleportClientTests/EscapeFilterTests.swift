import Testing

@testable import TeleportSSHClient

@Suite("OpenSSH's escape (~.) on standard input")
struct EscapeFilterTests {
    /// Reads fed one after another, and what each leaves to send (nil: disconnect).
    static let cases: [(reads: [String], sent: [String?])] = [
        (["ls\r"], ["ls\r"]),
        (["~."], [nil]),
        (["echo\r~."], [nil]),  // the read holding the escape sends nothing
        (["echo\r", "~", "."], ["echo\r", "", nil]),  // split across reads
        (["a~."], ["a~."]),  // not at a line's start
        (["~~"], ["~"]),
        (["~x"], ["~x"]),
        (["\n~.", "more"], [nil, nil]),
        (["x\n", "~?"], ["x\n", "~?"]),
        (["~~.", "\r~z"], ["~.", "\r~z"]),
    ]

    @Test("table", arguments: 0..<cases.count)
    func table(_ index: Int) {
        let (reads, sent) = Self.cases[index]
        var filter = EscapeFilter()
        var disconnected = false
        for (read, expected) in zip(reads, sent) {
            if disconnected {
                #expect(expected == nil)
                continue
            }
            let kept = filter.filter(Array(read.utf8))
            #expect(kept.map { String(decoding: $0, as: UTF8.self) } == expected, "case \(index), read \(read.debugDescription)")
            if kept == nil { disconnected = true }
        }
    }
}
