import Foundation
import TeleportTestSupport
import Testing

/// `teleport start` with `storage: type: postgresql` against a real PostgreSQL 15 (TLS, client
/// certificate authentication): the cluster comes up, `tctl` works, a user signs up and logs in with
/// `tsh`, and the state lives in PostgreSQL.
@Suite("a cluster on the PostgreSQL backend", .timeLimit(.minutes(5)), .enabled(if: DatabaseServers.postgresAvailable, "PostgreSQL 15 is not installed"),
    .enabled(if: ProcessInfo.processInfo.environment["TELEPORT_TEST_POSTGRES_BACKEND"] == "1", "set TELEPORT_TEST_POSTGRES_BACKEND=1 (a combined run hung: issue 18)"))
struct PostgresClusterTests {
    @Test func teleportStartsOnPostgresAndUsersCanLogIn() async throws {
        try await PostgresBackendServer.with { server in
            let database = try await server.createDatabase()
            let storage = """
                  storage:
                    type: postgresql
                    conn_string: "\(server.connString(database: database))"
                """
            let tsh = try TSHRunner()
            defer { tsh.cleanUp() }
            try await withCluster(try ClusterFixture(clusterName: "pg.example", teleportSection: storage)) { cluster in
                var codes = try await TSHLoginTests.signUp(cluster)
                let login = try await TSHLoginTests.login(
                    tsh, ["--proxy=127.0.0.1:\(cluster.webPort)", "--user=joe", "--insecure"],
                    password: TSHLoginTests.password, code: try await codes.next())
                #expect(login.status == 0, "\(login.transcript)\n\(cluster.log)")
                #expect(login.transcript.contains("Logins:             joe, root"), "\(login.transcript)")
                let users = try await cluster.tctl(["users", "ls"])
                #expect(users.exitCode == 0 && users.stdout.contains("joe"), "\(users)")
                // The user is a row in PostgreSQL, with its change in the event log; no SQLite file.
                let rows = try await TestSupport.run(
                    DatabaseServers.psql,
                    [
                        "-h", server.postgres.directory.path, "-p", String(server.port), "-U", "postgres", "-d", database, "-tAc",
                        "SELECT convert_from(key, 'UTF8') FROM teleport_items UNION ALL SELECT 'event:' || convert_from(key, 'UTF8') FROM teleport_events",
                    ])
                #expect(rows.stdout.contains("/users/joe"), "\(rows)")
                #expect(rows.stdout.contains("event:/users/joe"), "\(rows)")
                #expect(!FileManager.default.fileExists(atPath: cluster.dataDir.appendingPathComponent("backend/sqlite.db").path))
            }
        }
    }
}
