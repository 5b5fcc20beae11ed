import Foundation
import TeleportTestSupport
import Testing

/// Trusted clusters (issue 20): the leaf follows the root's CA rotations, with two real `teleport`
/// processes. The root's proxy sends the root's current CAs on the leaf's tunnel; with `tctl auth
/// rotate --manual` on the root, a root user's certificate of the old user CA reaches the leaf's
/// node until the rotation completes, one of the new CA from `update_clients` on, and after
/// `standby` the leaf holds the new CA only (the old certificate is refused). A host CA rotation
/// on the root leaves the leaf's tunnel and access working, the leaf holding the new host CA.
@Suite("trusted clusters: the leaf follows the root's CA rotation (two real clusters)", .serialized)
struct TrustedClusterRotationIntegrationTests {
    typealias Base = TrustedClusterIntegrationTests
    typealias Access = TrustedClusterAccessIntegrationTests

    @Test("tctl auth rotate on the root (user, then host): the leaf takes the new CAs; old user certificates refused after standby", .timeLimit(.minutes(8)))
    func leafFollowsRootRotation() async throws {
        let root = try ClusterFixture(clusterName: "root.example")
        let leaf = try ClusterFixture(clusterName: "leaf.example")
        do {
            try await run(root: root, leaf: leaf)
        } catch {
            Access.recordCrash(root, "root")
            Access.recordCrash(leaf, "leaf")
            await root.cleanUp()
            await leaf.cleanUp()
            throw error
        }
        Access.recordCrash(root, "root")
        Access.recordCrash(leaf, "leaf")
        await root.cleanUp()
        await leaf.cleanUp()
    }

