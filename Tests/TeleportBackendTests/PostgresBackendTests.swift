import Foundation
import Logging
import TeleportAPI
import TeleportBackend
import TeleportBackendPostgres
import TeleportTestSupport
import Testing

/// `teleport.storage.conn_string` parsing: pure, no server.
@Suite("PostgreSQL conn_string")
struct PostgresSettingsTests {
    @Test func defaultsFollowLibpq() throws {
        let settings = try PostgresSettings.parse("postgresql://teleport@db.example.com/teleport_backend", home: nil)
        #expect(settings.host == "db.example.com")
        #expect(settings.port == 5432)
        #expect(settings.user == "teleport")
        #expect(settings.database == "teleport_backend")
        #expect(settings.sslMode == .prefer)
        #expect(settings.password == nil)
        #expect(settings.poolMaxConns == 20)
        let noDatabase = try PostgresSettings.parse("postgres://joe:secret@[::1]:6432", home: nil)
        #expect(noDatabase.database == "joe")
        #expect(noDatabase.port == 6432)
        #expect(noDatabase.host == "::1")
        #expect(noDatabase.password == "secret")
        #expect(!noDatabase.displayName.contains("secret"))
    }

    @Test func certificateParameters() throws {
        let settings = try PostgresSettings.parse(
            "postgresql://teleport@db:5433/tb?sslmode=verify-full&sslrootcert=/ca.pem&sslcert=/c.crt&sslkey=/c.key&pool_max_conns=5&connect_timeout=3",
            home: nil)
        #expect(settings.sslMode == .verifyFull)
        #expect(settings.sslRootCert == "/ca.pem")
        #expect(settings.sslCert == "/c.crt")
        #expect(settings.sslKey == "/c.key")
        #expect(settings.poolMaxConns == 5)
        #expect(settings.connectTimeout == .seconds(3))
    }

    @Test(arguments: [
        ("mysql://teleport@db/tb", "is not a postgresql:// URL"),
        ("postgresql:///tb", "names no host"),
        ("postgresql://db/tb", "names no user"),
        ("postgresql://teleport@db/a/b", "is not a database name"),
        ("postgresql://teleport@db/tb?sslmode=maybe", "sslmode=maybe is not one of"),
        ("postgresql://teleport@db/tb?sslmode=verify-full", "needs sslrootcert"),
        ("postgresql://teleport@db/tb?sslcert=/c.crt", "give both sslcert and sslkey"),
        ("postgresql://teleport@db/tb?pool_size=3", "unknown parameter \"pool_size\""),
        ("postgresql://teleport@db/tb?pool_max_conns=1", "pool_max_conns=1 is not a number of at least 2"),
        ("postgresql://teleport@db/tb?connect_timeout=soon", "connect_timeout=soon"),
        ("postgresql://teleport@db/tb?passfile=/nonexistent/pgpass", "passfile=/nonexistent/pgpass cannot be read"),
    ])
    func badConnStringsAreOneLineErrors(connString: String, expected: String) {
        do {
            _ = try PostgresSettings.parse(connString, home: nil)
            Issue.record("\(connString) was accepted")
        } catch let error as TeleportError {
            #expect(error.code == .badParameter)
            #expect(error.message.contains(expected), "\(error.message)")
            #expect(error.message.contains("teleport.storage.conn_string"), "\(error.message)")
            #expect(!error.message.contains("\n"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func passwordFromPassfile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pgpass-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try "# comment\nother:5432:*:teleport:wrong\ndb:*:tb:teleport:pa\\:ss\n".write(to: file, atomically: true, encoding: .utf8)
        let settings = try PostgresSettings.parse("postgresql://teleport@db/tb?passfile=\(file.path)", home: nil)
        #expect(settings.password == "pa:ss")
    }
}

/// The PostgreSQL backend against a real server: several clients on one database, resets, errors.
@Suite("PostgreSQL backend", .timeLimit(.minutes(3)), .enabled(if: DatabaseServers.postgresAvailable, "PostgreSQL 15 is not installed"))
struct PostgresBackendTests {
    static func options() -> PostgresBackend.Options {
        var options = PostgresBackend.Options()
        options.pollInterval = .milliseconds(200)
        return options
    }

    static func open(_ server: PostgresBackendServer, _ database: String, clock: any WallClock = ManualClock()) async throws -> PostgresBackend {
        try await PostgresBackend.open(
            connString: server.connString(database: database), clock: clock, options: options(), logger: Logger(label: "test.pg"))
    }

