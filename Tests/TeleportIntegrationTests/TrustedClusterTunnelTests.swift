import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// Trusted clusters (issue 20), step 2, with two real `teleport` processes: once trust is
/// established, the leaf's proxy keeps a reverse tunnel to the root's proxy; the root's
/// `remote_cluster` shows it `online` with a last heartbeat; `enabled: false` on the leaf closes it
/// (`offline`), `enabled: true` opens it again, and `tctl rm rc/NAME` on the root closes it for
/// good (the leaf's redials are refused and the record does not come back). A root user's `tsh
/// clusters` lists both; `tsh ssh --cluster=nosuch` names the clusters there are.
@Suite("trusted clusters: the leaf's reverse tunnel to the root (two real clusters)", .serialized)
struct TrustedClusterTunnelIntegrationTests {
    typealias Base = TrustedClusterIntegrationTests

    /// Waits (up to `seconds`) until `tctl get rc` on `root` satisfies `condition`; returns the last output.
    func waitForRC(_ root: ClusterFixture, seconds: Int = 60, _ condition: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(seconds)
        var last = ""
        while ContinuousClock.now < deadline {
            last = try await root.tctl(["get", "rc"]).stdout
            if condition(last) { return last }
            try await Task.sleep(for: .milliseconds(500))
        }
        Issue.record("tctl get rc did not reach the expected state in \(seconds) s; last:\n\(last)")
        return last
    }

    @Test("the leaf's tunnel makes the remote cluster online; disabling, enabling and tctl rm rc follow")
    func tunnelFollowsTrust() async throws {
        let root = try ClusterFixture(clusterName: "root.example")
        let leaf = try ClusterFixture(clusterName: "leaf.example")
        do {
            try await run(root: root, leaf: leaf)
        } catch {
            await root.cleanUp()
            await leaf.cleanUp()
            throw error
        }
        await root.cleanUp()
        await leaf.cleanUp()
    }

