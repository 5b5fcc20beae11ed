import Foundation
import Synchronization
import TeleportTestSupport
import Testing

/// CA rotation with a database service (a real PostgreSQL 15 behind it, reached with the real
/// `psql`) and an application service (the echo app, reached with the real `curl`), each in its own
/// `teleport` process joined with a token: the host CA and then the user CA rotate, phase by phase,
/// while a loop of `psql` through the proxy's PostgreSQL listener and `curl` through the app's
/// public address runs without a single failure. The agents renew their identities in
/// `update_clients` and follow the trusted CAs (both sets until `standby`) without a restart.
///
/// The user logs in again during each rotation, as `psql` and `curl` check against the files `tsh`
/// wrote at login: in the host CA's `init` (the profile's CA file then holds both host CAs, so
/// `psql --sslrootcert` keeps trusting the proxy once it presents a certificate of the new CA) and
/// in the user CA's `update_clients` (certificates from the new keys); until then the old login
/// keeps working.
@Suite("CA rotation with database and application services", .serialized)
struct CARotationAgentsTests {
    static let roles = """
        kind: role
        version: v5
        metadata:
          name: rot-agents
        spec:
          allow:
            db_labels:
              env: test
            db_users: [alice]
            db_names: ['*']
            app_labels:
              env: dev

        """

    /// What the loop runs: `psql` with `tsh db config`'s connection string, `curl` as `tsh apps config` prints it.
    struct Probes: Sendable {
        var conninfo: String
        var curl: String
    }

    /// Logs `tsh` in as bob, then into the database and the app; the probes for that login.
    static func login(_ tsh: TSHRunner, cluster: ClusterFixture, codes: inout TSHCodes) async throws -> Probes {
        let login = try await TSHLoginTests.login(
            tsh, ["--proxy=localhost:\(cluster.webPort)", "--user=bob", "--insecure"], user: "bob", password: TSHLoginTests.password,
            code: try await codes.next())
        try #require(login.status == 0, "\(login.transcript)")
        var dbLogin = try await tsh.run(["db", "login", "pg", "--db-user=alice", "--db-name=postgres"])
        for _ in 0..<60 where dbLogin.exitCode != 0 {
            try await Task.sleep(for: .milliseconds(500))
            dbLogin = try await tsh.run(["db", "login", "pg", "--db-user=alice", "--db-name=postgres"])
        }
        try #require(dbLogin.exitCode == 0, "\(dbLogin)")
        let config = try await tsh.run(["db", "config", "pg"])
        let conninfo = try #require(
            config.stdout.split(separator: "\n").first { $0.contains("psql ") }.map { line -> String in
                var text = String(line.drop { $0 != "'" }.dropFirst())
                if text.hasSuffix("'") { text.removeLast() }
                return text
            }, "\(config)")
        var appLogin = try await tsh.run(["apps", "login", "echo"])
        for _ in 0..<60 where appLogin.exitCode != 0 {
            try await Task.sleep(for: .milliseconds(500))
            appLogin = try await tsh.run(["apps", "login", "echo"])
        }
        try #require(appLogin.exitCode == 0, "\(appLogin)")
        let curl = try await tsh.run(["apps", "config", "echo", "--format=curl"])
        try #require(curl.exitCode == 0, "\(curl)")
        return Probes(conninfo: conninfo + " connect_timeout=20", curl: curl.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Runs one `psql` and one `curl`; a description of each failure.
    static func probe(_ probes: Probes) async throws -> [String] {
        var failures: [String] = []
        let selected = try await TestSupport.run(
            DatabaseServers.psql, [probes.conninfo, "-tAc", "SELECT 1"], environment: ["PGPASSWORD": ""], timeout: .seconds(60))
        if selected.exitCode != 0 || selected.stdout.trimmingCharacters(in: .whitespacesAndNewlines) != "1" {
            failures.append("psql at \(Date()): \(selected)")
        }
        let fetched = try await AppAccessTests.shell("\(probes.curl) -sS --max-time 30 -w '\\n%{http_code}'")
        if fetched.exitCode != 0 || !fetched.stdout.hasSuffix("200") { failures.append("curl at \(Date()): \(fetched)") }
        return failures
    }

    /// Counts loop rounds and keeps the failures.
    final class Loop: Sendable {
        let state: Mutex<(rounds: Int, failures: [String], stop: Bool, probes: Probes)>
        init(_ probes: Probes) { state = Mutex((0, [], false, probes)) }
    }

    @Test(.enabled(if: DatabaseServers.postgresAvailable, "needs root, setpriv and postgresql-15"), .timeLimit(.minutes(10)))
    func psqlAndCurlAcrossHostAndUserRotations() async throws {
        let postgresListen = try TestSupport.freeLoopbackPort()
        let cluster = try ClusterFixture(
            clusterName: "rotate-agents.example",
            authSection: "  tokens: [\"db:\(DatabaseAccessPostgresTests.token)\", \"app:\(AppAccessTests.token)\"]",
            proxySection: "  public_addr: localhost\n  postgres_listen_addr: 127.0.0.1:\(postgresListen)")
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            let dir = try TestSupport.makeTemporaryDirectory(prefix: "rotate-agents")
            defer { try? FileManager.default.removeItem(at: dir) }
            let signed = try await cluster.tctl([
                "auth", "sign", "--format=db", "--host=localhost,127.0.0.1", "--out=\(dir.appendingPathComponent("server").path)", "--ttl=2190h",
            ])
            try #require(signed.exitCode == 0, "\(signed)")
            let postgres = try await PostgresFixture(tls: TLSFiles(prefix: dir.appendingPathComponent("server").path))
            var started: (DatabaseAccessPostgresTests.DatabaseAgent, AppAccessTests.EchoApp, AppAccessTests.AppAgent)?
            do {
                try await postgres.superuser("CREATE ROLE alice LOGIN")
                let database = try DatabaseAccessPostgresTests.DatabaseAgent.start(cluster: cluster, postgresPort: postgres.port)
                let echo = try await AppAccessTests.EchoApp.start()
                let app = try AppAccessTests.AppAgent.start(cluster: cluster, appPort: echo.port)
                started = (database, echo, app)
                try await exercise(cluster, dir: dir, database: database, app: app)
            } catch {
                if let (database, _, app) = started {
                    func interesting(_ log: String) -> String {
                        log.split(separator: "\n").filter { !$0.contains(" debug ") && !$0.contains("DEBU") }.suffix(40).joined(separator: "\n")
                    }
                    Issue.record("db agent:\n\(interesting(database.log))\napp agent:\n\(interesting(app.log))\ncluster:\n\(interesting(cluster.log))")
                }
                await started?.0.stop()
                await started?.1.stop()
                await started?.2.stop()
                await postgres.stop()
                throw error
            }
            await started?.0.stop()
            await started?.1.stop()
            await started?.2.stop()
            await postgres.stop()
        }
    }

