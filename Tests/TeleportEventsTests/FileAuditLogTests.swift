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
        #expect(try await log.events(on: dayOne) == [start, try AuditEvent(jsonLine: Data(lines[1].utf8))])
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
