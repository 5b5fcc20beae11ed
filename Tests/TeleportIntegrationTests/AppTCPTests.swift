import Foundation
import TeleportTestSupport
import Testing

/// A TCP app (`uri: tcp://127.0.0.1:PORT`) in front of a real PostgreSQL 15: `tsh proxy app pg
/// --port N` (a process, stopped by PID) listens on 127.0.0.1:N and carries raw bytes through
/// the proxy's web port (TLS with the app certificate) and the application service to
/// PostgreSQL. The real `psql` then talks PostgreSQL — with its own TLS and client certificate
/// inside the tunnel — as if PostgreSQL were local: a query, 5 MB of result, two sessions at once.
/// Refused: a browser at the TCP app's origin (400 naming tsh proxy app), and — after the role
/// loses the app — new connections. The audit log has the session's start and end.
@Suite("application access: TCP apps", .serialized)
struct AppTCPTests {
    @Test(.enabled(if: DatabaseServers.postgresAvailable, "needs root, setpriv and postgresql-15"), .timeLimit(.minutes(5)))
    func psqlThroughATCPApp() async throws {
        let cluster = try ClusterFixture(
            clusterName: "apps.example", authSection: "  tokens: [\"app:\(AppAccessTests.token)\"]", proxySection: "  public_addr: localhost")
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            let postgres = try await PostgresBackendServer.start()
            let app = try await AppAccessTests.EchoApp.start()
            let extra = """
                  - name: pg
                    description: PostgreSQL as a TCP app
                    uri: tcp://127.0.0.1:\(postgres.port)
                    labels:
                      env: dev

                """
            let agent: AppAccessTests.AppAgent
            do {
                agent = try AppAccessTests.AppAgent.start(cluster: cluster, appPort: app.port, extraApps: extra)
            } catch {
                await app.stop()
                await postgres.stop()
                throw error
            }
            do {
                try await exercise(cluster, postgres: postgres)
            } catch {
                Issue.record("app agent log:\n\(agent.log)")
                await agent.stop()
                await app.stop()
                await postgres.stop()
                throw error
            }
            await agent.stop()
            await app.stop()
            await postgres.stop()
        }
    }

    func exercise(_ cluster: ClusterFixture, postgres: PostgresBackendServer) async throws {
        let dir = try TestSupport.makeTemporaryDirectory(prefix: "apps-tcp")
        defer { try? FileManager.default.removeItem(at: dir) }
        let rolesFile = dir.appendingPathComponent("roles.yaml")
        try TestSupport.write(AppAccessTests.role(allowed: true), to: rolesFile)
        let created = try await cluster.tctl(["create", rolesFile.path])
        try #require(created.exitCode == 0, "\(created)")
        let added = try await cluster.tctl(["users", "add", "bob", "--roles=apps-dev"])
        try #require(added.exitCode == 0, "\(added)")
        let enrolled = try await SignupHelper.enrol(
            WebDriver(cluster: cluster), try SignupHelper.link(in: added.stdout, kind: "newuser"), password: TSHLoginTests.password)
        var codes = TSHCodes(secret: enrolled.secret, usedAt: enrolled.time)
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        let login = try await TSHLoginTests.login(
            tsh, ["--proxy=localhost:\(cluster.webPort)", "--user=bob", "--insecure"], user: "bob", password: TSHLoginTests.password,
            code: try await codes.next())
        try #require(login.status == 0, "\(login.transcript)")
        var listed = try await tsh.run(["apps", "ls"])
        for _ in 0..<60 where !listed.stdout.contains("pg ") {
            try await Task.sleep(for: .milliseconds(500))
            listed = try await tsh.run(["apps", "ls"])
        }
        try #require(listed.stdout.contains("pg ") && listed.stdout.contains("pg.localhost"), "\(listed)")
        let appLogin = try await tsh.run(["apps", "login", "pg"])
        try #require(appLogin.exitCode == 0, "\(appLogin)")

        // tctl access explain --app: the role's app_labels against the app's labels.
        let explained = try await cluster.tctl(["access", "explain", "--user=bob", "--app=pg"])
        #expect(explained.exitCode == 0 && explained.stdout.contains("App:     pg (TCP app at pg.localhost): env=dev"), "\(explained)")
        #expect(explained.stdout.contains("apps-dev") && explained.stdout.hasSuffix("Verdict: ALLOWED\n"), "\(explained)")
        let unknownApp = try await cluster.tctl(["access", "explain", "--user=bob", "--app=nosuch"])
        #expect(unknownApp.exitCode != 0 && unknownApp.stderr.contains("no registered app is named"), "\(unknownApp)")
        let mixed = try await cluster.tctl(["access", "explain", "--user=bob", "--app=pg", "--login=root"])
        #expect(mixed.exitCode != 0 && mixed.stderr.contains("--app"), "\(mixed)")

        // A browser at the TCP app's origin is told to use tsh.
        let browser = try await AppAccessTests.shell("curl -sk -H 'Accept: text/html' -w '\\n%{http_code}' https://pg.localhost:\(cluster.webPort)/")
        #expect(browser.stdout.hasSuffix("400") && browser.stdout.contains("tsh proxy app pg"), "\(browser)")

        let localPort = try TestSupport.freeLoopbackPort()
        let proxyLog = dir.appendingPathComponent("proxy-app.log")
        let localProxy = try TestSupport.spawnDaemon(
            try ClusterFixture.binary("tsh"), ["proxy", "app", "pg", "--port", "\(localPort)"], logPath: proxyLog.path, environment: tsh.environment)
        defer { kill(localProxy, SIGKILL) }
        let listening = await TestSupport.waitForPort(localPort)
        #expect(listening, "tsh proxy app did not listen: \((try? TestSupport.read(proxyLog)) ?? "")")
        if listening {
            // The line is printed just after the port listens: wait for it (bounded).
            let announced = "Proxying TCP connections to pg on 127.0.0.1:\(localPort)"
            let deadline = ContinuousClock.now + .seconds(20)
            while !((try? TestSupport.read(proxyLog)) ?? "").contains(announced), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(((try? TestSupport.read(proxyLog)) ?? "").contains(announced), "\((try? TestSupport.read(proxyLog)) ?? "")")
            // psql with PostgreSQL's own TLS and client certificate, end to end through the tunnel.
            let conninfo =
                "host=127.0.0.1 port=\(localPort) dbname=postgres user=\(PostgresBackendServer.user) connect_timeout=20 sslmode=verify-ca "
                + "sslrootcert=\(postgres.path("ca.pem")) sslcert=\(postgres.path("client.crt")) sslkey=\(postgres.path("client.key"))"
            func psql(_ sql: String) async throws -> CommandResult {
                try await TestSupport.run(
                    DatabaseServers.psql, [conninfo, "-tAc", sql], environment: ["PGPASSWORD": "", "HOME": dir.path], timeout: .seconds(60))
            }
            let answer = try await psql("SELECT 40 + 2")
            #expect(answer.exitCode == 0 && answer.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "42", "\(answer)\n\(postgres.postgres.log.suffix(2000))\n\((try? TestSupport.read(proxyLog)) ?? "")\n\(cluster.log.suffix(3000))")
            let big = try await psql("SELECT repeat('x', 5000000)")
            #expect(big.stdout.trimmingCharacters(in: .whitespacesAndNewlines).count == 5_000_000, "\(big.stdout.count) bytes, \(big.stderr)")
            async let first = psql("SELECT pg_sleep(1), 'one'")
            async let second = psql("SELECT 'two'")
            let (one, two) = try await (first, second)
            #expect(one.stdout.contains("one") && two.stdout.contains("two"), "\(one)\n\(two)")

            // The role loses the app: new connections are refused (closed before any byte reaches PostgreSQL).
            try TestSupport.write(AppAccessTests.role(allowed: false), to: rolesFile)
            let updated = try await cluster.tctl(["create", "-f", rolesFile.path])
            try #require(updated.exitCode == 0, "\(updated)")
            var denied = try await psql("SELECT 1")
            for _ in 0..<40 where denied.exitCode == 0 {
                try await Task.sleep(for: .milliseconds(500))
                denied = try await psql("SELECT 1")
            }
            #expect(denied.exitCode != 0, "\(denied)")
            let explainDenied = try await cluster.tctl(["access", "explain", "--user=bob", "--app=pg"])
            #expect(explainDenied.stdout.hasSuffix("Verdict: DENIED\n") && explainDenied.stdout.contains("role apps-dev: allow: label env=dev is not one of [\"nowhere\"]"), "\(explainDenied)")
        }
        await TestSupport.stopDaemon(localProxy)

        let lines = try await DatabaseAccessPostgresTests.auditLines(cluster) { lines in
            lines.contains { $0.contains("\"app.session.end\"") && $0.contains("\"app_name\":\"pg\"") }
                && lines.contains { $0.contains("\"TAP00W\"") && $0.contains("access to app pg denied") }
        }
        #expect(lines.contains { $0.contains("\"TAP00I\"") && $0.contains("\"app_name\":\"pg\"") && $0.contains("\"user\":\"bob\"") })
        #expect(lines.contains { $0.contains("\"app.session.end\"") && $0.contains("\"app_name\":\"pg\"") })
        #expect(lines.contains { $0.contains("\"TAP00W\"") && $0.contains("access to app pg denied") }, "\(lines.filter { $0.contains("app.session") })")
    }
}
