import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// MariaDB through the proxy: a cluster with `mysql_listen_addr`, a database service in its own
/// process (joined with a `db` token) serving a real MariaDB on a `tctl auth sign --format=db`
/// certificate, a user logged in with `tsh login`, and the real `mariadb` client. What the
/// PostgreSQL suite already covers for both protocols (expired and foreign-CA certificates, `tsh
/// db logout`) is not repeated; the wire-level refusals (a 16 MB handshake packet, truncated
/// fields, a 1 GB query) are also tested in process (`MySQLHandshakeTests`, `MySQLFrontendScannerTests`).
@Suite("database access: MySQL/MariaDB through the proxy", .serialized)
struct DatabaseAccessMySQLTests {
    static let roles = """
        kind: role
        version: v5
        metadata:
          name: maria-alice
        spec:
          allow:
            db_labels:
              env: test
            db_users: [alice]
            db_names: ['*']

        """

    static func databases(port: UInt16) -> String {
        """
          - name: maria
            description: Test MariaDB
            protocol: mysql
            uri: localhost:\(port)
            static_labels:
              env: test
            tls:
              mode: verify-full
        """
    }

    /// The mariadb client straight to the proxy's MySQL port.
    static func client(port: UInt16, _ arguments: [String], _ sql: String) async throws -> CommandResult {
        try await TestSupport.run(
            DatabaseServers.mariadb,
            ["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", String(port), "--connect-timeout=20", "-N", "-B"] + arguments + ["-e", sql],
            timeout: .seconds(60))
    }

