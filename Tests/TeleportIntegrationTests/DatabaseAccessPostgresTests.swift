import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// PostgreSQL 15 through the proxy: a cluster with `postgres_listen_addr`, a database service
/// in its own process that joins with a `db` token and serves a real PostgreSQL (server
/// certificate from `tctl auth sign --format=db`, `cert` authentication only), a user logged in
/// with `tsh login` on a terminal, and the real `psql`.
@Suite("database access: PostgreSQL through the proxy", .serialized)
struct DatabaseAccessPostgresTests {
    static let token = "db0123456789abcdef0123456789abcd"
    static let roles = """
        kind: role
        version: v5
        metadata:
          name: pg-alice
        spec:
          allow:
            db_labels:
              env: test
            db_users: [alice]
            db_names: ['*']

        """

    /// The database service's process: `teleport start -c FILE` with only `db_service`.
    struct DatabaseAgent {
        let directory: URL
        let pid: pid_t
        let port: UInt16
        var log: String { (try? TestSupport.read(directory.appendingPathComponent("teleport.log"))) ?? "" }

        static func start(cluster: ClusterFixture, postgresPort: UInt16) throws -> DatabaseAgent {
            try start(
                cluster: cluster,
                databases: """
                      - name: pg
                        description: Test PostgreSQL
                        protocol: postgres
                        uri: localhost:\(postgresPort)
                        static_labels:
                          env: test
                        dynamic_labels:
                        - name: kind
                          command: ["/bin/echo", "dynamic-pg"]
                          period: 1m
                        tls:
                          mode: verify-full
                    """)
        }

        /// `databases`: the `db_service.databases` list, indented by two spaces. `tunnel`: the
        /// service joins through the proxy's web port (`proxy_server`), binds no port and is
        /// reached through its reverse tunnel.
        static func start(cluster: ClusterFixture, databases: String, tunnel: Bool = false) throws -> DatabaseAgent {
            let directory = try TestSupport.makeTemporaryDirectory(prefix: "dbagent")
            let port = try TestSupport.freeLoopbackPort()
            let reach = tunnel ? "proxy_server: 127.0.0.1:\(cluster.webPort)" : "auth_servers: [127.0.0.1:\(cluster.authPort)]"
            let config = """
                version: v3
                teleport:
                  nodename: dbhost
                  data_dir: \(directory.appendingPathComponent("data").path)
                  auth_token: \(DatabaseAccessPostgresTests.token)
                  \(reach)
                  log:
                    severity: DEBUG
                auth_service:
                  enabled: false
                proxy_service:
                  enabled: false
                ssh_service:
                  enabled: false
                db_service:
                  enabled: true
                  \(tunnel ? "" : "listen_addr: 127.0.0.1:\(port)")
                  databases:
                \(databases)

                """
            let file = directory.appendingPathComponent("teleport.yaml")
            try TestSupport.write(config, to: file)
            let pid = try TestSupport.spawnDaemon(
                try ClusterFixture.binary("teleport"), ["start", "-c", file.path],
                logPath: directory.appendingPathComponent("teleport.log").path)
            return DatabaseAgent(directory: directory, pid: pid, port: port)
        }