    @Test func twoBackendsOnOneDatabaseSeeEachOthersWritesThroughWatches() async throws {
        let server = try await SharedPostgresBackendServer.instance.server()
        let database = try await server.createDatabase()
        // Opened together: the schema is created once, under the advisory lock.
        async let first = Self.open(server, database)
        async let second = Self.open(server, database)
        let (a, b) = try await (first, second)
        let watchA = try await a.watch(prefix: "/shared/")
        let watchB = try await b.watch(prefix: "/shared/")
        let one = try await a.put(Item(key: "/shared/1", value: Data("from a".utf8)))
        let two = try await b.put(Item(key: "/shared/2", value: Data("from b".utf8)))
        try await b.delete("/shared/1")
        let expected: [BackendEvent] = [.put(one), .put(two), .delete(key: "/shared/1")]
        #expect(await collect(3, from: watchA) == expected)
        #expect(await collect(3, from: watchB) == expected)
        #expect(try await a.get("/shared/2") == two)

        // Compare-and-swap contended from both clients: every increment lands once.
        try await a.put(Item(key: "/shared/counter", value: Data("0".utf8)))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for backend in [a, b] {
                for _ in 0..<10 {
                    group.addTask {
                        while true {
                            let current = try await backend.get("/shared/counter")
                            let count = Int(String(decoding: current.value, as: UTF8.self)) ?? -1000
                            do {
                                try await backend.compareAndSwap(expected: current, replacement: Item(key: current.key, value: Data("\(count + 1)".utf8)))
                                return
                            } catch let error as TeleportError where error.code == .compareFailed {
                                continue
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(String(decoding: try await b.get("/shared/counter").value, as: UTF8.self) == "20")
        try await a.close()
        try await b.close()
    }

    @Test func expiryIsSeenByAnotherClientsWatcher() async throws {
        let server = try await SharedPostgresBackendServer.instance.server()
        let database = try await server.createDatabase()
        let clock = ManualClock()
        let a = try await Self.open(server, database, clock: clock)
        let b = try await Self.open(server, database, clock: clock)
        let watch = try await b.watch(prefix: "/hb/")
        let stored = try await a.put(Item(key: "/hb/node", value: Data("x".utf8), expires: clock.now().addingTimeInterval(30)))
        clock.advance(by: 31)
        await expectTeleportError(.notFound) { _ = try await b.get("/hb/node") }
        #expect(try await a.sweepExpired() == 1)
        #expect(await collect(2, from: watch) == [.put(stored), .delete(key: "/hb/node")])
        try await a.close()
        try await b.close()
    }

    @Test func aWatcherBehindPrunedEventsGetsAResetThenFollows() async throws {
        let server = try await SharedPostgresBackendServer.instance.server()
        let database = try await server.createDatabase()
        let backend = try await Self.open(server, database)
        let writer = try await Self.open(server, database)
        let watch = try await backend.watch(prefix: "/")
        backend.pauseFeed()
        for index in 0..<3 { try await writer.put(Item(key: "/missed/\(index)", value: Data())) }
        #expect(try await writer.pruneEvents(through: try await writer.headEventID()) == 3)
        try await backend.pollNow()
        let after = try await writer.put(Item(key: "/after", value: Data("seen".utf8)))
        try await backend.pollNow()
        #expect(await collect(2, from: watch) == [.reset, .put(after)])
        // Time-based pruning keeps recent events.
        #expect(try await writer.pruneEvents() == 0)
        try await writer.close()
        try await backend.close()
    }

    /// PostgreSQL stopped at once and started again under a watch: writes fail with a retryable
    /// error meanwhile, then succeed, and the watcher (on another client) sees them with nothing lost.
    @Test func aStoreRestartMidWatchLosesNothing() async throws {
        try await PostgresBackendServer.with { server in
            let database = try await server.createDatabase()
            let watcher = try await Self.open(server, database)
            let writer = try await Self.open(server, database)
            let watch = try await watcher.watch(prefix: "/r/")
            let before = try await writer.put(Item(key: "/r/before", value: Data("1".utf8)))
            #expect(await collect(1, from: watch) == [.put(before)])
            try await server.postgres.restartImmediately()
            var written: [Item] = []
            var failures: [TeleportError.Code] = []
            let deadline = ContinuousClock.now + .seconds(30)
            while written.count < 3, ContinuousClock.now < deadline {
                do {
                    written.append(try await writer.put(Item(key: "/r/after\(written.count)", value: Data("2".utf8))))
                } catch let error as TeleportError {
                    failures.append(error.code)
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            #expect(written.count == 3)
            #expect(failures.allSatisfy { $0 == .connectionProblem }, "\(failures)")
            #expect(await collect(3, from: watch, timeout: .seconds(30)) == written.map { .put($0) })
            try await watcher.close()
            try await writer.close()
        }
    }

    @Test func connectionFailuresAreOneLineErrorsNamingTheFix() async throws {
        let server = try await SharedPostgresBackendServer.instance.server()
        let database = try await server.createDatabase()
        let logger = Logger(label: "test.pg")
        func failure(_ connString: String) async -> TeleportError? {
            do {
                let backend = try await PostgresBackend.open(connString: connString, options: Self.options(), logger: logger)
                try? await backend.close()
                return nil
            } catch let error as TeleportError {
                #expect(!error.message.contains("\n"), "\(error.message)")
                return error
            } catch {
                Issue.record("not a TeleportError: \(error)")
                return nil
            }
        }
        let closedPort = try TestSupport.freeLoopbackPort()
        let unreachable = await failure(
            server.connString(database: database).replacingOccurrences(of: "localhost:\(server.port)", with: "localhost:\(closedPort)"))
        #expect(unreachable?.code == .connectionProblem)
        #expect(unreachable?.message.contains("cannot reach PostgreSQL at localhost:\(closedPort)") == true, "\(unreachable?.message ?? "")")

        // The certificate says "teleport": PostgreSQL's cert authentication refuses another user.
        let refused = await failure(server.connString(database: database, user: "intruder"))
        #expect(refused?.code == .accessDenied)
        #expect(refused?.message.contains("refused user intruder") == true, "\(refused?.message ?? "")")

        let missing = await failure(server.connString(database: "no_such_db"))
        #expect(missing?.code == .notFound)
        #expect(missing?.message.contains("has no database no_such_db") == true, "\(missing?.message ?? "")")

        // A CA that did not sign the server's certificate.
        let wrongCA = await failure(server.connString(database: database).replacingOccurrences(of: server.path("ca.pem"), with: server.path("client.crt")))
        #expect(wrongCA?.code == .connectionProblem)
        #expect(wrongCA?.message.contains("TLS handshake") == true, "\(wrongCA?.message ?? "")")

        let noKey = await failure(server.connString(database: database).replacingOccurrences(of: server.path("client.key"), with: "/nonexistent/key"))
        #expect(noKey?.code == .badParameter)
        #expect(noKey?.message.contains("sslkey=/nonexistent/key cannot be read") == true, "\(noKey?.message ?? "")")
    }
}
