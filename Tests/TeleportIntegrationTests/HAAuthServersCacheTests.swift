import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The seed's `authservers.json`: a node configured with one auth server of two learns the other
/// from the cluster and keeps it in its data dir; after the configured one is killed (-9), the node
/// restarted with the same configuration reaches the other through the cache.
@Suite("authservers.json keeps a host's auth servers", .timeLimit(.minutes(5)), .enabled(if: EtcdServer.isInstalled, "etcd-server is not installed"))
struct HAAuthServersCacheTests {
    static let token = "ha-cache-static-token-0d2b7a"

    @Test func aNodeFindsAnAuthServerItWasNotConfiguredWith() async throws {
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
            let tokens = "  tokens: [\"node:\(Self.token)\"]"
            try await withCluster(try ClusterFixture(clusterName: "hacache.example", teleportSection: storage, authSection: tokens)) { first in
                try await withCluster(try ClusterFixture(clusterName: "hacache.example", teleportSection: storage, authSection: tokens)) { second in
                    async let firstStarted: Void = first.start(["--roles=auth"])
                    async let secondStarted: Void = second.start(["--roles=auth"])
                    _ = try await (firstStarted, secondStarted)
                    let agentSection = """
                          auth_servers: ["127.0.0.1:\(first.authPort)"]
                          auth_token: \(Self.token)
                        """
                    try await withCluster(try ClusterFixture(clusterName: "hacache.example", teleportSection: agentSection)) { node in
                        try await node.start(["--roles=node"])
                        try await exercise(first: first, second: second, node: node)
                    }
                }
            }
        }
    }

    func exercise(first: ClusterFixture, second: ClusterFixture, node: ClusterFixture) async throws {
        // The node lists the auth servers and writes both into its cache.
        let cache = node.dataDir.appendingPathComponent("authservers.json")
        let both = ["127.0.0.1:\(first.authPort)", "127.0.0.1:\(second.authPort)"]
        let written = try await HACluster.eventually(within: .seconds(40)) {
            let text = (try? String(contentsOf: cache, encoding: .utf8)) ?? ""
            return both.allSatisfy { text.contains("\"\($0)\"") }
        }
        #expect(written, "\((try? String(contentsOf: cache, encoding: .utf8)) ?? "no \(cache.path)")\n\(node.log.suffix(3000))")
        let mode = (try FileManager.default.attributesOfItem(atPath: cache.path)[.posixPermissions] as? Int ?? 0) & 0o777
        #expect(mode == 0o600)
        // The listing is for the cluster's hosts: a node's identity reads it, no certificate does not.
        let listing = try await HostTakeoverTests.authAPI(first, "GET", "/v1/authservers", identity: "node")
        #expect(listing.status == 200 && both.allSatisfy { listing.body.contains($0) }, "\(listing)")
        let anonymous = try await HostTakeoverTests.authAPI(first, "GET", "/v1/authservers")
        #expect(anonymous.status == 401 || anonymous.status == 403 || anonymous.status == 0, "\(anonymous)")
        #expect(!anonymous.body.contains("127.0.0.1:\(second.authPort)"), "\(anonymous)")

        // The node stops; its only configured auth server is killed; the node starts again with
        // the same configuration (and a new label, so its heartbeat shows where it went).
        await node.stop()
        let pid = try #require(first.pid)
        kill(pid, SIGKILL)
        await first.stop()
        let config = try String(contentsOf: node.configURL, encoding: .utf8)
        try TestSupport.write(config.replacingOccurrences(of: "env: test", with: "env: after-failover"), to: node.configURL)
        try await node.start(["--roles=node"])
        let reached = try await HACluster.eventually(within: .seconds(40)) {
            try await second.tctl(["nodes", "ls"]).stdout.contains("env=after-failover")
        }
        let listed = try await second.tctl(["nodes", "ls"])
        #expect(reached, "\(listed)\n\(node.log.suffix(4000))")
    }
}
