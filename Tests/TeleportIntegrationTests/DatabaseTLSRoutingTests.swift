import Foundation
import TeleportTestSupport
import Testing

extension DatabaseAccessPostgresTests {
    /// TLS routing: a proxy without `postgres_listen_addr` serves PostgreSQL on its web port by
    /// ALPN `teleport-postgres`. `tsh proxy db --tunnel` goes there and `psql` connects through
    /// it; `tsh db config` says where to turn; a client offering the ALPN value without a client
    /// certificate fails the TLS handshake. `tsh db ls` shows the database's dynamic label.
    @Test(.enabled(if: DatabaseServers.postgresAvailable, "needs root, setpriv and postgresql-15"), .timeLimit(.minutes(10)))
    func psqlThroughTheWebPortOnly() async throws {
        let cluster = try ClusterFixture(clusterName: "pgalpn.example", authSection: "  tokens: [\"db:\(Self.token)\"]")
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            let dir = try TestSupport.makeTemporaryDirectory(prefix: "pgalpn")
            defer { try? FileManager.default.removeItem(at: dir) }
            let signed = try await cluster.tctl([
                "auth", "sign", "--format=db", "--host=localhost,127.0.0.1", "--out=\(dir.appendingPathComponent("server").path)", "--ttl=2190h",
            ])
            try #require(signed.exitCode == 0, "\(signed)")
            let postgres = try await PostgresFixture(tls: TLSFiles(prefix: dir.appendingPathComponent("server").path))
            let agent: DatabaseAgent
            do {
                try await postgres.superuser("CREATE ROLE alice LOGIN")
                agent = try DatabaseAgent.start(cluster: cluster, postgresPort: postgres.port)
            } catch {
                await postgres.stop()
                throw error
            }
            do {
                try await webPortOnly(cluster, agent: agent, dir: dir)
            } catch {
                Issue.record("database agent log:\n\(agent.log)")
                await agent.stop()
                await postgres.stop()
                throw error
            }
            await agent.stop()
            await postgres.stop()
        }
    }

    func webPortOnly(_ cluster: ClusterFixture, agent: DatabaseAgent, dir: URL) async throws {
        let rolesFile = dir.appendingPathComponent("roles.yaml")
        try TestSupport.write(Self.roles, to: rolesFile)
        let created = try await cluster.tctl(["create", rolesFile.path])
        try #require(created.exitCode == 0, "\(created)")
        let added = try await cluster.tctl(["users", "add", "bob", "--roles=pg-alice"])
        try #require(added.exitCode == 0, "\(added)")
        let enrolled = try await SignupHelper.enrol(
            WebDriver(cluster: cluster), try SignupHelper.link(in: added.stdout, kind: "newuser"), password: TSHLoginTests.password)
        var codes = TSHCodes(secret: enrolled.secret, usedAt: enrolled.time)
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        let login = try await TSHLoginTests.login(
            tsh, ["--proxy=127.0.0.1:\(cluster.webPort)", "--user=bob", "--insecure"], user: "bob", password: TSHLoginTests.password,
            code: try await codes.next())
        try #require(login.status == 0, "\(login.transcript)")
        var listed = try await tsh.run(["db", "ls"])
        for _ in 0..<60 where !listed.stdout.contains("pg ") {
            try await Task.sleep(for: .milliseconds(500))
            listed = try await tsh.run(["db", "ls"])
        }
        try #require(listed.stdout.contains("pg "), "\(listed)\n\(agent.log)")
        // dynamic_labels: the command's output is a label, shown with the static ones.
        #expect(listed.stdout.contains("env=test") && listed.stdout.contains("kind=dynamic-pg"), "\(listed)")
        let dbLogin = try await tsh.run(["db", "login", "pg", "--db-user=alice", "--db-name=postgres"])
        try #require(dbLogin.exitCode == 0, "\(dbLogin)")
        // No PostgreSQL listener: tsh db config names the way that works.
        let config = try await tsh.run(["db", "config", "pg"])
        #expect(config.exitCode != 0 && config.stderr.contains("tsh proxy db pg --tunnel"), "\(config)")

        let port = try TestSupport.freeLoopbackPort()
        let log = dir.appendingPathComponent("tsh-proxy-db.log")
        let pid = try TestSupport.spawnDaemon(
            try ClusterFixture.binary("tsh"), ["proxy", "db", "pg", "--tunnel", "--port=\(port)"], logPath: log.path, environment: tsh.environment)
        var output = ""
        for _ in 0..<120 where !output.contains("Started DB proxy") {
            try await Task.sleep(for: .milliseconds(100))
            output = (try? TestSupport.read(log)) ?? ""
        }
        do {
            try #require(output.contains("Started DB proxy on 127.0.0.1:\(port)"), "\(output)")
            let conninfo = "host=localhost port=\(port) user=alice dbname=postgres connect_timeout=20"
            let psql = try await TestSupport.run(DatabaseServers.psql, [conninfo, "-tAc", "SELECT current_user"], environment: ["PGSSLMODE": "disable"])
            #expect(
                psql.exitCode == 0 && psql.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "alice",
                "\(psql)\n\((try? TestSupport.read(log)) ?? "")\n\(agent.log)")
        } catch {
            await TestSupport.stopDaemon(pid)
            throw error
        }
        await TestSupport.stopDaemon(pid)

        // ALPN teleport-postgres without a client certificate: the TLS handshake fails and no
        // PostgreSQL byte comes back.
        let script = """
            import socket, ssl, struct, sys
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["teleport-postgres"])
            raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
            try:
                s = ctx.wrap_socket(raw)
                body = struct.pack("!I", 196608) + b"user\\0alice\\0database\\0postgres\\0\\0"
                s.sendall(struct.pack("!I", len(body) + 4) + body)
                data = s.recv(4096)
                print("answered", len(data), data[:1])
            except (ssl.SSLError, ConnectionError, OSError) as error:
                print("refused", error)
            """
        let bare = try await TestSupport.run("/usr/bin/python3", ["-c", script, String(cluster.webPort)], timeout: .seconds(60))
        #expect(bare.exitCode == 0 && (bare.stdout.contains("refused") || bare.stdout.contains("answered 0")), "\(bare)")
    }
}