        func stop() async {
            await TestSupport.stopDaemon(pid)
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// The audit log lines of the cluster (every day file), waiting up to 30 s for `predicate`.
    static func auditLines(_ cluster: ClusterFixture, until predicate: ([String]) -> Bool) async throws -> [String] {
        let directory = cluster.dataDir.appendingPathComponent("log")
        var lines: [String] = []
        for _ in 0..<60 {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            lines = files.filter { $0.hasSuffix(".log") }.sorted().flatMap { file in
                ((try? TestSupport.read(directory.appendingPathComponent(file))) ?? "").split(separator: "\n").map(String.init)
            }
            if predicate(lines) { return lines }
            try await Task.sleep(for: .milliseconds(500))
        }
        return lines
    }

    @Test(
        .enabled(if: DatabaseServers.postgresAvailable, "needs root, setpriv and postgresql-15"), .timeLimit(.minutes(10)))
    func psqlThroughTheProxy() async throws {
        let postgresListen = try TestSupport.freeLoopbackPort()
        let cluster = try ClusterFixture(
            clusterName: "pgproxy.example", authSection: "  tokens: [\"db:\(Self.token)\"]",
            proxySection: "  postgres_listen_addr: 127.0.0.1:\(postgresListen)")
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            let dir = try TestSupport.makeTemporaryDirectory(prefix: "pgproxy")
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
                try await exercise(cluster, postgres: postgres, agent: agent, postgresListen: postgresListen, dir: dir)
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

    func exercise(_ cluster: ClusterFixture, postgres: PostgresFixture, agent: DatabaseAgent, postgresListen: UInt16, dir: URL) async throws {
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

        // The database service joined with its token and heartbeats the database.
        var listed = try await tsh.run(["db", "ls"])
        for _ in 0..<60 where !listed.stdout.contains("pg ") {
            try await Task.sleep(for: .milliseconds(500))
            listed = try await tsh.run(["db", "ls"])
        }
        #expect(listed.exitCode == 0 && listed.stdout.contains("Test PostgreSQL") && listed.stdout.contains("env=test"), "\(listed)\n\(agent.log)")
        // The web UI lists it for the same user, with the connect command for the db user the role names.
        let web = WebClient(cluster: cluster)
        let webLogin = try await web.send(
            "POST", "/webapi/sessions", json: ["user": "bob", "password": TSHLoginTests.password, "otp_code": try await codes.next()])
        try #require(webLogin.status == 200, "\(webLogin)")
        let page = try await web.send("GET", "/web/databases")
        #expect(page.status == 200 && page.body.contains("Test PostgreSQL") && page.body.contains("env=test"), "\(page)")
        #expect(page.body.contains("tsh db connect pg --db-user=alice") && page.body.contains("href=\"/web/databases\" aria-current"), "\(page)")
        let signedOut = try await WebClient(cluster: cluster).send("GET", "/web/databases")
        #expect(signedOut.status == 303 && signedOut.header("location") == "/web/login", "\(signedOut)")
        let record = try await cluster.tctl(["get", "db_server/pg", "--format=json"])
        #expect(record.stdout.contains("\"addr\" : \"127.0.0.1:\(agent.port)\""), "\(record)")

        // tsh db login, config and env.
        let dbLogin = try await tsh.run(["db", "login", "pg", "--db-user=alice", "--db-name=postgres"])
        try #require(dbLogin.exitCode == 0, "\(dbLogin)")
        let config = try await tsh.run(["db", "config", "pg"])
        try #require(config.exitCode == 0, "\(config)")
        #expect(config.stdout.contains("Port:      \(postgresListen)"), "\(config)")
        let conninfo = try #require(
            config.stdout.split(separator: "\n").first { $0.contains("psql ") }.map { line -> String in
                var text = String(line.drop { $0 != "'" }.dropFirst())
                if text.hasSuffix("'") { text.removeLast() }
                return text
            }, "\(config)")
        #expect(conninfo.contains("sslmode=verify-ca") && conninfo.contains("user=alice") && conninfo.contains("dbname=postgres"))
        let env = try await tsh.run(["db", "env"])
        #expect(env.exitCode == 0 && env.stdout.contains("export PGPORT=\(postgresListen)") && env.stdout.contains("export PGUSER=alice"), "\(env)")

        // psql with tsh db config's options runs a query as alice.
        let selected = try await TestSupport.run(
            DatabaseServers.psql, [conninfo + " connect_timeout=20", "-tAc", "SELECT 1"], environment: ["PGPASSWORD": ""], timeout: .seconds(60))
        #expect(selected.exitCode == 0 && selected.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(selected)\n\(agent.log)\n\(postgres.log)")

        // tsh db connect runs the real psql.
        let connected = try await tsh.run(["db", "connect", "pg", "--", "-tAc", "SELECT current_user"])
        #expect(connected.exitCode == 0 && connected.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "alice", "\(connected)")

        // The role allows the database but not the db user postgres: refused before anything runs.
        let asPostgres = try await tsh.run(["db", "connect", "pg", "--db-user=postgres", "--", "-tAc", "SELECT 1"])
        #expect(asPostgres.exitCode != 0, "\(asPostgres)")
        #expect(asPostgres.stderr.contains("access to database pg as db user postgres"), "\(asPostgres)")
        // tctl access explain agrees, with the same reason, and allows alice.
        let explainDenied = try await cluster.tctl(["access", "explain", "--user=bob", "--db=pg", "--db-user=postgres"])
        #expect(explainDenied.exitCode == 0 && explainDenied.stdout.contains("Verdict: DENIED"), "\(explainDenied)")
        #expect(explainDenied.stdout.contains("db user postgres is not among [\"alice\"]"), "\(explainDenied)")
        #expect(explainDenied.stdout.contains("DB name: postgres"), "\(explainDenied)")
        let explainAllowed = try await cluster.tctl(["access", "explain", "--user=bob", "--db=pg", "--db-user=alice", "--db-name=postgres"])
        #expect(explainAllowed.stdout.contains("Verdict: ALLOWED"), "\(explainAllowed)")
        let explainMixed = try await cluster.tctl(["access", "explain", "--user=bob", "--db=pg", "--login=root"])
        #expect(explainMixed.exitCode != 0 && explainMixed.stderr.contains("--db and --db-user"), "\(explainMixed)")
        let explainUnknown = try await cluster.tctl(["access", "explain", "--user=bob", "--db=nosuch", "--db-user=alice"])
        #expect(explainUnknown.exitCode != 0 && explainUnknown.stderr.contains("no registered database is named \"nosuch\""), "\(explainUnknown)")
        try await Self.localTunnel(tsh, cluster: cluster, dir: dir)

        // The audit log: the query, the session's start and end, and the refusal with its reason.
        let lines = try await Self.auditLines(cluster) { lines in
            lines.contains { $0.contains("\"db.session.query\"") && $0.contains("SELECT current_user") }
                && lines.contains { $0.contains("\"TDB00W\"") && $0.contains("\"db_user\":\"postgres\"") }
                && lines.contains { $0.contains("\"db.session.end\"") }
        }
        let query = lines.first { $0.contains("\"db.session.query\"") && $0.contains("SELECT 1") }
        #expect(query != nil, "\(lines.filter { $0.contains("db.session") })")
        if let query {
            for field in ["\"db_service\":\"pg\"", "\"db_user\":\"alice\"", "\"db_name\":\"postgres\"", "\"db_protocol\":\"postgres\"", "\"db_uri\":\"localhost:\(postgres.port)\"", "\"user\":\"bob\""] {
                #expect(query.contains(field), "\(field) in \(query)")
            }
        }
        let refusal = lines.first { $0.contains("\"TDB00W\"") && $0.contains("\"db_user\":\"postgres\"") }
        #expect(refusal?.contains("db user postgres") == true, "\(lines.filter { $0.contains("db.session") })")
        #expect(lines.contains { $0.contains("\"TDB00I\"") && $0.contains("\"db_user\":\"alice\"") })
        try await Self.recordedStatements(tsh, lines: lines)

        // Certificates the proxy refuses: the plain login certificate (no route), one from another
        // CA, an expired one; and a client that skips TLS.
        let keys = tsh.tshHome.appendingPathComponent("keys/127.0.0.1")
        let base = "host=127.0.0.1 port=\(postgresListen) user=alice dbname=postgres connect_timeout=20"
        let plain = try await TestSupport.run(
            DatabaseServers.psql,
            ["\(base) sslmode=require sslcert=\(keys.path)/bob-x509.pem sslkey=\(keys.path)/bob.tls.key", "-tAc", "SELECT 1"],
            environment: ["PGPASSWORD": ""])
        #expect(plain.exitCode != 0 && plain.stderr.contains("no database route"), "\(plain)")

        let foreignKey = dir.appendingPathComponent("foreign.key").path
        let foreignCert = dir.appendingPathComponent("foreign.crt").path
        try await TestSupport.runChecked(
            "/usr/bin/openssl",
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", foreignKey, "-out", foreignCert,
             "-subj", "/CN=bob/O=pg-alice", "-days", "1"])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: foreignKey)
        let foreign = try await TestSupport.run(
            DatabaseServers.psql, ["\(base) sslmode=require sslcert=\(foreignCert) sslkey=\(foreignKey)", "-tAc", "SELECT 1"],
            environment: ["PGPASSWORD": ""])
        #expect(foreign.exitCode != 0 && !foreign.stdout.contains("1"), "\(foreign)")
        #expect(foreign.stderr.lowercased().contains("ssl") || foreign.stderr.contains("certificate"), "\(foreign)")

