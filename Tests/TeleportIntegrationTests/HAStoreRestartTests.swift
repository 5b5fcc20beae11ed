import Crypto
import Foundation
import TeleportAPI
import TeleportCrypto
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 18's faults of the PostgreSQL store. PostgreSQL restarted at once (SIGQUIT, as `pg_ctl restart -m immediate`)
/// during a storm of 200 logins (`POST /webapi/ssh/certs`, eight at a time, each with a fresh key)
/// while nodes heartbeat. Every caller gets an answer (a certificate or an error naming the
/// problem, never a hang or a dropped connection), every certificate handed out has its record in
/// the store, logins succeed again after the restart, and every node's heartbeat is written again
/// within 30 s. And a store turned read-only (``aReadOnlyStore()``).
@Suite("faults of the PostgreSQL store", .timeLimit(.minutes(10)), .enabled(if: DatabaseServers.postgresAvailable, "PostgreSQL 15 is not installed"))
struct HAStoreRestartTests {
    static let token = "ha-storm-node-token-5e1a0c"
    static let password = "storm password 1234"

    /// One login's outcome.
    struct Outcome: Sendable {
        var status: Int
        var body: String
        var fingerprintHex: String
        var started: ContinuousClock.Instant
    }

    /// Counts finished logins (the restart starts after the first ones).
    actor Progress {
        var finished = 0
        func done() { finished += 1 }
    }

    @Test func loginsAndHeartbeatsThroughARestart() async throws {
        try await PostgresBackendServer.with { server in
            let database = try await server.createDatabase()
            let storage = """
                  storage:
                    type: postgresql
                    conn_string: "\(server.connString(database: database))"
                """
            let authSection = """
                  authentication:
                    type: local
                    second_factor: "off"
                  tokens: ["node:\(Self.token)"]
                """
            try await withCluster(try ClusterFixture(clusterName: "storm.example", teleportSection: storage, authSection: authSection)) { cluster in
                try await cluster.start()
                let nodeSection = """
                      auth_servers: ["127.0.0.1:\(cluster.authPort)"]
                      auth_token: \(Self.token)
                    """
                try await withCluster(try ClusterFixture(clusterName: "storm.example", teleportSection: nodeSection)) { node in
                    try await node.start(["--roles=node"])
                    try await storm(server: server, database: database, cluster: cluster)
                }
            }
        }
    }

    /// The store turned read-only (`default_transaction_read_only` for the database, the auth
    /// server's sessions ended so that new ones see it): `/readyz` says not ready and why, a write
    /// fails with one line naming the cause and the fix; turned back, both recover.
    @Test func aReadOnlyStore() async throws {
        try await PostgresBackendServer.with { server in
            let database = try await server.createDatabase()
            let storage = """
                  storage:
                    type: postgresql
                    conn_string: "\(server.connString(database: database))"
                """
            try await withCluster(try ClusterFixture(clusterName: "readonly.example", teleportSection: storage)) { cluster in
                try await cluster.start(["--roles=auth"])
                func readOnly(_ on: Bool) async throws {
                    try await server.postgres.superuser("ALTER DATABASE \(database) SET default_transaction_read_only = \(on ? "on" : "off")")
                    try await server.postgres.superuser(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database)' AND pid <> pg_backend_pid()")
                }
                try await readOnly(true)
                var readiness = try await cluster.diag("readyz")
                let turned = try await HACluster.eventually(within: .seconds(30)) {
                    readiness = try await cluster.diag("readyz")
                    return readiness.status == 503
                }
                #expect(turned && readiness.body.contains("read-only"), "\(readiness)")
                let refused = try await cluster.tctl(["users", "add", "ro", "root"])
                #expect(refused.exitCode != 0, "\(refused)")
                #expect(refused.stderr.contains("read-only") && refused.stderr.split(separator: "\n").count <= 2, "\(refused)")
                #expect(try await cluster.diag("healthz").status == 200)

                try await readOnly(false)
                let back = try await HACluster.eventually(within: .seconds(30)) { try await cluster.diag("readyz").status == 200 }
                let final = try await cluster.diag("readyz")
                #expect(back, "\(final)")
                let added = try await cluster.tctl(["users", "add", "ro", "root"])
                #expect(added.exitCode == 0, "\(added)")
            }
        }
    }

