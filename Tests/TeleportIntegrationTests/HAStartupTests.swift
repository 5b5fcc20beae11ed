import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// Two `teleport start --roles=auth` processes started at the same instant on one empty store (real
/// PostgreSQL, real etcd): the cluster and each of its CAs are created exactly once (a
/// compare-and-swap create; the loser reads the winner's), and `tctl auth export` prints the same
/// keys from either auth server.
@Suite("two auth servers starting together", .timeLimit(.minutes(5)))
struct HAStartupTests {
    /// The CA types every cluster has (`CertAuthority.CAType.allCases`: user, host, db, jwt).
    static let caTypes = ["user", "host", "db", "jwt"]

    @Test(.enabled(if: DatabaseServers.postgresAvailable, "PostgreSQL 15 is not installed"))
    func onPostgres() async throws {
        try await PostgresBackendServer.with { server in
            let database = try await server.createDatabase()
            let audit = try await server.createDatabase()
            let storage = """
                  storage:
                    type: postgresql
                    conn_string: "\(server.connString(database: database))"
                    audit_events_uri: ["\(server.connString(database: audit))"]
                """
            try await startTogether(storage: storage, cluster: "pgstart.example") { first, second in
                // The shared audit log holds one `cert_authority.create` per CA type, whoever wrote it.
                for cluster in [first, second] {
                    let created = try await AuditEventsTests.events(cluster, ["--type=cert_authority.create"])
                    let types = created.compactMap { event -> String? in
                        if case .string(let type)? = event["cert_type"] { return type }
                        return nil
                    }
                    #expect(types.sorted() == Self.caTypes.sorted(), "\(created)")
                }
            }
        }
    }

    @Test(.enabled(if: EtcdServer.isInstalled, "etcd-server is not installed"))
    func onEtcd() async throws {
        try await EtcdServer.with { etcd in
            let storage = """
                  storage:
                    type: etcd
                    peers: ["\(etcd.url)"]
                    prefix: /teleport/
                    tls_cert_file: \(etcd.path("client.pem"))
                    tls_key_file: \(etcd.path("client.key"))
                    tls_ca_file: \(etcd.path("ca.pem"))
                """
            try await startTogether(storage: storage, cluster: "etcdstart.example") { _, _ in }
        }
    }

    /// Starts two auth servers on `storage` at once and checks that the cluster and each CA were
    /// created by exactly one of them and that both export the same CAs; then `more`.
    func startTogether(
        storage: String, cluster name: String, _ more: (ClusterFixture, ClusterFixture) async throws -> Void
    ) async throws {
        try await withCluster(try ClusterFixture(clusterName: name, teleportSection: storage)) { first in
            try await withCluster(try ClusterFixture(clusterName: name, teleportSection: storage)) { second in
                async let firstStarted: Void = first.start(["--roles=auth"])
                async let secondStarted: Void = second.start(["--roles=auth"])
                _ = try await (firstStarted, secondStarted)

                // Each creation is logged by the auth server whose create won: once in both logs together.
                let logs = first.log + second.log
                func count(_ needle: String) -> Int { logs.components(separatedBy: needle).count - 1 }
                #expect(count("created the cluster") == 1, "\(logs.suffix(6000))")
                #expect(count("created a certificate authority") == Self.caTypes.count, "\(logs.suffix(6000))")
                for type in Self.caTypes {
                    let lines = logs.split(separator: "\n").filter {
                        $0.contains("created a certificate authority") && $0.contains("tp.ca.type=\(type)")
                    }
                    #expect(lines.count == 1, "\(type): \(lines)")
                }

                // Both serve the same CAs: SSH keys (the default export), the host and user CAs'
                // certificates, and the database CA.
                for type in [[], ["--type=tls-host"], ["--type=tls-user"], ["--type=db"]] {
                    let a = try await first.tctl(["auth", "export"] + type)
                    let b = try await second.tctl(["auth", "export"] + type)
                    #expect(a.exitCode == 0 && b.exitCode == 0, "\(type): \(a)\n\(b)")
                    #expect(!a.stdout.isEmpty && a.stdout == b.stdout, "\(type): \(a.stdout)\n---\n\(b.stdout)")
                }
                let pins = [try await first.tctl(["status"]), try await second.tctl(["status"])].map { status in
                    status.stdout.split(separator: "\n").first { $0.contains("CA pin") }.map(String.init) ?? "none: \(status)"
                }
                #expect(pins[0] == pins[1] && pins[0].contains("sha256:"), "\(pins)")
                try await more(first, second)
            }
        }
    }
}
