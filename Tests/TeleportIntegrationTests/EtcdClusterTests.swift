import Foundation
import TeleportTestSupport
import Testing

/// `teleport start` with `storage: type: etcd` against a real etcd (TLS client certificates): the
/// cluster comes up, `tctl users add` + sign-up + `tsh login` work, and the state lives in etcd.
@Suite("a cluster on the etcd backend", .timeLimit(.minutes(5)), .enabled(if: EtcdServer.isInstalled, "etcd-server is not installed"))
struct EtcdClusterTests {
    @Test func teleportStartsOnEtcdAndUsersCanLogIn() async throws {
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
            let tsh = try TSHRunner()
            defer { tsh.cleanUp() }
            try await withCluster(try ClusterFixture(clusterName: "etcd.example", teleportSection: storage)) { cluster in
                var codes = try await TSHLoginTests.signUp(cluster)
                let login = try await TSHLoginTests.login(
                    tsh, ["--proxy=127.0.0.1:\(cluster.webPort)", "--user=joe", "--insecure"],
                    password: TSHLoginTests.password, code: try await codes.next())
                #expect(login.status == 0, "\(login.transcript)\n\(cluster.log)")
                #expect(login.transcript.contains("Logins:             joe, root"), "\(login.transcript)")
                // The user is in etcd, under the prefix, and not in a SQLite file.
                let keys = try await TestSupport.run(
                    "/usr/bin/curl",
                    [
                        "-s", "--cacert", etcd.path("ca.pem"), "--cert", etcd.path("client.pem"), "--key", etcd.path("client.key"),
                        "-X", "POST", "-d", "{\"key\":\"\(Data("/teleport/".utf8).base64EncodedString())\",\"range_end\":\"\(Data("/teleport0".utf8).base64EncodedString())\",\"keys_only\":true}",
                        "\(etcd.url)/v3/kv/range",
                    ])
                let names = Self.keys(keys.stdout)
                #expect(names.contains { $0.hasPrefix("/teleport/") && $0.contains("joe") }, "\(names)")
                #expect(!FileManager.default.fileExists(atPath: cluster.dataDir.appendingPathComponent("backend/sqlite.db").path))
            }
        }
    }

    private static func keys(_ json: String) -> [String] {
        struct Reply: Decodable {
            struct KV: Decodable { var key: Data }
            var kvs: [KV]?
        }
        let reply = try? JSONDecoder().decode(Reply.self, from: Data(json.utf8))
        return (reply?.kvs ?? []).map { String(decoding: $0.key, as: UTF8.self) }
    }
}