    func exercise(
        _ cluster: ClusterFixture, dir: URL, database: DatabaseAccessPostgresTests.DatabaseAgent, app: AppAccessTests.AppAgent
    ) async throws {
        let rolesFile = dir.appendingPathComponent("roles.yaml")
        try TestSupport.write(Self.roles, to: rolesFile)
        let created = try await cluster.tctl(["create", rolesFile.path])
        try #require(created.exitCode == 0, "\(created)")
        let added = try await cluster.tctl(["users", "add", "bob", "--roles=rot-agents"])
        try #require(added.exitCode == 0, "\(added)")
        let enrolled = try await SignupHelper.enrol(
            WebDriver(cluster: cluster), try SignupHelper.link(in: added.stdout, kind: "newuser"), password: TSHLoginTests.password)
        var codes = TSHCodes(secret: enrolled.secret, usedAt: enrolled.time)
        let first = try TSHRunner()
        let second = try TSHRunner()
        let third = try TSHRunner()
        defer {
            first.cleanUp()
            second.cleanUp()
            third.cleanUp()
        }
        let before = try await Self.login(first, cluster: cluster, codes: &codes)
        let firstProbe = try await Self.probe(before)
        #expect(firstProbe.isEmpty, "\(firstProbe)")

        let loop = Loop(before)
        let task = Task {
            while !loop.state.withLock({ $0.stop }) {
                let failures = try await Self.probe(loop.state.withLock { $0.probes })
                loop.state.withLock {
                    $0.rounds += 1
                    $0.failures += failures
                }
            }
        }
        func phase(_ type: String, _ name: String) async throws {
            let moved = try await cluster.tctl(["auth", "rotate", "--manual", "--type=\(type)", "--phase=\(name)"])
            try #require(moved.exitCode == 0, "\(moved)")
            // Agents look every 2 s; an administrator moves phases minutes apart.
            try await Task.sleep(for: .seconds(8))
        }

        // The host CA: the user logs in again in init (the profile then trusts both host CAs).
        try await phase("host", "init")
        let duringHost = try await Self.login(second, cluster: cluster, codes: &codes)
        loop.state.withLock { $0.probes = duringHost }
        for name in ["update_clients", "update_servers", "standby"] { try await phase("host", name) }
        // Every agent renewed its identity from the new host CA, without a restart.
        #expect(database.log.contains("renewed this host's identity"), "the database service did not renew")
        #expect(app.log.contains("renewed this host's identity"), "the application service did not renew")

        // The user CA: the old login works until standby; the new one (update_clients) throughout.
        try await phase("user", "init")
        try await phase("user", "update_clients")
        let duringUser = try await Self.login(third, cluster: cluster, codes: &codes)
        let oldLogin = try await Self.probe(duringHost)
        #expect(oldLogin.isEmpty, "the old user certificate is refused before standby: \(oldLogin)")
        loop.state.withLock { $0.probes = duringUser }
        for name in ["update_servers", "standby"] { try await phase("user", name) }

        loop.state.withLock { $0.stop = true }
        try await task.value
        let (rounds, failures, _, _) = loop.state.withLock { $0 }
        #expect(rounds >= 10, "only \(rounds) rounds")
        #expect(failures.isEmpty, "\(failures.count) failures in \(rounds) rounds:\n\(failures.prefix(4).joined(separator: "\n"))")
        // After standby the certificates of the old user CA are refused on both paths.
        let stale = try await Self.probe(duringHost)
        #expect(stale.count == 2, "\(stale)")
        // tsh db connect (the real psql started by tsh) with the current login.
        let connected = try await third.run(["db", "connect", "pg", "--", "-tAc", "SELECT current_user"])
        #expect(connected.exitCode == 0 && connected.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "alice", "\(connected)")
    }
}
