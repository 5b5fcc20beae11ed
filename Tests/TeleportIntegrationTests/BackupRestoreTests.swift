import Crypto
import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// The seed's "Migrating Backends" walkthrough: `tctl get all > state.yaml` on a running cluster,
/// then `teleport start --config fresh.yaml --bootstrap state.yaml` on an empty data dir, and
/// `tctl --config fresh.yaml get all` shows the same state; certificates from the old cluster work.
/// The old cluster runs on SQLite; the new one on SQLite, or migrated to PostgreSQL or etcd (issue 18).
@Suite("backup and restore", .serialized)
struct BackupRestoreTests {
    /// The store the restored cluster runs on.
    enum Target: String, CaseIterable, Sendable {
        case sqlite, postgresql, etcd

        var available: Bool {
            switch self {
            case .sqlite: return true
            case .postgresql: return DatabaseServers.postgresAvailable
            case .etcd: return EtcdServer.isInstalled
            }
        }

        /// Runs `body` with the `teleport:` lines that put a cluster on this store.
        func withStorage(_ body: (String) async throws -> Void) async throws {
            switch self {
            case .sqlite:
                try await body("")
            case .postgresql:
                let server = try await SharedPostgresBackendServer.instance.server()
                let database = try await server.createDatabase()
                try await body(
                    """
                      storage:
                        type: postgresql
                        conn_string: "\(server.connString(database: database))"
                    """)
            case .etcd:
                try await EtcdServer.with { etcd in
                    try await body(
                        """
                          storage:
                            type: etcd
                            peers: ["\(etcd.url)"]
                            prefix: /teleport/
                            tls_cert_file: \(etcd.path("client.pem"))
                            tls_key_file: \(etcd.path("client.key"))
                            tls_ca_file: \(etcd.path("ca.pem"))
                        """)
                }
            }
        }
    }

    static let role = """
        kind: role
        metadata:
          name: dba
          description: database admins
        spec:
          options:
            max_session_ttl: 8h0m0s
          allow:
            logins: [postgres, '{{internal.logins}}']
            node_labels:
              env: [prod, staging]
              '*': '^db-[0-9]+$'
            rules:
            - resources: [node, session]
              verbs: [list, read]
          deny:
            logins: [root]
        """

    /// `tctl get all` output by `kind/name`, each resource as sorted JSON without its revision
    /// (the backend's write counter, which legitimately differs).
    static func normalized(_ yaml: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for resource in try ResourceCodec.decodeDocuments(yaml, source: "tctl get all") {
            var value = resource.value
            value.metadata.revision = nil
            result["\(resource.kind)/\(resource.name)"] = String(decoding: try ResourceCodec.json(value), as: UTF8.self)
        }
        return result
    }

