import Foundation
import Logging
import TeleportAPI
import TeleportBackend
import TeleportBackendPostgres
import TeleportTestSupport
import Testing

/// The wait for a pooled connection is bounded (`PostgresBackend.Options.leaseTimeout`, issue 18).
/// (The other cause, `max_connections` taken by another client, is `HAStoreRestartTests`.)
@Suite("PostgreSQL backend: connection leases", .timeLimit(.minutes(3)), .enabled(if: DatabaseServers.postgresAvailable, "PostgreSQL 15 is not installed"))
struct PostgresLeaseTests {
    /// `pool_max_conns=2`: the feed's LISTEN holds one connection, a write blocked on another
    /// client's table lock holds the other. A read then fails after the lease timeout (not when the
    /// lock goes) with one line naming the pool; once the lock goes, the write completes and reads work.
    @Test func aCallWaitsForABusyPoolAtMostTheLeaseTimeout() async throws {
        let server = try await SharedPostgresBackendServer.instance.server()
        let database = try await server.createDatabase()
        var options = PostgresBackend.Options()
        options.pollInterval = .milliseconds(200)
        options.leaseTimeout = .seconds(2)
        let backend = try await PostgresBackend.open(
            connString: server.connString(database: database) + "&pool_max_conns=2", options: options, logger: Logger(label: "test.pg"))
        let written = try await backend.put(Item(key: "/held/a", value: Data("1".utf8)))

        let logs = try TestSupport.makeTemporaryDirectory(prefix: "lease")
        let holder = try TestSupport.spawnDaemon(
            DatabaseServers.psql,
            [
                "-h", server.postgres.directory.path, "-p", String(server.port), "-U", "postgres", "-d", database, "-c",
                "BEGIN; LOCK TABLE teleport_items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;",
            ], logPath: logs.appendingPathComponent("holder.log").path)
        func release() async {
            _ = await TestSupport.stopDaemon(holder)
            _ = try? await server.postgres.superuser(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database)' AND query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()")
            try? FileManager.default.removeItem(at: logs)
        }
        do {
            func waitingOnLock() async throws -> Int {
                let rows = try await server.postgres.superuser(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = '\(database)' AND usename = 'teleport' AND wait_event_type = 'Lock'")
                return Int(rows.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            }
            let locked = try await eventually(within: .seconds(30)) {
                // In pg_sleep, so past the LOCK of the same statement.
                let rows = try await server.postgres.superuser(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = '\(database)' AND usename = 'postgres' AND wait_event = 'PgSleep'")
                return rows.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1"
            }
            try #require(locked)
            let blocked = Task { try await backend.put(Item(key: "/held/b", value: Data("2".utf8))) }
            let waiting = try await eventually(within: .seconds(30)) { try await waitingOnLock() >= 1 }
            try #require(waiting)

            let started = ContinuousClock.now
            var failure: TeleportError?
            do {
                _ = try await backend.get("/held/a")
            } catch let error as TeleportError {
                failure = error
            }
            let took = ContinuousClock.now - started
            #expect(failure?.code == .limitExceeded, "\(String(describing: failure))")
            #expect(failure?.message.contains("pool_max_conns=2") == true && failure?.message.contains("\n") == false, "\(String(describing: failure))")
            #expect(took >= .seconds(1) && took < .seconds(20), "the read waited \(took)")

            await release()
            let stored = try await blocked.value
            #expect(stored.key == "/held/b")
            #expect(try await backend.get("/held/a") == written)
        } catch {
            await release()
            try? await backend.close()
            throw error
        }
        try await backend.close()
    }

    private func eventually(within limit: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return try await condition()
    }
}
