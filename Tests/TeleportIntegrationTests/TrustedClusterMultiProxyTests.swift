import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Trusted clusters (issue 20) with two root proxies behind one round-robin load balancer
/// (HAProxy, mode tcp): the root's auth+proxy daemon and a proxy-only daemon joined to it, both
/// multiplexed and advertising the balancer. The leaf (a real `teleport` process) trusts the root
/// through the balancer's address only; its proxy keeps a tunnel to each root proxy (the root's
/// proxies send it their list with the CAs; the agent pool of node agents dials the balancer
/// until it holds both), so a root user's `tsh ssh --cluster=leaf` works through either root proxy
/// directly; after one root proxy is killed, the other still serves it.
@Suite("trusted clusters: a leaf keeps a tunnel to every root proxy behind a load balancer", .serialized)
struct TrustedClusterMultiProxyIntegrationTests {
    typealias Daemon = MultiProxyTunnelTests.Daemon
    static let proxyToken = "trust-multiproxy-proxy-token-5d1e"

    func eventually(within limit: Duration, _ check: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await check() { return true }
            try await Task.sleep(for: .milliseconds(500))
        }
        return false
    }

    @Test(
        .enabled(if: FileManager.default.isExecutableFile(atPath: MultiProxyTunnelTests.haproxy), "needs haproxy (scripts/install-test-deps.sh)"),
        .timeLimit(.minutes(6)))
    func tunnelToEachRootProxy() async throws {
        let lbPort = try TestSupport.freeLoopbackPort()
        let root = try ClusterFixture(clusterName: "root.example")
        let leaf = try ClusterFixture(clusterName: "leaf.example")
        try TestSupport.write(
            """
            version: v3
            teleport:
              nodename: proxy-a
              data_dir: \(root.dataDir.path)
              log:
                severity: DEBUG
            auth_service:
              cluster_name: root.example
              listen_addr: 127.0.0.1:\(root.authPort)
              tokens:
                - "proxy:\(Self.proxyToken)"
            proxy_service:
              listen_addr: 127.0.0.1:\(root.proxyPort)
              web_listen_addr: 127.0.0.1:\(root.webPort)
              proxy_listener_mode: multiplex
              public_addr: 127.0.0.1:\(lbPort)
            ssh_service:
              enabled: false
            """, to: root.configURL)
        let proxyB = try Daemon(name: "root-proxy-b")
        let balancer = try Daemon(name: "haproxy")
        defer {
            for daemon in [balancer, proxyB] {
                if let pid = daemon.pid { kill(pid, SIGKILL) }
            }
        }
        do {
            try await exercise(root: root, leaf: leaf, proxyB: proxyB, balancer: balancer, lbPort: lbPort)
        } catch {
            Issue.record("leaf log:\n\(leaf.log.suffix(6000))\nproxy-b log:\n\(proxyB.log.suffix(4000))\nhaproxy:\n\(balancer.log.suffix(2000))")
            for daemon in [balancer, proxyB] { await daemon.cleanUp() }
            await root.cleanUp()
            await leaf.cleanUp()
            throw error
        }
        TrustedClusterAccessIntegrationTests.recordCrash(root, "root")
        TrustedClusterAccessIntegrationTests.recordCrash(leaf, "leaf")
        for daemon in [balancer, proxyB] { await daemon.cleanUp() }
        await root.cleanUp()
        await leaf.cleanUp()
    }

    func exercise(root: ClusterFixture, leaf: ClusterFixture, proxyB: Daemon, balancer: Daemon, lbPort: UInt16) async throws {
        let tsh = try ClusterFixture.binary("tsh")
        try await root.start()

        // Root proxy B (proxy-only, joined to A's auth service) and HAProxy in front of both.
        let webB = try await MultiProxyTunnelTests.startSecondProxy(
            proxyB, behind: balancer, lbPort: lbPort, proxyA: root.webPort, authPort: root.authPort, token: Self.proxyToken,
            tctl: { try await root.tctl($0) })

        // The leaf trusts the root through the balancer's address only.
        try await leaf.start()
        let base = TrustedClusterIntegrationTests()
        let added = try await root.tctl(["tokens", "add", "--type=trusted_cluster", "--ttl=15m"])
        let value = try base.token(from: added.stdout)
        let created = try await leaf.tctl(
            ["create", try base.write(TrustedClusterIntegrationTests.trustYAML(token: value, webProxy: "127.0.0.1:\(lbPort)"), "tc.yaml", in: leaf)])
        try #require(created.exitCode == 0, "\(created)\n\(leaf.log.suffix(3000))")

        // Each root proxy holds a tunnel of the leaf.
        func holds(_ log: String) -> Bool {
            log.split(separator: "\n").contains { $0.contains("reverse tunnel of leaf cluster established") && $0.contains("leaf.example") }
        }
        let both = try await eventually(within: .seconds(90)) { holds(root.log) && holds(proxyB.log) }
        #expect(both, "root proxy A holds the leaf's tunnel: \(holds(root.log)); B: \(holds(proxyB.log))\n\(leaf.log.suffix(4000))")

        // A root user reaches the leaf's node through either root proxy directly.
        #expect(try await root.tctl(["users", "add", "joe", "root", "--roles=access"]).exitCode == 0)
        let identity = root.directory.appendingPathComponent("joe.id").path
        #expect(try await root.tctl(["auth", "sign", "--user=joe", "--out=\(identity)"]).exitCode == 0)
        func ssh(via port: UInt16, _ marker: String) async throws -> CommandResult {
            try await TestSupport.run(
                tsh, ["-i", identity, "--proxy=127.0.0.1:\(port)", "--insecure", "ssh", "--cluster=leaf.example", "root@testnode", "echo \(marker)-$TELEPORT_CLUSTER_NAME"],
                timeout: .seconds(60))
        }
        for (port, marker) in [(root.webPort, "via-root-proxy-a"), (webB, "via-root-proxy-b"), (lbPort, "via-balancer")] {
            var last: CommandResult?
            let reached = try await eventually(within: .seconds(60)) {
                last = try await ssh(via: port, marker)
                return last?.exitCode == 0 && last?.stdout == "\(marker)-leaf.example\n"
            }
            #expect(reached, "\(marker): \(String(describing: last))\n\(leaf.log.suffix(3000))")
        }

        // Root proxy B is killed: the leaf's agent sees that tunnel end; proxy A still serves the leaf.
        proxyB.kill9()
        let ended = try await eventually(within: .seconds(60)) {
            leaf.log.split(separator: "\n").contains { $0.contains("reverse tunnel to proxy") && $0.contains("ended") }
        }
        #expect(ended, "\(leaf.log.suffix(3000))")
        for attempt in 0..<3 {
            let result = try await ssh(via: root.webPort, "still-\(attempt)")
            #expect(result.exitCode == 0 && result.stdout == "still-\(attempt)-leaf.example\n", "\(result)")
        }
        #expect(try await root.tctl(["get", "rc"]).stdout.contains("connection: online"))
    }
}