        let expiredFile = dir.appendingPathComponent("expired.id").path
        let expiredSigned = try await cluster.tctl(["auth", "sign", "--user=bob", "--ttl=1s", "--out=\(expiredFile)"])
        try #require(expiredSigned.exitCode == 0, "\(expiredSigned)")
        try await Task.sleep(for: .seconds(2))
        let expired = try await TestSupport.run(
            DatabaseServers.psql, ["\(base) sslmode=require sslcert=\(expiredFile) sslkey=\(expiredFile)", "-tAc", "SELECT 1"],
            environment: ["PGPASSWORD": ""])
        #expect(expired.exitCode != 0 && expired.stderr.contains("expired"), "\(expired)")

        let plaintext = try await TestSupport.run(
            DatabaseServers.psql, ["\(base) sslmode=disable", "-tAc", "SELECT 1"], environment: ["PGPASSWORD": ""])
        #expect(plaintext.exitCode != 0 && plaintext.stderr.contains("over TLS only"), "\(plaintext)")

        // A start-up message announcing 1 GB is refused after its first 8 bytes.
        let script = """
            import socket, struct, sys
            s = socket.create_connection(("127.0.0.1", \(postgresListen)), timeout=20)
            s.sendall(struct.pack("!II", 1 << 30, 196608))
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk: break
                data += chunk
            sys.stdout.write(data.decode("utf-8", "replace"))
            """
        let huge = try await TestSupport.run("/usr/bin/python3", ["-c", script], timeout: .seconds(60))
        #expect(huge.exitCode == 0 && huge.stdout.contains("longer than the limit"), "\(huge)")

        // The proxy audits its refusals too.
        let proxyRefusals = try await Self.auditLines(cluster) { lines in
            lines.contains { $0.contains("\"TDB00W\"") && $0.contains("no database route") }
        }
        #expect(proxyRefusals.contains { $0.contains("\"TDB00W\"") && $0.contains("no database route") && $0.contains("\"user\":\"bob\"") })

        // The database down: a clear error naming it.
        await postgres.stop()
        let down = try await tsh.run(["db", "connect", "pg", "--db-user=alice", "--db-name=postgres", "--", "-tAc", "SELECT 1"])
        #expect(down.exitCode != 0 && down.stderr.contains("cannot reach database pg at localhost:\(postgres.port)"), "\(down)")

        // tsh db logout removes the certificate; config then says how to log in.
        let logout = try await tsh.run(["db", "logout", "pg"])
        #expect(logout.exitCode == 0 && logout.stdout.contains("Logged out of database pg"), "\(logout)")
        let after = try await tsh.run(["db", "config", "pg"])
        #expect(after.exitCode != 0 && after.stderr.contains("tsh db login pg"), "\(after)")
    }
}