    func run(root: ClusterFixture, leaf: ClusterFixture) async throws {
        try await root.start()
        try await leaf.start()
        let base = Base()
        let webProxy = "127.0.0.1:\(root.webPort)"
        let added = try await root.tctl(["tokens", "add", "--type=trusted_cluster", "--ttl=15m"])
        let value = try base.token(from: added.stdout)
        let created = try await leaf.tctl(["create", try base.write(Base.trustYAML(token: value, webProxy: webProxy), "tc.yaml", in: leaf)])
        #expect(created.exitCode == 0, "\(created)\n\(leaf.log.suffix(3000))")

        // The leaf's proxy dials the root's tunnel address (found through the root proxy's ping).
        let online = try await waitForRC(root) { $0.contains("connection: online") }
        #expect(online.contains("last_heartbeat"), "\(online)")
        #expect(root.log.contains("reverse tunnel of leaf cluster established"), "\(root.log.suffix(3000))")
        #expect(leaf.log.contains("keeping a reverse tunnel to root cluster root.example"), "\(leaf.log.suffix(3000))")
        // The leaf's tunnel is not one of the root's agents: it is not closed as an unregistered node.
        try await Task.sleep(for: .seconds(20))
        #expect(try await root.tctl(["get", "rc"]).stdout.contains("connection: online"))
        #expect(!root.log.contains("no node or database service is registered for it"), "\(root.log.suffix(3000))")

        // A root user lists the clusters; another cluster name is refused, naming the clusters.
        #expect(try await root.tctl(["users", "add", "joe", "root"]).exitCode == 0)
        let identity = root.directory.appendingPathComponent("joe.id").path
        #expect(try await root.tctl(["auth", "sign", "--user=joe", "--out=\(identity)"]).exitCode == 0)
        let tsh = try ClusterFixture.binary("tsh")
        let tshBase = ["-i", identity, "--proxy=127.0.0.1:\(root.webPort)", "--insecure"]
        let clusters = try await TestSupport.run(tsh, tshBase + ["clusters"])
        #expect(clusters.exitCode == 0, "\(clusters)")
        let lines = clusters.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(lines.contains("root.example online root *"), "\(clusters.stdout)")
        #expect(lines.contains("leaf.example online leaf"), "\(clusters.stdout)")
        let json = try await TestSupport.run(tsh, tshBase + ["clusters", "--format=json"])
        #expect(json.stdout.contains("\"last_connected\""), "\(json)")
        let nosuch = try await TestSupport.run(tsh, tshBase + ["ssh", "--cluster=nosuch", "root@testnode", "echo ran"])
        #expect(nosuch.exitCode != 0)
        #expect(nosuch.stderr.contains("cluster \"nosuch\" is not known to root.example"), "\(nosuch)")
        #expect(nosuch.stderr.contains("root.example (root, online), leaf.example (leaf, online)"), "\(nosuch)")
        // Reaching the leaf's nodes through its tunnel: TrustedClusterAccessIntegrationTests.
        let proxyNosuch = try await TestSupport.run(tsh, tshBase + ["proxy", "ssh", "--cluster=nosuch", "root@testnode:\(root.sshPort)"])
        #expect(proxyNosuch.exitCode != 0 && proxyNosuch.stderr.contains("leaf.example (leaf, online)"), "\(proxyNosuch)")
        let lsNosuch = try await TestSupport.run(tsh, tshBase + ["ls", "--cluster=nosuch"])
        #expect(lsNosuch.exitCode != 0 && lsNosuch.stderr.contains("leaf.example (leaf, online)"), "\(lsNosuch)")
        let lsOwn = try await TestSupport.run(tsh, tshBase + ["ls", "--cluster=root.example", "--format=names"])
        #expect(lsOwn.stdout == "testnode\n", "\(lsOwn)")
        let own = try await TestSupport.run(tsh, tshBase + ["ssh", "--cluster=root.example", "root@testnode", "echo ran"])
        #expect(own.stdout == "ran\n", "\(own)")

        // enabled: false closes the tunnel; the root shows the leaf offline, its last heartbeat kept.
        let disabled = try await leaf.tctl(["create", "-f", try base.write(Base.trustYAML(token: "", webProxy: webProxy, enabled: false), "off.yaml", in: leaf)])
        #expect(disabled.exitCode == 0, "\(disabled)")
        let offline = try await waitForRC(root) { $0.contains("connection: offline") }
        #expect(offline.contains("last_heartbeat"), "\(offline)")
        #expect(leaf.log.contains("closing the reverse tunnel to root cluster root.example"), "\(leaf.log.suffix(3000))")

        // enabled: true opens it again without a token.
        let enabled = try await leaf.tctl(["create", "-f", try base.write(Base.trustYAML(token: "", webProxy: webProxy), "on.yaml", in: leaf)])
        #expect(enabled.exitCode == 0, "\(enabled)")
        _ = try await waitForRC(root) { $0.contains("connection: online") }

        // The root ends the trust: its proxy closes the tunnel and refuses the leaf's redials.
        let removed = try await root.tctl(["rm", "rc/leaf.example"])
        #expect(removed.exitCode == 0, "\(removed)")
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, !root.log.contains("reverse tunnel of leaf cluster closed") {
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(root.log.contains("reverse tunnel of leaf cluster closed"), "\(root.log.suffix(3000))")
        // The leaf keeps trying (its trust is still enabled), and is refused each time.
        let refusedBy = ContinuousClock.now + .seconds(60)
        var events = ""
        while ContinuousClock.now < refusedBy {
            events = try await root.tctl(["events", "ls", "--type=reverse_tunnel.rejected", "--format=json"]).stdout
            if events.contains("T9400W") { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(events.contains("T9400W"), "no refused tunnel was audited on the root:\n\(root.log.suffix(3000))")
        // No heartbeat brings the record back.
        try await Task.sleep(for: .seconds(12))
        #expect(!(try await root.tctl(["get", "rc"])).stdout.contains("leaf.example"))
    }
}
