import Foundation
import Testing
import TeleportTestSupport

extension DatabaseAccessPostgresTests {
    /// `tsh proxy db pg --tunnel`: plain `psql "host=localhost port=N"` and psycopg connect with no
    /// certificate files; another local user is refused; without --tunnel the command says what to add.
    static func localTunnel(_ tsh: TSHRunner, cluster: ClusterFixture, dir: URL) async throws {
        let noTunnel = try await tsh.run(["proxy", "db", "pg"])
        #expect(noTunnel.exitCode != 0 && noTunnel.stderr.contains("--tunnel"), "\(noTunnel)")

        let port = try TestSupport.freeLoopbackPort()
        let log = dir.appendingPathComponent("tsh-proxy-db.log")
        let pid = try TestSupport.spawnDaemon(
            try ClusterFixture.binary("tsh"), ["proxy", "db", "pg", "--tunnel", "--port=\(port)", "--db-user=alice", "--db-name=postgres"],
            logPath: log.path, environment: tsh.environment)
        var output = ""
        for _ in 0..<120 where !output.contains("Started DB proxy") {
            try await Task.sleep(for: .milliseconds(100))
            output = (try? TestSupport.read(log)) ?? ""
        }
        do {
            try #require(output.contains("Started DB proxy on 127.0.0.1:\(port)"), "\(output)")
            #expect(output.contains("psql 'host=localhost port=\(port) user=alice dbname=postgres'"), "\(output)")
            let conninfo = "host=localhost port=\(port) user=alice dbname=postgres connect_timeout=20"
            let psql = try await TestSupport.run(DatabaseServers.psql, [conninfo, "-tAc", "SELECT current_user"], environment: ["PGSSLMODE": "prefer"])
            #expect(psql.exitCode == 0 && psql.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "alice", "\(psql)\n\((try? TestSupport.read(log)) ?? "")")
            // psycopg binds parameters server-side (Parse/Bind/Execute, 41 as a binary int2): audited with the values.
            let script = "import psycopg,sys\nwith psycopg.connect(sys.argv[1]) as c: print(c.execute('SELECT %s::int + 1', (41,)).fetchone()[0])"
            let python = try await TestSupport.run("/usr/bin/env", ["python3", "-c", script, conninfo])
            #expect(python.exitCode == 0 && python.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "42", "\(python)")
            let lines = try await auditLines(cluster) { lines in lines.contains { $0.contains("SELECT $1::int + 1") } }
            let executed = lines.first { $0.contains("\"db.session.query\"") && $0.contains("SELECT $1::int + 1") }
            #expect(executed?.contains("\"db_query_parameters\":[\"41\"]") == true, "\(lines.filter { $0.contains("db.session.query") })")
            // Another local user (nobody) is refused: the port carries root's certificate.
            let other = try await TestSupport.run(
                "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", DatabaseServers.psql, conninfo, "-tAc", "SELECT 1"],
                environment: ["HOME": "/tmp"])
            #expect(other.exitCode != 0 && other.stderr.contains("only the local user who started it"), "\(other)")
        } catch {
            await TestSupport.stopDaemon(pid)
            throw error
        }
        await TestSupport.stopDaemon(pid)
    }
}

extension DatabaseAccessMySQLTests {
    /// `tsh proxy db maria --tunnel`: the real `mariadb` client without TLS or certificate files
    /// through the web port (ALPN teleport-mysql); mysql-connector-python's prepared statements
    /// (binary protocol) are audited with their parameters; another local user is refused.
    static func localTunnel(_ tsh: TSHRunner, cluster: ClusterFixture, dir: URL) async throws {
        let port = try TestSupport.freeLoopbackPort()
        let log = dir.appendingPathComponent("tsh-proxy-db-maria.log")
        let pid = try TestSupport.spawnDaemon(
            try ClusterFixture.binary("tsh"), ["proxy", "db", "maria", "--tunnel", "--port=\(port)", "--db-user=alice"],
            logPath: log.path, environment: tsh.environment)
        var output = ""
        for _ in 0..<120 where !output.contains("Started DB proxy") {
            try await Task.sleep(for: .milliseconds(100))
            output = (try? TestSupport.read(log)) ?? ""
        }
        do {
            try #require(output.contains("Started DB proxy on 127.0.0.1:\(port)"), "\(output)")
            #expect(output.contains("mysql --host=127.0.0.1 --port=\(port) --protocol=TCP --user=alice"), "\(output)")
            let selected = try await client(port: port, ["--skip-ssl", "-u", "alice"], "SELECT CURRENT_USER()")
            #expect(selected.exitCode == 0 && selected.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "alice@%", "\(selected)\n\((try? TestSupport.read(log)) ?? "")")
            // Server-side prepared statements (COM_STMT_PREPARE / COM_STMT_EXECUTE, binary values). The proxy
            // greets as MySQL 8, so the driver would pick a MySQL-only collation that MariaDB lacks: name one.
            let script = """
                import mysql.connector, sys
                c = mysql.connector.connect(host="127.0.0.1", port=int(sys.argv[1]), user="alice", ssl_disabled=True, use_pure=True, connection_timeout=20, charset="utf8mb4", collation="utf8mb4_general_ci")
                cur = c.cursor(prepared=True)
                cur.execute("SELECT ? + 1, ?, ?", (41, "teleport", None))
                print(cur.fetchone())
                cur.execute("SELECT ? + 1, ?, ?", (99, "again", 2.5))
                print(cur.fetchone())
                c.close()
                """
            let python = try await TestSupport.run("/usr/bin/env", ["python3", "-c", script, String(port)], timeout: .seconds(60))
            #expect(python.exitCode == 0 && python.stdout.contains("42") && python.stdout.contains("teleport"), "\(python)")
            let lines = try await DatabaseAccessPostgresTests.auditLines(cluster) { lines in
                lines.contains { $0.contains("\"db.session.query\"") && $0.contains("\"db_query_parameters\":[\"99\"") }
            }
            let executed = lines.filter { $0.contains("\"db.session.query\"") && $0.contains("SELECT ? + 1, ?, ?") && $0.contains("db_query_parameters") }
            #expect(executed.contains { $0.contains("\"db_query_parameters\":[\"41\",\"teleport\",null]") }, "\(executed)")
            #expect(executed.contains { $0.contains("\"db_query_parameters\":[\"99\",\"again\",\"2.5\"]") }, "\(executed)")
            // Another local user (nobody) is refused: the port carries root's certificate.
            let other = try await TestSupport.run(
                "/usr/bin/setpriv",
                ["--reuid=65534", "--regid=65534", "--clear-groups", DatabaseServers.mariadb, "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1",
                 "-P", String(port), "--skip-ssl", "-u", "alice", "-e", "SELECT 1"],
                environment: ["HOME": "/tmp"])
            #expect(other.exitCode != 0 && other.stderr.contains("only the local user who started it"), "\(other)")
        } catch {
            await TestSupport.stopDaemon(pid)
            throw error
        }
        await TestSupport.stopDaemon(pid)
    }
}
