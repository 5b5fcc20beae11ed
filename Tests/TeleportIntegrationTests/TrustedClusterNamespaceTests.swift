import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Trusted clusters (issue 20), "Done when", with a real network namespace: the root cluster
/// listens on this host; the leaf cluster (auth, proxy and node: one `teleport` process) runs
/// inside a namespace whose iptables fence lets it open connections only to the root proxy's web
/// and tunnel ports and lets nothing in. Trust is established with the seed's commands, the leaf
/// dials its tunnel out, and a root user reaches the leaf's node through it (the root never
/// connects to the leaf); the leaf's audit log holds the session with the root user's name.
@Suite("trusted clusters: a leaf behind a fence in a network namespace", .serialized)
struct TrustedClusterNamespaceIntegrationTests {
    typealias Base = TrustedClusterIntegrationTests
    typealias Access = TrustedClusterAccessIntegrationTests
    typealias Lab = TunnelNetworkTests

    @Test(
        "the leaf reaches only the root's proxy, nothing reaches the leaf; tsh clusters/ls/ssh --cluster through the leaf's tunnel; audited on the leaf",
        .enabled(if: TunnelNetworkTests.available, TunnelNetworkTests.skipReason), .timeLimit(.minutes(6)))
    func leafBehindFence() async throws {
        let namespace = try await NetworkNamespace.create()
        let proxyHost = namespace.hostAddress
        let root: ClusterFixture
        let leaf: ClusterFixture
        do {
            root = try Lab.exposedCluster("root.example", proxyHost: proxyHost, multiplexed: false)
            leaf = try ClusterFixture(clusterName: "leaf.example")
        } catch {
            await namespace.remove()
            throw error
        }
        let leafPID = PIDBox()
        do {
            try await run(root: root, leaf: leaf, namespace: namespace, leafPID: leafPID)
        } catch {
            Access.recordCrash(root, "root")
            Access.recordCrash(leaf, "leaf")
            await leafPID.stop()
            await root.cleanUp()
            await leaf.cleanUp()
            await namespace.remove()
            throw error
        }
        Access.recordCrash(root, "root")
        Access.recordCrash(leaf, "leaf")
        await leafPID.stop()
        await root.cleanUp()
        await leaf.cleanUp()
        await namespace.remove()
    }

    /// The leaf's daemon, started inside the namespace (stopped by PID).
    final class PIDBox: @unchecked Sendable {
        var pid: pid_t?
        func stop() async {
            guard let pid else { return }
            self.pid = nil
            await TestSupport.stopDaemon(pid)
        }
    }

    func run(root: ClusterFixture, leaf: ClusterFixture, namespace: NetworkNamespace, leafPID: PIDBox) async throws {
        let proxyHost = namespace.hostAddress
        let tunnelPort = try #require(Lab.tunnelPort(in: try TestSupport.read(root.configURL)))
        try await root.start()
        try await namespace.allowOnly([(proxyHost, root.webPort), (proxyHost, tunnelPort)])
        // The fence: the root's web port is reachable from the namespace, its SSH port is not, and
        // nothing on this host connects into the namespace.
        try await Lab.expectFenced(namespace, cluster: root, proxyHost: proxyHost)

        // The leaf runs inside the namespace (its ports are on the namespace's loopback).
        let (executable, arguments) = namespace.wrap(
            try ClusterFixture.binary("teleport"), ["start", "-c", leaf.configURL.path, "--diag-addr", "127.0.0.1:\(leaf.diagPort)"])
        leafPID.pid = try TestSupport.spawnDaemon(executable, arguments, logPath: leaf.logURL.path)
        func inLeaf(_ program: String, _ arguments: [String], timeout: Duration = .seconds(60)) async throws -> CommandResult {
            let (executable, wrapped) = namespace.wrap(program, arguments)
            return try await TestSupport.run(executable, wrapped, timeout: timeout)
        }
        func leafTCTL(_ arguments: [String]) async throws -> CommandResult {
            try await inLeaf(try ClusterFixture.binary("tctl"), ["-c", leaf.configURL.path] + arguments)
        }
        let access = Access()
        #expect(try await access.eventually {
            try await inLeaf("/usr/bin/curl", ["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(leaf.diagPort)/readyz"]).stdout == "200"
        }, "the leaf did not start:\n\(leaf.log.suffix(4000))")

        // Trust, with the seed's commands: a token on the root, a trusted_cluster on the leaf.
        let base = Base()
        let webProxy = "\(proxyHost):\(root.webPort)"
        let value = try base.token(from: try await root.tctl(["tokens", "add", "--type=trusted_cluster", "--ttl=15m"]).stdout)
        let created = try await leafTCTL(["create", try base.write(Base.trustYAML(token: value, webProxy: webProxy), "tc.yaml", in: leaf)])
        #expect(created.exitCode == 0, "\(created)\n\(leaf.log.suffix(3000))")
        #expect(try await access.eventually { try await root.tctl(["get", "rc"]).stdout.contains("connection: online") }, "\(leaf.log.suffix(3000))")

        // A root user: tsh clusters, ls and ssh --cluster reach the leaf's node through its tunnel.
        let prefix = try await Lab.identity(root, proxyHost: proxyHost)
        let tsh = try ClusterFixture.binary("tsh")
        let clusters = try await TestSupport.run(tsh, prefix + ["clusters"])
        #expect(clusters.exitCode == 0 && clusters.stdout.contains("leaf.example") && clusters.stdout.contains("online"), "\(clusters)")
        let listed = try await TestSupport.run(tsh, prefix + ["ls", "--cluster=leaf.example", "--format=names"])
        #expect(listed.exitCode == 0 && listed.stdout == "testnode\n", "\(listed)")
        let ran = try await TestSupport.run(
            tsh, prefix + ["ssh", "--cluster=leaf.example", "root@testnode", "echo fenced-$TELEPORT_CLUSTER_NAME-as-$TELEPORT_USERNAME; exit 3"],
            timeout: .seconds(90))
        #expect(ran.exitCode == 3 && ran.stdout == "fenced-leaf.example-as-joe\n", "\(ran)\n\(root.log.suffix(2000))\n\(leaf.log.suffix(3000))")

        // The leaf's audit log holds the session, with the root user's name and cluster.
        var starts = ""
        #expect(try await access.eventually {
            starts = try await leafTCTL(["events", "ls", "--type=session.start", "--format=json"]).stdout
            return starts.contains("\"user_cluster\"")
        }, "\(starts)")
        #expect(starts.contains("\"joe\"") && starts.contains("root.example"), "\(starts)")
        // Still fenced: nothing here reaches into the leaf's namespace.
        let inward = try await TestSupport.run("/usr/bin/curl", ["-s", "-m", "3", "-k", "https://\(namespace.address):\(leaf.webPort)/"])
        #expect(inward.exitCode == 28, "nothing connects into the leaf's namespace: \(inward)")
    }
}