    /// The SSH fingerprints `tctl auth ls` lists for `cluster`'s CA of `type` in the section
    /// `local` (this cluster's) or trusted.
    static func fingerprints(_ listing: String, cluster: String, type: String, local: Bool) -> Set<String> {
        let parts = listing.components(separatedBy: "CA Keys for Trusted Clusters:")
        let section = local ? (parts.first ?? "") : (parts.count > 1 ? parts[1] : "")
        var result: Set<String> = []
        for line in section.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
            let row = local ? words.first == type : (words.count > 1 && words[0] == cluster && words[1] == type)
            guard row else { continue }
            for word in words where word.hasPrefix("SHA256:") { result.insert(word) }
        }
        return result
    }

    func run(root: ClusterFixture, leaf: ClusterFixture) async throws {
        try await root.start()
        try await leaf.start()
        let base = Base()
        let access = Access()
        let webProxy = "127.0.0.1:\(root.webPort)"
        let value = try base.token(from: try await root.tctl(["tokens", "add", "--type=trusted_cluster", "--ttl=15m"]).stdout)
        #expect(try await leaf.tctl(["create", try base.write(Base.trustYAML(token: value, webProxy: webProxy), "tc.yaml", in: leaf)]).exitCode == 0)
        #expect(try await access.eventually { try await root.tctl(["get", "rc"]).stdout.contains("connection: online") }, "\(root.log.suffix(3000))")
        let tsh = try ClusterFixture.binary("tsh")
        #expect(try await root.tctl(["users", "add", "joe", "root", "--roles=access"]).exitCode == 0)
        func sign(_ name: String) async throws -> String {
            let identity = root.directory.appendingPathComponent(name).path
            let signed = try await root.tctl(["auth", "sign", "--user=joe", "--out=\(identity)"])
            try #require(signed.exitCode == 0, "\(signed)")
            return identity
        }
        func sshLeaf(_ identity: String, _ marker: String) async throws -> CommandResult {
            try await TestSupport.run(
                tsh, ["-i", identity, "--proxy=\(webProxy)", "--insecure", "ssh", "--cluster=leaf.example", "root@testnode", "echo \(marker)-$TELEPORT_CLUSTER_NAME"],
                timeout: .seconds(90))
        }
        func updates() async throws -> String {
            try await leaf.tctl(["events", "ls", "--type=trusted_cluster.authorities.update", "--format=json"]).stdout
        }
        func phase(_ type: String, _ name: String) async throws {
            let moved = try await root.tctl(["auth", "rotate", "--manual", "--type=\(type)", "--phase=\(name)"])
            try #require(moved.exitCode == 0, "\(moved)")
        }
        /// Waits until the leaf holds exactly the root's current CA of `type`.
        func leafHoldsRoots(_ type: String) async throws -> Bool {
            try await access.eventually {
                let rootKeys = Self.fingerprints(try await root.tctl(["auth", "ls"]).stdout, cluster: "root.example", type: type, local: true)
                let leafKeys = Self.fingerprints(try await leaf.tctl(["auth", "ls"]).stdout, cluster: "root.example", type: type, local: false)
                return !rootKeys.isEmpty && rootKeys == leafKeys
            }
        }

        let old = try await sign("old.id")
        let before = try await sshLeaf(old, "before")
        #expect(before.exitCode == 0 && before.stdout == "before-leaf.example\n", "\(before)")
        #expect(try await updates().contains("T7011I") == false, "nothing to take before a rotation")

        // The user CA: init gives the root two keys; the leaf takes both.
        try await phase("user", "init")
        #expect(try await leafHoldsRoots("user"), "\(leaf.log.suffix(3000))")
        #expect(Self.fingerprints(try await leaf.tctl(["auth", "ls"]).stdout, cluster: "root.example", type: "user", local: false).count == 2)
        let taken = try await updates()
        #expect(taken.contains("T7011I") && taken.contains("root.example"), "\(taken)")
        try await phase("user", "update_clients")
        let new = try await sign("new.id")
        let withNew = try await sshLeaf(new, "new")
        #expect(withNew.exitCode == 0 && withNew.stdout == "new-leaf.example\n", "a certificate of the root's new user CA: \(withNew)\n\(leaf.log.suffix(3000))")
        let withOld = try await sshLeaf(old, "old")
        #expect(withOld.exitCode == 0 && withOld.stdout == "old-leaf.example\n", "the old CA is still trusted during the rotation: \(withOld)")
        try await phase("user", "update_servers")
        try await phase("user", "standby")
        #expect(try await leafHoldsRoots("user"), "\(leaf.log.suffix(3000))")
        #expect(Self.fingerprints(try await leaf.tctl(["auth", "ls"]).stdout, cluster: "root.example", type: "user", local: false).count == 1)
        let refused = try await sshLeaf(old, "should-not-run")
        #expect(refused.exitCode != 0 && !refused.stdout.contains("should-not-run"), "the old CA after standby: \(refused)")
        let after = try await sshLeaf(new, "after")
        #expect(after.exitCode == 0 && after.stdout == "after-leaf.example\n", "\(after)")

        // The host CA: through every phase the leaf keeps its tunnel (it redials trusting the new
        // CA as well) and ends holding the root's new host CA.
        for name in ["init", "update_clients", "update_servers", "standby"] {
            try await phase("host", name)
            #expect(try await leafHoldsRoots("host"), "host \(name): \(leaf.log.suffix(3000))")
            // The root's own proxy and node renew their identities (they look every 2 s): an
            // administrator moves phases minutes apart; moved too fast, the root's proxy would be
            // cut from its own auth service at standby, which is not what this test is about.
            try await Task.sleep(for: .seconds(12))
        }
        #expect(try await access.eventually { try await root.tctl(["get", "rc"]).stdout.contains("connection: online") }, "\(root.log.suffix(3000))")
        let renewed = try await sign("renewed.id")
        var afterHost = CommandResult(exitCode: -1, stdout: "", stderr: "")
        #expect(try await access.eventually {
            afterHost = try await sshLeaf(renewed, "host")
            return afterHost.exitCode == 0
        }, "\(afterHost)\n\(root.log.suffix(3000))\n\(leaf.log.suffix(3000))")
        #expect(afterHost.stdout == "host-leaf.example\n", "\(afterHost)")
    }
}