    @Test(.enabled(if: DatabaseServers.mariaDBAvailable, "needs root, setpriv, mariadb-server and mariadb-client"), .timeLimit(.minutes(10)))
    func mariaDBThroughTheProxy() async throws {
        let mysqlListen = try TestSupport.freeLoopbackPort()
        let cluster = try ClusterFixture(
            clusterName: "myproxy.example", authSection: "  tokens: [\"db:\(DatabaseAccessPostgresTests.token)\"]",
            proxySection: "  mysql_listen_addr: 127.0.0.1:\(mysqlListen)")
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            let dir = try TestSupport.makeTemporaryDirectory(prefix: "myproxy")
            defer { try? FileManager.default.removeItem(at: dir) }
            let signed = try await cluster.tctl([
                "auth", "sign", "--format=db", "--host=localhost,127.0.0.1", "--out=\(dir.appendingPathComponent("server").path)", "--ttl=2190h",
            ])
            try #require(signed.exitCode == 0, "\(signed)")
            let mariadb = try await MariaDBFixture(tls: TLSFiles(prefix: dir.appendingPathComponent("server").path))
            let agent: DatabaseAccessPostgresTests.DatabaseAgent
            do {
                try await mariadb.root("CREATE USER 'alice'@'%' REQUIRE SUBJECT '/CN=alice'; GRANT SELECT ON *.* TO 'alice'@'%';")
                // Reached through its reverse tunnel (the PostgreSQL suite covers a service reached directly).
                agent = try DatabaseAccessPostgresTests.DatabaseAgent.start(
                    cluster: cluster, databases: Self.databases(port: mariadb.port), tunnel: true)
            } catch {
                await mariadb.stop()
                throw error
            }
            do {
                try await exercise(cluster, mariadb: mariadb, agent: agent, mysqlListen: mysqlListen, dir: dir)
            } catch {
                Issue.record("database agent log:\n\(agent.log)")
                await agent.stop()
                await mariadb.stop()
                throw error
            }
            await agent.stop()
            await mariadb.stop()
        }
    }

    func exercise(
        _ cluster: ClusterFixture, mariadb: MariaDBFixture, agent: DatabaseAccessPostgresTests.DatabaseAgent, mysqlListen: UInt16, dir: URL
    ) async throws {
        let rolesFile = dir.appendingPathComponent("roles.yaml")
        try TestSupport.write(Self.roles, to: rolesFile)
        let created = try await cluster.tctl(["create", rolesFile.path])
        try #require(created.exitCode == 0, "\(created)")
        let added = try await cluster.tctl(["users", "add", "bob", "--roles=maria-alice"])
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

        // The database service heartbeats the database; tsh db ls lists it.
        var listed = try await tsh.run(["db", "ls"])
        for _ in 0..<60 where !listed.stdout.contains("maria ") {
            try await Task.sleep(for: .milliseconds(500))
            listed = try await tsh.run(["db", "ls"])
        }
        #expect(listed.exitCode == 0 && listed.stdout.contains("Test MariaDB") && listed.stdout.contains("mysql"), "\(listed)\n\(agent.log)")

        // tsh db login and config: the port of mysql_listen_addr and a ready mysql line.
        let dbLogin = try await tsh.run(["db", "login", "maria", "--db-user=alice"])
        try #require(dbLogin.exitCode == 0, "\(dbLogin)")
        let config = try await tsh.run(["db", "config", "maria"])
        try #require(config.exitCode == 0, "\(config)")
        #expect(config.stdout.contains("Port:      \(mysqlListen)"), "\(config)")
        let line = try #require(config.stdout.split(separator: "\n").first { $0.contains("mysql --host=") }, "\(config)")
        let options = line.split(separator: " ").dropFirst(1).map { String($0).replacingOccurrences(of: "'", with: "") }
        #expect(options.contains("--port=\(mysqlListen)") && options.contains("--user=alice") && options.contains { $0.hasPrefix("--ssl-ca=") })
        let env = try await tsh.run(["db", "env"])
        #expect(env.exitCode == 0 && env.stdout.contains("export MYSQL_TCP_PORT=\(mysqlListen)"), "\(env)")

        // The mariadb client with tsh db config's options runs a query as alice.
        let selected = try await TestSupport.run(
            DatabaseServers.mariadb, ["--no-defaults", "--connect-timeout=20", "-N", "-B"] + options + ["-e", "SELECT 1"], timeout: .seconds(60))
        #expect(selected.exitCode == 0 && selected.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(selected)\n\(agent.log)\n\(mariadb.log)")

        // tsh db connect runs the real client; MariaDB checked alice's certificate subject.
        let connected = try await tsh.run(["db", "connect", "maria", "--", "-N", "-B", "-e", "SELECT CURRENT_USER()"])
        #expect(connected.exitCode == 0 && connected.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "alice@%", "\(connected)\n\(agent.log)")

        // Without a db name in the route, the database the client names is the session's.
        let named = try await tsh.run(["db", "connect", "maria", "--", "-N", "-B", "-D", "mysql", "-e", "SELECT DATABASE()"])
        #expect(named.exitCode == 0 && named.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "mysql", "\(named)")

        // A prepared statement and a multi-statement batch go through too.
        let prepared = try await tsh.run([
            "db", "connect", "maria", "--", "-N", "-B", "-e", "PREPARE s FROM 'SELECT ? + 1'; SET @a = 41; EXECUTE s USING @a; SELECT 'two'",
        ])
        #expect(prepared.exitCode == 0 && prepared.stdout.contains("42") && prepared.stdout.contains("two"), "\(prepared)")

        // The role allows db user alice only: root is refused before anything reaches MariaDB.
        let asRoot = try await tsh.run(["db", "connect", "maria", "--db-user=root", "--", "-e", "SELECT 1"])
        #expect(asRoot.exitCode != 0, "\(asRoot)")
        #expect(asRoot.stderr.contains("access to database maria as db user root") && asRoot.stderr.contains("1045"), "\(asRoot)")

        // The audit log: the queries with the session's fields, start and end, the refusal.
        let lines = try await DatabaseAccessPostgresTests.auditLines(cluster) { lines in
            lines.contains { $0.contains("\"db.session.query\"") && $0.contains("SELECT CURRENT_USER()") }
                && lines.contains { $0.contains("\"TDB00W\"") && $0.contains("\"db_user\":\"root\"") }
                && lines.contains { $0.contains("\"db.session.end\"") && $0.contains("\"db_protocol\":\"mysql\"") }
        }
        let query = lines.first { $0.contains("\"db.session.query\"") && $0.contains("SELECT CURRENT_USER()") }
        #expect(query != nil, "\(lines.filter { $0.contains("db.session") })")
        if let query {
            for field in [
                "\"db_service\":\"maria\"", "\"db_user\":\"alice\"", "\"db_protocol\":\"mysql\"", "\"db_uri\":\"localhost:\(mariadb.port)\"",
                "\"user\":\"bob\"",
            ] {
                #expect(query.contains(field), "\(field) in \(query)")
            }
        }
        #expect(lines.contains { $0.contains("\"db.session.query\"") && $0.contains("SET @a = 41") }, "each statement of a batch arrives as one COM_QUERY")
        let refusal = lines.first { $0.contains("\"TDB00W\"") && $0.contains("\"db_user\":\"root\"") }
        #expect(refusal?.contains("db user root") == true, "\(lines.filter { $0.contains("db.session") })")
        #expect(lines.contains { $0.contains("\"TDB00I\"") && $0.contains("\"db_user\":\"alice\"") && $0.contains("\"db_protocol\":\"mysql\"") })

        // Refused at the proxy: a client without TLS, the login certificate (no route), and a
        // client checking the proxy against another CA than the cluster's host CA.
        let plaintext = try await Self.client(port: mysqlListen, ["--skip-ssl", "-u", "alice"], "SELECT 1")
        #expect(plaintext.exitCode != 0 && plaintext.stderr.contains("over TLS only"), "\(plaintext)")

        let keys = tsh.tshHome.appendingPathComponent("keys/127.0.0.1")
        let plain = try await Self.client(
            port: mysqlListen,
            ["--ssl-ca=\(keys.path)/certs.pem", "--ssl-cert=\(keys.path)/bob-x509.pem", "--ssl-key=\(keys.path)/bob.tls.key", "-u", "alice"],
            "SELECT 1")
        #expect(plain.exitCode != 0 && plain.stderr.contains("no database route"), "\(plain)")

        let wrongCA = try await Self.client(
            port: mysqlListen,
            ["--ssl-ca=\(dir.path)/server.cas", "--ssl-cert=\(keys.path)/bob-db/maria-x509.pem", "--ssl-key=\(keys.path)/bob.tls.key", "-u", "alice"],
            "SELECT 1")
        #expect(wrongCA.exitCode != 0 && !wrongCA.stdout.contains("1"), "the client checks the proxy's CA: \(wrongCA)")

        // A handshake packet announcing 16 MB is refused after its 4-byte header.
        let script = """
            import socket, sys
            s = socket.create_connection(("127.0.0.1", \(mysqlListen)), timeout=20)
            greeting = s.recv(4096)
            s.sendall(b"\\xff\\xff\\xff\\x01")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk: break
                data += chunk
            sys.stdout.write(greeting[5:19].decode("utf-8", "replace") + "\\n" + data.decode("utf-8", "replace"))
            """
        let huge = try await TestSupport.run("/usr/bin/python3", ["-c", script], timeout: .seconds(60))
        #expect(huge.exitCode == 0 && huge.stdout.contains("Teleport") && huge.stdout.contains("longer than the limit"), "\(huge)")

        let proxyRefusals = try await DatabaseAccessPostgresTests.auditLines(cluster) { lines in
            lines.contains { $0.contains("\"TDB00W\"") && $0.contains("no database route") }
        }
        #expect(proxyRefusals.contains {
            $0.contains("\"TDB00W\"") && $0.contains("no database route") && $0.contains("\"db_protocol\":\"mysql\"") && $0.contains("\"user\":\"bob\"")
        })

        try await Self.localTunnel(tsh, cluster: cluster, dir: dir)

        // The proxy kept the database service's tunnel throughout (it once closed it 15 s after it
        // opened, for want of a node record: sessions were lost whenever the test ran longer).
        let proxyLog = (try? TestSupport.read(cluster.logURL)) ?? ""
        #expect(!proxyLog.contains("closing the reverse tunnel"), "\(proxyLog.split(separator: "\n").filter { $0.contains("reverse tunnel") })")

        // The database down: a line naming it.
        await mariadb.stop()
        let down = try await tsh.run(["db", "connect", "maria", "--db-user=alice", "--", "-e", "SELECT 1"])
        #expect(down.exitCode != 0 && down.stderr.contains("cannot reach database maria at localhost:\(mariadb.port)"), "\(down)")
    }
}
