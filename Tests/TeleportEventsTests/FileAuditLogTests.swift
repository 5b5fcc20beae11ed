import Foundation
import TeleportAPI
import TeleportEvents
import TeleportTestSupport
import Testing

@Suite("file audit log")
struct FileAuditLogTests {
    @Test("events land in one JSON-lines file per UTC day, named as the seed shows, mode 0640")
    func dayFiles() async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "audit")
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = try FileAuditLog(directory: directory.appendingPathComponent("log"))
        let dayOne = try #require(RFC3339.parse("2017-02-03T06:54:05Z"))
        let lateDayOne = try #require(RFC3339.parse("2017-02-03T23:59:59Z"))
        let dayTwo = try #require(RFC3339.parse("2017-02-04T00:00:00Z"))
        let start = AuditEvent(
            event: "session.start", code: "T2000I", time: dayOne,
            fields: ["user": "joe", "login": "root", "addr.remote": "73.223.221.14:42146", "server_labels": .object(["env": "prod"])])
        try await log.emit(start)
        try await log.emit(AuditEvent(event: "session.end", code: "T2004I", time: lateDayOne))
        try await log.emit(AuditEvent(event: "user.login", code: "T1000I", time: dayTwo, fields: ["success": true]))

        let files = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("log").path).sorted()
        #expect(files == ["2017-02-03.00:00:00.log", "2017-02-04.00:00:00.log"])
        let path = directory.appendingPathComponent("log/2017-02-03.00:00:00.log").path
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o640)

        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        let first = try #require(JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(first["event"] as? String == "session.start")
        #expect(first["code"] as? String == "T2000I")
        #expect(first["time"] as? String == "2017-02-03T06:54:05Z")
        #expect(first["addr.remote"] as? String == "73.223.221.14:42146")
        #expect((first["uid"] as? String).flatMap(UUID.init(uuidString:)) != nil)
        let read = try await log.events(on: dayOne)
        #expect(read.count == 2 && read.first == start && read.last?.event == "session.end", "the chain's fields are not the events'")
        #expect(first["prev_hash"] as? String == "" && (first["hash"] as? String)?.count == 64)
        let second = try #require(JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
        #expect(second["prev_hash"] as? String == first["hash"] as? String)
    }

    /// Writes `count` events on one day and returns the log directory and the day file's path.
    func chain(_ count: Int) async throws -> (URL, String, FileAuditLog) {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "chain")
        let log = try FileAuditLog(directory: directory)
        let day = try #require(RFC3339.parse("2026-11-21T10:00:00Z"))
        for index in 0..<count {
            try await log.emit(AuditEvent(event: "exec", code: "T3002I", time: day.addingTimeInterval(Double(index)), fields: ["user": "joe", "n": .int(index)]))
        }
        return (directory, directory.appendingPathComponent("2026-11-21.00:00:00.log").path, log)
    }

    func verify(_ directory: URL, _ checkpoints: [AuditChain.Checkpoint] = []) -> AuditChain.Report {
        AuditChain.verify(directory: directory, fromFile: "0000", toFile: "9999", checkpoints: checkpoints)
    }

    func rewrite(_ path: String, _ change: (inout [String]) -> Void) throws {
        var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        change(&lines)
        try (lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")).write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test("the hash chain: an untouched log passes; an edited, removed or reordered line and a truncated file are found")
    func hashChain() async throws {
        let (directory, path, log) = try await chain(6)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ok = verify(directory)
        #expect(ok.ok && ok.events == 6 && ok.problem == nil, "\(ok)")
        let head = try #require(await log.head())
        #expect(head.lines == 6)
        let checkpoint = AuditChain.Checkpoint(head: head, time: Date(), signature: "")
        #expect(verify(directory, [checkpoint]).ok)
        let original = try String(contentsOfFile: path, encoding: .utf8)

        try rewrite(path) { $0[2] = $0[2].replacingOccurrences(of: "\"joe\"", with: "\"bob\"") }
        let edited = verify(directory)
        #expect(!edited.ok && (edited.problem ?? "").contains("line 3 was edited"), "\(edited)")

        try original.write(toFile: path, atomically: true, encoding: .utf8)
        try rewrite(path) { $0.remove(at: 3) }
        let removed = verify(directory)
        #expect(!removed.ok && (removed.problem ?? "").contains("line 4: an event before it was removed"), "\(removed)")

        try original.write(toFile: path, atomically: true, encoding: .utf8)
        try rewrite(path) { $0.swapAt(1, 2) }
        let reordered = verify(directory)
        #expect(!reordered.ok && (reordered.problem ?? "").contains("reordered"), "\(reordered)")

        // The last two lines removed: the chain itself still holds, the signed checkpoint does not.
        try original.write(toFile: path, atomically: true, encoding: .utf8)
        try rewrite(path) { $0.removeLast(2) }
        #expect(verify(directory).ok, "without a checkpoint a cut at the end cannot be seen")
        let truncated = verify(directory, [checkpoint])
        #expect(!truncated.ok && (truncated.problem ?? "").contains("is truncated: it has 4 events but held 6"), "\(truncated)")

        // A line cut in the middle of writing.
        try original.write(toFile: path, atomically: true, encoding: .utf8)
        try String(original.dropLast(10)).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(!verify(directory).ok)
    }

    @Test("the chain continues across day files and across a restart; a removed day file is found")
    func chainAcrossDays() async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "chain-days")
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try FileAuditLog(directory: directory)
        for day in 1...3 {
            let time = try #require(RFC3339.parse("2026-11-0\(day)T10:00:00Z"))
            try await first.emit(AuditEvent(event: "exec", code: "T3002I", time: time))
        }
        let restarted = try FileAuditLog(directory: directory)
        try await restarted.emit(AuditEvent(event: "exec", code: "T3002I", time: try #require(RFC3339.parse("2026-11-04T10:00:00Z"))))
        #expect(verify(directory).ok && verify(directory).files == 4, "\(verify(directory))")
        try FileManager.default.removeItem(at: directory.appendingPathComponent("2026-11-02.00:00:00.log"))
        let gap = verify(directory)
        #expect(!gap.ok && (gap.problem ?? "").contains("2026-11-03.00:00:00.log line 1: events are missing before it"), "\(gap)")
    }

    @Test("a log directory that cannot be created is a clear error")
    func unwritable() throws {
        #expect(throws: TeleportError.self) {
            _ = try FileAuditLog(directory: URL(fileURLWithPath: "/proc/no-such-audit-dir"))
        }
    }

    @Test("a fan-out emitter reaches every sink and reports a failing one")
    func fanOut() async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "audit2")
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try FileAuditLog(directory: directory.appendingPathComponent("a"))
        let second = try FileAuditLog(directory: directory.appendingPathComponent("b"))
        let event = AuditEvent(event: "exec", code: "T3002I", time: Date(timeIntervalSince1970: 1_800_000_000))
        try await MultiEmitter([first, second]).emit(event)
        #expect(try await first.events(on: event.time) == [event])
        #expect(try await second.events(on: event.time) == [event])

        try FileManager.default.removeItem(at: directory.appendingPathComponent("b"))
        try TestSupport.write("not a directory", to: directory.appendingPathComponent("b"))
        let broken = try FileAuditLog(directory: directory.appendingPathComponent("c"))
        try FileManager.default.removeItem(at: directory.appendingPathComponent("c"))
        try TestSupport.write("blocked", to: directory.appendingPathComponent("c"))
        let later = AuditEvent(event: "exec", code: "T3002I", time: event.time.addingTimeInterval(86400))
        await #expect(throws: TeleportError.self) { try await MultiEmitter([first, broken]).emit(later) }
        #expect(try await first.events(on: later.time) == [later], "the healthy sink still gets the event")
    }
}
