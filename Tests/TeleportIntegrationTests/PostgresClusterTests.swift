import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// `teleport start` with `storage: type: postgresql` against a real PostgreSQL 15 (TLS, client
/// certificate authentication): the cluster comes up, `tctl` works, a user signs up and logs in with
/// `tsh`, and the state lives in PostgreSQL.
@Suite("a cluster on the PostgreSQL backend", .timeLimit(.minutes(5)), .enabled(if: DatabaseServers.postgresAvailable, "PostgreSQL 15 is not installed"))
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

    /// Two auth servers on one PostgreSQL store, each writing the shared `postgresql://` audit log
    /// (and a local `file://` copy): `tctl events ls` on either shows what both did, and `tctl audit
    /// verify` checks both chains and the checkpoints each auth server signed.
    @Test func twoAuthServersShareTheAuditLog() async throws {
        try await PostgresBackendServer.with { server in
            let database = try await server.createDatabase()
            let audit = try await server.createDatabase()
            let logs = try TestSupport.makeTemporaryDirectory(prefix: "pgha-logs")
            defer { try? FileManager.default.removeItem(at: logs) }
            func storage(_ name: String) -> String {
                """
                  storage:
                    type: postgresql
                    conn_string: "\(server.connString(database: database))"
                    audit_events_uri: ["\(server.connString(database: audit))", "file://\(logs.appendingPathComponent(name).path)"]
                """
            }
            try await withCluster(try ClusterFixture(clusterName: "pgha.example", teleportSection: storage("a"))) { first in
                try await withCluster(try ClusterFixture(clusterName: "pgha.example", teleportSection: storage("b"))) { second in
                    async let firstStarted: Void = first.start(["--roles=auth"])
                    async let secondStarted: Void = second.start(["--roles=auth"])
                    _ = try await (firstStarted, secondStarted)
                    #expect(try await first.tctl(["users", "add", "joe", "root"]).exitCode == 0)
                    #expect(try await second.tctl(["users", "add", "ann", "root"]).exitCode == 0)
                    for cluster in [first, second] {
                        let created = try await AuditEventsTests.events(cluster, ["--type=user.create"])
                        let names = Set(created.compactMap { event -> String? in
                            if case .string(let name)? = event["name"] { return name }
                            return nil
                        })
                        #expect(names == ["joe", "ann"], "\(created)")
                    }
                    // Each auth server signs its chain's head (every 5 s): wait for both checkpoints.
                    var verified = try await first.tctl(["audit", "verify"])
                    let deadline = ContinuousClock.now + .seconds(60)
                    while !verified.stdout.contains("2 signed checkpoints"), ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(500))
                        verified = try await first.tctl(["audit", "verify"])
                    }
                    #expect(verified.exitCode == 0 && verified.stdout.contains("2 signed checkpoints"), "\(verified)")
                    // An event removed from the shared table is found from the other auth server.
                    let removed = try await TestSupport.run(
                        DatabaseServers.psql,
                        [
                            "-h", server.postgres.directory.path, "-p", String(server.port), "-U", "postgres", "-d", audit, "-tAc",
                            "DELETE FROM teleport_audit WHERE id = (SELECT min(id) FROM teleport_audit WHERE event = 'user.create')",
                        ])
                    #expect(removed.exitCode == 0, "\(removed)")
                    let broken = try await second.tctl(["audit", "verify"])
                    // (The chain's last event: the checkpoint shows it; an earlier one: the gap in `seq` does.)
                    let said = broken.stdout + broken.stderr
                    #expect(broken.exitCode != 0 && (said.contains("were removed") || said.contains("is truncated")), "\(broken)")
                }
            }
        }
    }
}
