import Foundation
import Logging
import TeleportAPI
import TeleportBackendPostgres
import TeleportEvents
import TeleportTestSupport
import Testing

/// The `postgresql://` audit log against a real PostgreSQL 15: several writers (auth servers) share
/// one table, each with its own hash chain; reading returns every writer's events in time order;
/// verification finds an edited, removed or truncated chain.
@Suite("PostgreSQL audit log", .timeLimit(.minutes(3)), .enabled(if: DatabaseServers.postgresAvailable, "PostgreSQL 15 is not installed"))
struct PostgresAuditLogTests {
    static func open(_ server: PostgresBackendServer, _ database: String, chain: String) async throws -> PostgresAuditLog {
        try await PostgresAuditLog.open(uri: server.connString(database: database), chain: chain, logger: Logger(label: "test.audit"))
    }

    static func event(_ name: String, _ index: Int, at time: Date) -> AuditEvent {
        AuditEvent(event: name, code: "T1000I", time: time, fields: ["user": .string("u\(index)")])
    }

    /// Runs SQL in `database` as the superuser (what an attacker with database access could do).
    static func tamper(_ server: PostgresBackendServer, _ database: String, _ sql: String) async throws {
        let result = try await TestSupport.run(
            DatabaseServers.psql,
            ["-h", server.postgres.directory.path, "-p", String(server.port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-tAc", sql])
        try #require(result.exitCode == 0, "\(result)")
    }

    @Test func twoWritersShareOneTableWithAChainEach() async throws {
        let server = try await SharedPostgresBackendServer.instance.server()
        let database = try await server.createDatabase()
        async let openedA = Self.open(server, database, chain: "auth-a")
        async let openedB = Self.open(server, database, chain: "auth-b")
        let (a, b) = try await (openedA, openedB)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for index in 0..<6 {
            try await (index % 2 == 0 ? a : b).emit(Self.event("user.login", index, at: start.addingTimeInterval(Double(index))))
        }
        // Either writer reads everyone's events, in time order, without the chain's fields.
        let read = try await b.events(from: start, to: start.addingTimeInterval(60))
        #expect(read.map { $0.fields["user"] } == (0..<6).map { .string("u\($0)") })
        #expect(read.allSatisfy { $0.fields["hash"] == nil && $0.fields["prev_hash"] == nil })
        #expect(try await a.events(from: start.addingTimeInterval(2), to: start.addingTimeInterval(3)).count == 2)

        let headA = try #require(try await a.chainHead())
        #expect(headA.file == "postgresql/auth-a" && headA.lines == 3)
        let report = try await a.verifyChain(from: nil, to: nil, checkpoints: [AuditChain.Checkpoint(head: headA, time: start, signature: "")])
        #expect(report.ok && report.files == 2 && report.events == 6 && report.checkpoints == 1, "\(report)")

        // A writer opened again continues its chain.
        await a.close()
        let again = try await Self.open(server, database, chain: "auth-a")
        try await again.emit(Self.event("user.login", 6, at: start.addingTimeInterval(6)))
        #expect(try await again.chainHead()?.lines == 4)
        #expect(try await again.verifyChain(from: nil, to: nil, checkpoints: []).ok)
        await again.close()
        await b.close()
    }

    @Test func anEditedRemovedOrTruncatedChainIsFound() async throws {
        let server = try await SharedPostgresBackendServer.instance.server()
        let database = try await server.createDatabase()
        let log = try await Self.open(server, database, chain: "auth-a")
        defer { Task { await log.close() } }
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for index in 0..<4 { try await log.emit(Self.event("user.login", index, at: start.addingTimeInterval(Double(index)))) }
        let head = try #require(try await log.chainHead())
        let checkpoint = AuditChain.Checkpoint(head: head, time: start, signature: "")
        #expect(try await log.verifyChain(from: nil, to: nil, checkpoints: [checkpoint]).ok)

        // An edited event (its user changed in place).
        try await Self.tamper(
            server, database,
            "UPDATE teleport_audit SET line = convert_to(replace(convert_from(line, 'UTF8'), '\"u1\"', '\"uX\"'), 'UTF8') WHERE seq = 2")
        var report = try await log.verifyChain(from: nil, to: nil, checkpoints: [checkpoint])
        #expect(!report.ok && report.problem == "postgresql/auth-a event 2 was edited (its content does not match its hash)", "\(report)")

        // A removed event.
        try await Self.tamper(server, database, "DELETE FROM teleport_audit WHERE seq = 2")
        report = try await log.verifyChain(from: nil, to: nil, checkpoints: [checkpoint])
        #expect(!report.ok && report.problem == "postgresql/auth-a: events 2 to 2 were removed", "\(report)")

        // The last events removed: only the checkpoint can tell.
        try await Self.tamper(server, database, "DELETE FROM teleport_audit WHERE seq >= 2")
        report = try await log.verifyChain(from: nil, to: nil, checkpoints: [])
        #expect(report.ok, "without a checkpoint a truncated chain looks whole: \(report)")
        report = try await log.verifyChain(from: nil, to: nil, checkpoints: [checkpoint])
        #expect(!report.ok && (report.problem ?? "").contains("postgresql/auth-a is truncated: it has 1 events but held 4"), "\(report)")
    }

    @Test func concurrentEventsKeepOneUnbrokenChain() async throws {
        let server = try await SharedPostgresBackendServer.instance.server()
        let database = try await server.createDatabase()
        let log = try await Self.open(server, database, chain: "auth-a")
        defer { Task { await log.close() } }
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<50 {
                group.addTask { try await log.emit(Self.event("user.login", index, at: start.addingTimeInterval(Double(index)))) }
            }
            try await group.waitForAll()
        }
        #expect(try await log.chainHead()?.lines == 50)
        let report = try await log.verifyChain(from: nil, to: nil, checkpoints: [])
        #expect(report.ok && report.events == 50, "\(report)")
    }

    @Test func searchesFilterAndPageInTheDatabase() async throws {
        let server = try await SharedPostgresBackendServer.instance.server()
        let database = try await server.createDatabase()
        let log = try await Self.open(server, database, chain: "auth-a")
        defer { Task { await log.close() } }
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for index in 0..<10 {
            var event = Self.event(index % 3 == 0 ? "session.start" : "user.login", index % 2, at: start.addingTimeInterval(Double(index)))
            if index % 3 == 0 { event.fields["sid"] = .string("sid-\(index)") }
            try await log.emit(event)
        }
        let end = start.addingTimeInterval(60)
        let all = try await log.search(from: start, to: end, types: [], user: nil, sessionID: nil, limit: 100, offset: 0)
        #expect(all.events.count == 10 && !all.more)
        let first = try await log.search(from: start, to: end, types: [], user: nil, sessionID: nil, limit: 4, offset: 0)
        let second = try await log.search(from: start, to: end, types: [], user: nil, sessionID: nil, limit: 4, offset: 4)
        let last = try await log.search(from: start, to: end, types: [], user: nil, sessionID: nil, limit: 4, offset: 8)
        #expect(first.more && second.more && !last.more)
        #expect((first.events + second.events + last.events).map(\.uid) == all.events.map(\.uid))
        let starts = try await log.search(from: start, to: end, types: ["session.start"], user: nil, sessionID: nil, limit: 100, offset: 0)
        #expect(starts.events.count == 4 && starts.events.allSatisfy { $0.event == "session.start" })
        let byUser = try await log.search(from: start, to: end, types: [], user: "u1", sessionID: nil, limit: 100, offset: 0)
        #expect(byUser.events.count == 5 && byUser.events.allSatisfy { $0.fields["user"] == .string("u1") })
        let bySession = try await log.search(from: start, to: end, types: [], user: nil, sessionID: "sid-6", limit: 100, offset: 0)
        #expect(bySession.events.count == 1 && bySession.events.first?.fields["sid"] == .string("sid-6"))
        let window = try await log.search(
            from: start.addingTimeInterval(2), to: start.addingTimeInterval(4), types: [], user: nil, sessionID: nil, limit: 100, offset: 0)
        #expect(window.events.count == 3)
        #expect(window.events.allSatisfy { $0.fields["hash"] == nil && $0.fields["prev_hash"] == nil })
    }

    @Test func aBadURIIsOneLineNamingTheKey() async throws {
        await #expect {
            _ = try await PostgresAuditLog.open(uri: "postgresql://nohost", chain: "a", logger: Logger(label: "test.audit"))
        } throws: { error in
            "\(error)".contains("teleport.storage.audit_events_uri")
        }
    }
}