    /// Another client takes every connection PostgreSQL allows (`max_connections = 20`, 17 for
    /// non-superusers, all held by `psql` sessions of another role) and the auth server's are ended:
    /// `/readyz` turns 503, a write fails within seconds with one line naming `max_connections` (the
    /// wait for a pooled connection is bounded); once the other client lets go, both recover within the pool's
    /// back-off. The auth server's pool stays within `pool_max_conns`.
    @Test func maxConnectionsExhaustedByAnotherClient() async throws {
        try await PostgresBackendServer.with { server in
            let database = try await server.createDatabase()
            try await server.postgres.superuser("CREATE ROLE hog LOGIN")
            try await server.postgres.superuser("ALTER SYSTEM SET max_connections = 20")
            try await server.postgres.restartImmediately()
            let storage = """
                  storage:
                    type: postgresql
                    conn_string: "\(server.connString(database: database))&pool_max_conns=4"
                """
            let hogs = try TestSupport.makeTemporaryDirectory(prefix: "hogs")
            var pids: [pid_t] = []
            func release() async {
                for pid in pids { _ = await TestSupport.stopDaemon(pid) }
                pids = []
                // A backend in pg_sleep does not notice its client went: end the sessions too.
                _ = try? await server.postgres.superuser("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'hog'")
            }
            do {
                try await withCluster(try ClusterFixture(clusterName: "maxconn.example", teleportSection: storage)) { cluster in
                    try await cluster.start(["--roles=auth"])
                    func counts() async throws -> [String: Int] {
                        let rows = try await server.postgres.superuser(
                            "SELECT usename || ' ' || count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY usename")
                        var result: [String: Int] = [:]
                        for line in rows.stdout.split(separator: "\n") {
                            let parts = line.split(separator: " ")
                            if parts.count == 2 { result[String(parts[0])] = Int(parts[1]) }
                        }
                        return result
                    }
                    let initial = try await counts()
                    #expect(initial["teleport", default: 0] <= 4, "\(initial)")
                    // The other client takes every slot; the auth server's connections are ended.
                    // While the slots fill, the auth server may not reconnect (under load its pool
                    // won the freed slot before a starting psql did); once they are full, it may
                    // try again and meets PostgreSQL's own refusal, "too many clients already".
                    try await server.postgres.superuser("ALTER ROLE teleport CONNECTION LIMIT 0")
                    let full = try await HACluster.eventually(within: .seconds(90)) {
                        try await server.postgres.superuser("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'teleport'")
                        let now = try await counts()
                        if now["hog", default: 0] >= 17 && now["teleport", default: 0] == 0 { return true }
                        for _ in 0..<max(1, 17 - now["hog", default: 0]) {
                            pids.append(
                                try TestSupport.spawnDaemon(
                                    DatabaseServers.psql,
                                    ["-h", server.postgres.directory.path, "-p", String(server.port), "-U", "hog", "-d", "postgres", "-c", "SELECT pg_sleep(600)"],
                                    logPath: hogs.appendingPathComponent("hog-\(pids.count).log").path))
                        }
                        return false
                    }
                    try await server.postgres.superuser("ALTER ROLE teleport CONNECTION LIMIT -1")
                    let taken = try await counts()
                    try #require(full, "\(taken)")
                    var readiness = try await cluster.diag("readyz")
                    let degraded = try await HACluster.eventually(within: .seconds(30)) {
                        readiness = try await cluster.diag("readyz")
                        return readiness.status == 503
                    }
                    #expect(degraded, "\(readiness)")
                    let started = ContinuousClock.now
                    let refused = try await cluster.tctl(["users", "add", "late", "root"])
                    let took = ContinuousClock.now - started
                    print("HA max_connections: a write failed after \(took): \(refused.stderr)")
                    // The wait for a pooled connection is bounded (5 s, PostgresLeases): the write
                    // fails within seconds, with one line naming max_connections (before, it waited
                    // ~35 s for the pool's circuit breaker).
                    #expect(refused.exitCode != 0 && refused.stderr.split(separator: "\n").count <= 2, "\(refused)")
                    #expect(refused.stderr.contains("max_connections"), "\(refused)")
                    #expect(took < .seconds(25), "the write waited \(took)")
                    // Later writes (the pool's circuit breaker may have tripped meanwhile) fail the same way.
                    let again = try await cluster.tctl(["users", "add", "late", "root"])
                    #expect(again.exitCode != 0 && again.stderr.contains("max_connections") && again.stderr.split(separator: "\n").count <= 2, "\(again)")

                    // The other client lets go: the auth server is ready and writes again.
                    await release()
                    // (The pool retries with back-off of at most 60 s: PostgresNIO's cap.)
                    let back = try await HACluster.eventually(within: .seconds(90)) { try await cluster.diag("readyz").status == 200 }
                    #expect(back, "\(cluster.log.suffix(2000))")
                    let added = try await cluster.tctl(["users", "add", "late", "root"])
                    #expect(added.exitCode == 0, "\(added)")
                    let final = try await counts()
                    #expect(final["teleport", default: 0] <= 4, "\(final)")
                }
            } catch {
                await release()
                try? FileManager.default.removeItem(at: hogs)
                throw error
            }
            await release()
            try? FileManager.default.removeItem(at: hogs)
        }
    }

    func sql(_ server: PostgresBackendServer, _ database: String, _ query: String) async throws -> [String] {
        let result = try await TestSupport.run(
            DatabaseServers.psql,
            ["-h", server.postgres.directory.path, "-p", String(server.port), "-U", "postgres", "-d", database, "-tAc", query])
        try #require(result.exitCode == 0, "\(result)")
        return result.stdout.split(separator: "\n").map(String.init)
    }