    @Test(.timeLimit(.minutes(3)), arguments: Target.allCases.filter(\.available))
    func getAllThenBootstrapReproducesTheCluster(into target: Target) async throws {
        let tctl = try ClusterFixture.binary("tctl")
        let work = try TestSupport.makeTemporaryDirectory(prefix: "backup")
        defer { try? FileManager.default.removeItem(at: work) }
        let statePath = work.appendingPathComponent("state.yaml").path
        let identity = work.appendingPathComponent("joe.id").path
        let tokenValue = "0123456789abcdef0123456789abcdef"

        let backup: String = try await withCluster(try ClusterFixture(clusterName: "backup.example")) { old in
            try await old.start()
            let rolePath = work.appendingPathComponent("dba.yaml")
            try TestSupport.write(Self.role, to: rolePath)
            #expect(try await old.tctl(["create", rolePath.path]).exitCode == 0)
            #expect(try await old.tctl(["users", "add", "joe", "joe,root", "--roles=access,dba"]).exitCode == 0)
            #expect(try await old.tctl(["tokens", "add", "--type=node", "--value=\(tokenValue)", "--ttl=2h"]).exitCode == 0)
            #expect(try await old.tctl(["lock", "--user=mallory", "--message=left the company"]).exitCode == 0)
            let signed = try await old.tctl(["auth", "sign", "--user=joe", "--out=\(identity)", "--ttl=1h"])
            #expect(signed.exitCode == 0, "\(signed)")

            // The seed's form: global options first, output redirected to a file.
            let all = try await TestSupport.run(tctl, ["--config", old.configURL.path, "get", "all"])
            try #require(all.exitCode == 0, "\(all)")
            try TestSupport.write(all.stdout, to: URL(fileURLWithPath: statePath))
            #expect(await old.stop(), "the old cluster stops before the new one starts")
            return all.stdout
        }

        // What the backup holds: the three CAs with their private keys, the role, the user, the token.
        let resources = try ResourceCodec.decodeDocuments(backup, source: statePath)
        let cas = resources.compactMap { resource -> CertAuthority? in
            if case .certAuthority(let ca) = resource { return ca }
            return nil
        }
        // The database CA (X.509 only) is backed up and restored like the others.
        #expect(Set(cas.map(\.spec.type.rawValue)) == ["db", "host", "jwt", "user"])
        #expect(cas.first { $0.spec.type == .jwt }?.spec.activeKeys.jwt?.first?.privateKey?.contains("PRIVATE KEY") == true)
        #expect(cas.first { $0.spec.type == .db }?.spec.activeKeys.ssh.isEmpty == true)
        for ca in cas {
            #expect(ca.spec.activeKeys.ssh.allSatisfy { $0.privateKey?.contains("PRIVATE KEY") == true }, "\(ca.name) SSH key")
            #expect(ca.spec.activeKeys.tls.allSatisfy { $0.key?.contains("PRIVATE KEY") == true }, "\(ca.name) TLS key")
        }
        let before = try Self.normalized(backup)
        for key in ["cluster_name/cluster-name", "role/dba", "role/access", "user/joe", "lock/"] where !before.keys.contains(where: { $0.hasPrefix(key) }) {
            Issue.record("\(key) is missing from the backup: \(before.keys.sorted())")
        }
        #expect(before.keys.contains { $0.hasPrefix("token/") }, "\(before.keys.sorted())")

        try await target.withStorage { storage in
            try await withCluster(try ClusterFixture(clusterName: "backup.example", teleportSection: storage)) { fresh in
                try await fresh.start(["--bootstrap", statePath])
                let restored = try await TestSupport.run(tctl, ["--config", fresh.configURL.path, "get", "all"])
                try #require(restored.exitCode == 0, "\(restored)")
                let after = try Self.normalized(restored.stdout)
                #expect(after.keys.sorted() == before.keys.sorted())
                for (key, value) in before.sorted(by: { $0.key < $1.key }) {
                    // (CAs are not printed: their keys would fill the log.)
                    let shown = key.hasPrefix("cert_authority/") ? "" : "\nbefore: \(value)\nafter:  \(after[key] ?? "missing")"
                    #expect(after[key] == value, "\(key) differs after the restore\(shown)")
                }

                // The old cluster's user certificate is trusted by the new proxy (same user CA).
                let tsh = try ClusterFixture.binary("tsh")
                let listed = try await TestSupport.run(
                    tsh, ["-i", identity, "--proxy=127.0.0.1:\(fresh.webPort)", "--insecure", "ls", "--format", "names"])
                #expect(listed.exitCode == 0, "\(listed)")
                #expect(listed.stdout.split(separator: "\n").contains("testnode"), "\(listed)")
                // The join token is listed by the prefix of its hash (its value is never stored).
                let hash = SHA256.hash(data: Data(tokenValue.utf8)).map { String(format: "%02x", $0) }.joined()
                let tokens = try await fresh.tctl(["tokens", "ls"])
                #expect(tokens.stdout.contains(String(hash.prefix(12))), "\(tokens)")
                await fresh.stop()
            }
        }
    }
}
