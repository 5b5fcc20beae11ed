import Foundation
import TeleportTestSupport
import Testing

/// Certificates from `tctl auth sign --format=db` in `dir`: the server's (`server.*`, for
/// localhost and 127.0.0.1) and a client's for each of `users` (`USER.*`).
private func signDatabaseFiles(_ cluster: ClusterFixture, in dir: URL, users: [String]) async throws {
    let server = try await cluster.tctl([
        "auth", "sign", "--format=db", "--host=localhost,127.0.0.1", "--out=\(dir.appendingPathComponent("server").path)", "--ttl=2190h",
    ])
    try #require(server.exitCode == 0, "\(server)")
    #expect(server.stdout.contains("server.crt"))
    for user in users {
        let client = try await cluster.tctl(["auth", "sign", "--format=db", "--user=\(user)", "--out=\(dir.appendingPathComponent(user).path)", "--ttl=1h"])
        try #require(client.exitCode == 0, "\(client)")
    }
    let key = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("server.key").path)
    #expect((key[.posixPermissions] as? Int) == 0o600)
}

/// A self-signed certificate for `CN=NAME` (a CA of its own, not the cluster's): `NAME.crt`, `NAME.key`.
private func foreignCertificate(_ name: String, in dir: URL) async throws -> (cert: String, key: String) {
    let cert = dir.appendingPathComponent("\(name).crt").path
    let key = dir.appendingPathComponent("\(name).key").path
    try await TestSupport.runChecked(
        "/usr/bin/openssl",
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=alice", "-days", "1"])
    try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
    return (cert, key)
}

/// `tctl auth sign --format=db` with a real PostgreSQL 15: the server runs on the signed
/// certificate; psql verifies it (`verify-full` against `server.cas`) and logs in as alice with a
/// client certificate under `cert` authentication. Certificates from elsewhere are refused.
@Suite("database CA with PostgreSQL", .serialized)
struct DatabaseCAPostgresTests {
    @Test(.enabled(if: DatabaseServers.postgresAvailable, "needs root, setpriv and postgresql-15"), .timeLimit(.minutes(5)))
    func postgresTrustsTheDatabaseCA() async throws {
        try await withCluster(try ClusterFixture(clusterName: "pgca.example")) { cluster in
            try await cluster.start()
            let dir = try TestSupport.makeTemporaryDirectory(prefix: "pgcerts")
            defer { try? FileManager.default.removeItem(at: dir) }
            try await signDatabaseFiles(cluster, in: dir, users: ["alice"])
            let exported = try await cluster.tctl(["auth", "export", "--type=db"])
            #expect(exported.exitCode == 0)
            #expect(exported.stdout == (try TestSupport.read(dir.appendingPathComponent("server.cas"))))

            let postgres = try await PostgresFixture(tls: TLSFiles(prefix: dir.appendingPathComponent("server").path))
            do {
                try await postgres.superuser("CREATE ROLE alice LOGIN")
                let ca = dir.appendingPathComponent("server.cas").path
                let alice = "sslmode=verify-full sslrootcert=\(ca) sslcert=\(dir.path)/alice.crt sslkey=\(dir.path)/alice.key"
                let selected = try await postgres.psql("user=alice " + alice, "SELECT 1")
                #expect(selected.exitCode == 0, "\(selected)\n\(postgres.log)")
                #expect(selected.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
                let whoami = try await postgres.psql("user=alice " + alice, "SELECT current_user")
                #expect(whoami.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "alice")

                // alice's certificate does not make her postgres.
                let asPostgres = try await postgres.psql("user=postgres " + alice, "SELECT 1")
                #expect(asPostgres.exitCode != 0)
                #expect(asPostgres.stderr.contains("certificate authentication failed"), "\(asPostgres)")

                // A client certificate for CN=alice from another CA.
                let foreign = try await foreignCertificate("alice-foreign", in: dir)
                let refused = try await postgres.psql(
                    "user=alice sslmode=verify-full sslrootcert=\(ca) sslcert=\(foreign.cert) sslkey=\(foreign.key)", "SELECT 1")
                #expect(refused.exitCode != 0)
                #expect(refused.stderr.contains("unknown ca"), "\(refused)")

                // No client certificate: cert authentication has nothing to check.
                let bare = try await postgres.psql("user=alice sslmode=verify-full sslrootcert=\(ca)", "SELECT 1")
                #expect(bare.exitCode != 0)

                // The cluster's own (host) CA does not vouch for the database: verify-full refuses it.
                let hostCA = try await cluster.tctl(["auth", "export", "--type=tls-host"])
                let hostCAFile = dir.appendingPathComponent("host-ca.pem")
                try TestSupport.write(hostCA.stdout, to: hostCAFile)
                let wrongRoot = try await postgres.psql(
                    "user=alice sslmode=verify-full sslrootcert=\(hostCAFile.path) sslcert=\(dir.path)/alice.crt sslkey=\(dir.path)/alice.key",
                    "SELECT 1")
                #expect(wrongRoot.exitCode != 0)
                #expect(wrongRoot.stderr.contains("certificate verify failed"), "\(wrongRoot)")
            } catch {
                await postgres.stop()
                throw error
            }
            await postgres.stop()
        }
    }
}

/// `tctl auth sign --format=db` with a real MariaDB: the server runs on the signed certificate;
/// the `mariadb` client verifies it (`--ssl-verify-server-cert`) and logs in as alice, an account
/// that `REQUIRE SUBJECT '/CN=alice'`; certificates from elsewhere or for another user are refused.
@Suite("database CA with MariaDB", .serialized)
struct DatabaseCAMariaDBTests {
    @Test(.enabled(if: DatabaseServers.mariaDBAvailable, "needs root, setpriv, mariadb-server and mariadb-client"), .timeLimit(.minutes(5)))
    func mariaDBTrustsTheDatabaseCA() async throws {
        try await withCluster(try ClusterFixture(clusterName: "mariaca.example")) { cluster in
            try await cluster.start()
            let dir = try TestSupport.makeTemporaryDirectory(prefix: "mariacerts")
            defer { try? FileManager.default.removeItem(at: dir) }
            try await signDatabaseFiles(cluster, in: dir, users: ["alice", "bob"])
            let mariadb = try await MariaDBFixture(tls: TLSFiles(prefix: dir.appendingPathComponent("server").path))
            do {
                try await mariadb.root(
                    "CREATE USER 'alice'@'%' REQUIRE SUBJECT '/CN=alice'; GRANT SELECT ON *.* TO 'alice'@'%';"
                        + "CREATE USER 'carol'@'%' REQUIRE X509;")
                let ca = dir.appendingPathComponent("server.cas").path
                func tls(_ user: String, cert: String? = nil, key: String? = nil) -> [String] {
                    ["--ssl-ca=\(ca)", "--ssl-cert=\(cert ?? dir.path + "/\(user).crt")", "--ssl-key=\(key ?? dir.path + "/\(user).key")",
                     "--ssl-verify-server-cert"]
                }
                let selected = try await mariadb.client(tls("alice") + ["-u", "alice"], "SELECT 1")
                #expect(selected.exitCode == 0, "\(selected)\n\(mariadb.log)")
                #expect(selected.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
                let whoami = try await mariadb.client(tls("alice") + ["-u", "alice"], "SELECT CURRENT_USER()")
                #expect(whoami.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "alice@%")

                // REQUIRE X509: any certificate from the database CA.
                let carol = try await mariadb.client(tls("bob") + ["-u", "carol"], "SELECT 1")
                #expect(carol.exitCode == 0, "\(carol)")

                // bob's certificate is not alice's subject.
                let bobAsAlice = try await mariadb.client(tls("bob") + ["-u", "alice"], "SELECT 1")
                #expect(bobAsAlice.exitCode != 0)
                #expect(bobAsAlice.stderr.contains("Access denied"), "\(bobAsAlice)")

                // CN=alice from another CA: the TLS handshake fails.
                let foreign = try await foreignCertificate("alice-foreign", in: dir)
                let refused = try await mariadb.client(tls("alice", cert: foreign.cert, key: foreign.key) + ["-u", "alice"], "SELECT 1")
                #expect(refused.exitCode != 0, "\(refused)")

                // No client certificate.
                let bare = try await mariadb.client(["--ssl-ca=\(ca)", "--ssl-verify-server-cert", "-u", "alice"], "SELECT 1")
                #expect(bare.exitCode != 0)
                #expect(bare.stderr.contains("Access denied"), "\(bare)")

                // The cluster's host CA does not vouch for the database server.
                let hostCA = try await cluster.tctl(["auth", "export", "--type=tls-host"])
                let hostCAFile = dir.appendingPathComponent("host-ca.pem")
                try TestSupport.write(hostCA.stdout, to: hostCAFile)
                let wrongRoot = try await mariadb.client(
                    ["--ssl-ca=\(hostCAFile.path)", "--ssl-cert=\(dir.path)/alice.crt", "--ssl-key=\(dir.path)/alice.key", "--ssl-verify-server-cert",
                     "-u", "alice"], "SELECT 1")
                #expect(wrongRoot.exitCode != 0, "\(wrongRoot)")
            } catch {
                await mariadb.stop()
                throw error
            }
            await mariadb.stop()
        }
    }
}

/// `tctl auth sign --format=db` refuses bad flags with one line naming the fix, and writes nothing.
@Suite("tctl auth sign --format=db: bad flags")
struct DatabaseSignFlagTests {
    @Test(.timeLimit(.minutes(3)))
    func badFlagsAreRefused() async throws {
        try await withCluster(try ClusterFixture(clusterName: "dbflags.example")) { cluster in
            try await cluster.start()
            let dir = try TestSupport.makeTemporaryDirectory(prefix: "dbflags")
            defer { try? FileManager.default.removeItem(at: dir) }
            let out = dir.appendingPathComponent("x").path
            let cases: [([String], String)] = [
                (["--format=db", "--out=\(out)"], "--format=db needs --host=NAMES"),
                (["--format=db", "--host=db.example.com", "--user=alice", "--out=\(out)"], "not both"),
                (["--format=db", "--host=,", "--out=\(out)"], "--host is empty"),
                (["--format=db", "--host=db example.com", "--out=\(out)"], "neither a DNS name nor an IP address"),
                (["--format=db", "--user=alice/CN=root", "--out=\(out)"], "is not a database user name"),
                (["--format=db", "--host=db.example.com", "--ttl=forever", "--out=\(out)"], "is not a duration"),
                (["--format=db", "--host=db.example.com", "--ttl=100000h", "--out=\(out)"], "at most 10 years"),
                (["--format=pem", "--host=db.example.com", "--out=\(out)"], "expected file, openssh or db"),
            ]
            for (arguments, message) in cases {
                let result = try await cluster.tctl(["auth", "sign"] + arguments)
                #expect(result.exitCode != 0, "\(arguments)")
                #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
                #expect(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(result.stderr)")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
            let export = try await cluster.tctl(["auth", "export", "--type=dbs"])
            #expect(export.exitCode != 0)
            #expect(export.stderr.contains("db"))
        }
    }
}