    /// The node records' revisions by key.
    func nodeRevisions(_ server: PostgresBackendServer, _ database: String) async throws -> [String: Int] {
        let lines = try await sql(
            server, database,
            "SELECT convert_from(key, 'UTF8') || ' ' || revision FROM teleport_items WHERE key >= '/nodes/'::bytea AND key < '/nodes0'::bytea")
        var revisions: [String: Int] = [:]
        for line in lines {
            let parts = line.split(separator: " ")
            if parts.count == 2, let revision = Int(parts[1]) { revisions[String(parts[0])] = revision }
        }
        return revisions
    }

    /// POST /webapi/ssh/certs with curl: status (0 when curl got no answer) and body.
    func login(_ cluster: ClusterFixture, _ keys: LoginKeys) async throws -> (status: Int, body: String) {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "storm")
        defer { try? FileManager.default.removeItem(at: directory) }
        let request = directory.appendingPathComponent("request.json")
        try ResourceCodec.json(keys.request(user: "joe", password: Self.password, otp: "")).write(to: request)
        let body = directory.appendingPathComponent("body")
        let result = try await TestSupport.run(
            "/usr/bin/curl",
            [
                "-s", "-k", "-m", "60", "-o", body.path, "-w", "%{http_code}", "-H", "Content-Type: application/json", "--data-binary",
                "@\(request.path)", "https://127.0.0.1:\(cluster.webPort)\(WebAPI.loginPath)",
            ], timeout: .seconds(90))
        return (Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, (try? String(contentsOf: body, encoding: .utf8)) ?? "")
    }

    func storm(server: PostgresBackendServer, database: String, cluster: ClusterFixture) async throws {
        let link = try await SignupHelper.addUser(cluster, name: "joe", logins: "joe,root")
        try await WebDriver(cluster: cluster).complete(link, password: Self.password, expecting: "Your account is ready")
        let first = try await login(cluster, try LoginKeys())
        try #require(first.status == 200, "\(first)")

        let progress = Progress()
        let total = 200
        let workers = 8
        var restart: (began: ContinuousClock.Instant, ended: ContinuousClock.Instant)?
        let outcomes = try await withThrowingTaskGroup(of: [Outcome].self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var mine: [Outcome] = []
                    for _ in stride(from: worker, to: total, by: workers) {
                        let keys = try LoginKeys()
                        let started = ContinuousClock.now
                        let reply = try await login(cluster, keys)
                        mine.append(.init(status: reply.status, body: reply.body, fingerprintHex: SSHPublicKey.ed25519(keys.ssh.publicKey).fingerprintHex, started: started))
                        await progress.done()
                    }
                    return mine
                }
            }
            // PostgreSQL goes away at once after the first logins, and comes back.
            while await progress.finished < 30 { try await Task.sleep(for: .milliseconds(50)) }
            let began = ContinuousClock.now
            try await server.postgres.restartImmediately()
            restart = (began, ContinuousClock.now)
            // Every node's heartbeat is written again within 30 s of the restart (while the storm goes on).
            let baseline = try await nodeRevisions(server, database)
            #expect(baseline.count == 2, "\(baseline)")
            let renewed = try await HACluster.eventually(within: .seconds(30)) {
                let now = try await nodeRevisions(server, database)
                return baseline.allSatisfy { key, revision in (now[key] ?? 0) > revision }
            }
            print("HA storm: every node's heartbeat was written again \(ContinuousClock.now - began) after the restart began")
            #expect(renewed, "a node's heartbeat was not written again within 30 s of the restart")
            var all: [Outcome] = []
            for try await some in group { all += some }
            return all
        }
        let (began, ended) = try #require(restart)
        let succeeded = outcomes.filter { $0.status == 200 }
        let failed = outcomes.filter { $0.status != 200 }
        print("HA storm: \(succeeded.count) of \(total) logins succeeded, \(failed.count) failed (\(Set(failed.map(\.status)).sorted())); PostgreSQL was down for \(ended - began)")
        #expect(outcomes.count == total)
        // Every caller got an answer: a certificate or an error naming the problem.
        for outcome in failed {
            #expect(outcome.status >= 400 && outcome.body.contains("\"error\""), "\(outcome.status): \(outcome.body.prefix(500))")
        }
        // No certificate handed out without its record in the store.
        let records = Set(try await sql(server, database, "SELECT convert_from(key, 'UTF8') FROM teleport_items WHERE key >= '/usercerts/'::bytea AND key < '/usercerts0'::bytea"))
        let missing = succeeded.filter { !records.contains("/usercerts/\($0.fingerprintHex)") }
        #expect(missing.isEmpty, "\(missing.count) certificates without a record; records: \(records.count)")
        // Logins started after the restart succeed.
        let afterRestart = outcomes.filter { $0.started > ended }
        #expect(afterRestart.allSatisfy { $0.status == 200 }, "\(afterRestart.filter { $0.status != 200 }.map { "\($0.status) \($0.body.prefix(200))" })")
        let again = try await login(cluster, try LoginKeys())
        #expect(again.status == 200, "\(again)")
    }
}
