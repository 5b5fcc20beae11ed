import Foundation
import TeleportTestSupport
import Testing

/// Trusted clusters (issue 20): plain OpenSSH reaches a leaf cluster's nodes through the root's
/// proxy, with two real `teleport` processes. `tsh config` (after `tsh login` to the root) writes a
/// `Host *.LEAF` block (`tsh proxy ssh --cluster=LEAF`, host keys from `tsh known-hosts
/// --cluster=LEAF`, strict checking), so `ssh LOGIN@NODE.LEAF` and `scp` work; `ssh -J
/// PROXY:3023 LOGIN@NODE.LEAF` sends a `direct-tcpip` channel the root's proxy routes through the
/// leaf's tunnel. A root user whose roles map to nothing is refused (and audited on the leaf);
/// an unknown cluster suffix is an unknown node of the root.
@Suite("trusted clusters: OpenSSH ssh -J and tsh config to NODE.LEAF (two real clusters)", .serialized)
struct TrustedClusterJumpIntegrationTests {
    typealias Base = TrustedClusterIntegrationTests
    typealias Access = TrustedClusterAccessIntegrationTests

    @Test("tsh config NODE.LEAF blocks with ssh and scp; ssh -J PROXY NODE.LEAF; unmapped user refused", .timeLimit(.minutes(8)))
    func openSSHToLeafNodes() async throws {
        let root = try ClusterFixture(clusterName: "root.example")
        let leaf = try ClusterFixture(clusterName: "leaf.example")
        let tsh = try TSHRunner()
        do {
            try await run(root: root, leaf: leaf, tsh: tsh)
        } catch {
            Access.recordCrash(root, "root")
            Access.recordCrash(leaf, "leaf")
            tsh.cleanUp()
            await root.cleanUp()
            await leaf.cleanUp()
            throw error
        }
        Access.recordCrash(root, "root")
        Access.recordCrash(leaf, "leaf")
        tsh.cleanUp()
        await root.cleanUp()
        await leaf.cleanUp()
    }

    func run(root: ClusterFixture, leaf: ClusterFixture, tsh: TSHRunner) async throws {
        // joe signs up on the root (role access, logins joe and root) and logs in with tsh.
        var codes = try await TSHLoginTests.signUp(root)
        try await leaf.start()
        let base = Base()
        let access = Access()
        let webProxy = "127.0.0.1:\(root.webPort)"
        let value = try base.token(from: try await root.tctl(["tokens", "add", "--type=trusted_cluster", "--ttl=15m"]).stdout)
        let created = try await leaf.tctl(["create", try base.write(Base.trustYAML(token: value, webProxy: webProxy), "tc.yaml", in: leaf)])
        #expect(created.exitCode == 0, "\(created)\n\(leaf.log.suffix(3000))")
        #expect(try await access.eventually { try await root.tctl(["get", "rc"]).stdout.contains("connection: online") }, "\(root.log.suffix(3000))")
        let login = try await TSHLoginTests.login(
            tsh, ["--proxy=\(webProxy)", "--user=joe", "--insecure"], password: TSHLoginTests.password, code: try await codes.next())
        try #require(login.status == 0, "\(login.transcript)")

        // tsh config: a block for the leaf before the root's, both with --cluster.
        let printed = try await tsh.run(["--insecure", "config"])
        try #require(printed.exitCode == 0, "\(printed)")
        let text = printed.stdout
        let leafBlock = try #require(text.range(of: "Host *.leaf.example\n"), "\(text)")
        let rootBlock = try #require(text.range(of: "Host *.root.example\n"), "\(text)")
        #expect(leafBlock.lowerBound < rootBlock.lowerBound, "\(text)")
        #expect(text.contains("proxy ssh --cluster=leaf.example %r@%h:%p") && text.contains("known-hosts --cluster=leaf.example %H"), "\(text)")
        let work = try TestSupport.makeTemporaryDirectory(prefix: "leafjump")
        defer { try? FileManager.default.removeItem(at: work) }
        let config = work.appendingPathComponent("ssh_config").path
        try TestSupport.write(text + "Host *\n    BatchMode yes\n    LogLevel ERROR\n", to: URL(fileURLWithPath: config))

        // tsh known-hosts --cluster=leaf: the leaf node's key under NODE.LEAF, no proxy line.
        let known = try await tsh.run(["--insecure", "known-hosts", "--cluster=leaf.example"])
        #expect(known.exitCode == 0 && known.stdout.contains("testnode.leaf.example") && !known.stdout.contains("root.example"), "\(known)")
        let knownNosuch = try await tsh.run(["--insecure", "known-hosts", "--cluster=nosuch.example"])
        #expect(knownNosuch.exitCode != 0 && knownNosuch.stderr.contains("is not known to root.example"), "\(knownNosuch)")

        // Plain ssh and scp to NODE.LEAF with strict host key checking (keys from the leaf).
        let ssh = try await TestSupport.run(
            TestSupport.ssh, ["-F", config, "root@testnode.leaf.example", "echo config-on-$TELEPORT_CLUSTER_NAME-as-$TELEPORT_USERNAME; exit 4"],
            environment: tsh.environment, timeout: .seconds(90))
        #expect(ssh.exitCode == 4 && ssh.stdout == "config-on-leaf.example-as-joe\n", "\(ssh)\n\(root.log.suffix(3000))\n\(leaf.log.suffix(3000))")
        let file = work.appendingPathComponent("up.txt")
        try TestSupport.write(String(repeating: "to the leaf\n", count: 2000), to: file)
        let copied = work.appendingPathComponent("copied.txt").path
        let scp = try await TestSupport.run(
            "/usr/bin/scp", ["-F", config, file.path, "root@testnode.leaf.example:\(copied)"], environment: tsh.environment, timeout: .seconds(90))
        #expect(scp.exitCode == 0 && (try? TestSupport.read(URL(fileURLWithPath: copied))) == (try? TestSupport.read(file)), "\(scp)")
        // The root's own block still reaches the root's node.
        let onRoot = try await TestSupport.run(
            TestSupport.ssh, ["-F", config, "root@testnode.root.example", "echo on-$TELEPORT_CLUSTER_NAME"], environment: tsh.environment,
            timeout: .seconds(90))
        #expect(onRoot.exitCode == 0 && onRoot.stdout == "on-root.example\n", "\(onRoot)")

        // ssh -J PROXY:3023 NODE.LEAF: the jump's direct-tcpip goes through the leaf's tunnel. The
        // proxy's key comes from tsh known-hosts (a file), the leaf node's from the leaf block.
        let proxyKnown = try await tsh.run(["--insecure", "known-hosts"])
        #expect(proxyKnown.exitCode == 0 && proxyKnown.stdout.contains("[127.0.0.1]:\(root.proxyPort)"), "\(proxyKnown)")
        let knownFile = work.appendingPathComponent("known_hosts")
        try TestSupport.write(proxyKnown.stdout, to: knownFile)
        let identity = try #require(Self.setting("IdentityFile", in: text))
        let certificate = try #require(Self.setting("CertificateFile", in: text))
        let jumpConfig = work.appendingPathComponent("ssh_config_jump").path
        try TestSupport.write(
            """
            Host 127.0.0.1
                IdentityFile \(identity)
                CertificateFile \(certificate)
                IdentitiesOnly yes
                UserKnownHostsFile \(knownFile.path)
                StrictHostKeyChecking yes

            """ + text + "Host *\n    BatchMode yes\n    LogLevel ERROR\n", to: URL(fileURLWithPath: jumpConfig))
        let jump = "joe@127.0.0.1:\(root.proxyPort)"
        let jumped = try await TestSupport.run(
            TestSupport.ssh, ["-F", jumpConfig, "-J", jump, "root@testnode.leaf.example", "echo jump-on-$TELEPORT_CLUSTER_NAME; exit 6"],
            environment: tsh.environment, timeout: .seconds(90))
        #expect(jumped.exitCode == 6 && jumped.stdout == "jump-on-leaf.example\n", "\(jumped)\n\(root.log.suffix(3000))\n\(leaf.log.suffix(3000))")
        // And to a root node through the same jump (no leaf suffix: the root's own node).
        let jumpedRoot = try await TestSupport.run(
            TestSupport.ssh, ["-F", jumpConfig, "-J", jump, "root@testnode.root.example", "echo jump-on-$TELEPORT_CLUSTER_NAME"],
            environment: tsh.environment, timeout: .seconds(90))
        #expect(jumpedRoot.exitCode == 0 && jumpedRoot.stdout == "jump-on-root.example\n", "\(jumpedRoot)")
        // A suffix that names no leaf is an unknown node of the root.
        let ghost = try await TestSupport.run(
            TestSupport.ssh, ["-F", jumpConfig, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-J", jump, "-p", "3022", "root@testnode.nosuch.example", "echo should-not-run"],
            environment: tsh.environment, timeout: .seconds(90))
        #expect(ghost.exitCode == 255 && !ghost.stdout.contains("should-not-run"), "\(ghost)")

        // The leaf's audit log holds the sessions, with the root user's name and cluster.
        var starts = ""
        #expect(try await access.eventually {
            starts = try await leaf.tctl(["events", "ls", "--type=session.start", "--format=json"]).stdout
            return starts.components(separatedBy: "\"user_cluster\"").count > 2
        }, "\(starts)")
        #expect(starts.contains("\"joe\"") && starts.contains("root.example"), "\(starts)")

        // ann's role (ops: login root on the root's nodes) maps to nothing on the leaf: her ssh -J
        // passes the root's proxy and is refused by the leaf, and audited there.
        let ops = try await root.tctl(["create", try base.write(
            """
            kind: role
            version: v7
            metadata:
              name: ops
            spec:
              allow:
                logins: [root]
                node_labels:
                  '*': '*'

            """, "ops.yaml", in: root)])
        #expect(ops.exitCode == 0, "\(ops)")
        #expect(try await root.tctl(["users", "add", "ann", "root", "--roles=ops"]).exitCode == 0)
        let annKey = work.appendingPathComponent("ann").path
        #expect(try await root.tctl(["auth", "sign", "--user=ann", "--format=openssh", "--out=\(annKey)"]).exitCode == 0)
        let annConfig = work.appendingPathComponent("ssh_config_ann").path
        try TestSupport.write(
            """
            Host *
              IdentityFile \(annKey)
              CertificateFile \(annKey)-cert.pub
              IdentitiesOnly yes
              StrictHostKeyChecking no
              UserKnownHostsFile /dev/null
              LogLevel ERROR
              BatchMode yes

            """, to: URL(fileURLWithPath: annConfig))
        let ann = try await TestSupport.run(
            TestSupport.ssh, ["-F", annConfig, "-J", "root@127.0.0.1:\(root.proxyPort)", "-p", "3022", "root@testnode.leaf.example", "echo should-not-run"],
            timeout: .seconds(90))
        #expect(ann.exitCode == 255 && !ann.stdout.contains("should-not-run"), "\(ann)")
        // The same key reaches the root's own node through the same jump (the refusal is the leaf's).
        let annRoot = try await TestSupport.run(
            TestSupport.ssh, ["-F", annConfig, "-J", "root@127.0.0.1:\(root.proxyPort)", "-p", "3022", "root@testnode.root.example", "echo ann-on-$TELEPORT_CLUSTER_NAME"],
            timeout: .seconds(90))
        #expect(annRoot.exitCode == 0 && annRoot.stdout == "ann-on-root.example\n", "\(annRoot)")
        var denied = ""
        #expect(try await access.eventually {
            denied = try await leaf.tctl(["events", "ls", "--type=trusted_cluster.user.denied", "--format=json"]).stdout
            return denied.contains("\"ann\"")
        }, "\(denied)\n\(ann)\n\(root.log.suffix(3000))")
        #expect(denied.contains("T7010W") && denied.contains("root.example"), "\(denied)")

        // tctl access explain on the leaf, for root users given their root roles: ann's ops maps
        // to nothing; joe's access maps to access, which allows root (his login trait) and not
        // another login; a root this leaf does not trust is a clear error.
        func explain(_ arguments: [String]) async throws -> CommandResult {
            try await leaf.tctl(["access", "explain", "--root-cluster=root.example", "--node=testnode"] + arguments)
        }
        let explainAnn = try await explain(["--user=ann", "--roles=ops", "--logins=root", "--login=root"])
        #expect(explainAnn.exitCode == 0 && explainAnn.stdout.contains("Mapped:  no roles") && explainAnn.stdout.contains("Verdict: DENIED"), "\(explainAnn)")
        #expect(explainAnn.stdout.contains("role_map: access -> access"), "\(explainAnn)")
        let explainJoe = try await explain(["--user=joe", "--roles=access", "--logins=joe,root", "--login=root"])
        #expect(explainJoe.exitCode == 0 && explainJoe.stdout.contains("Mapped:  access") && explainJoe.stdout.contains("Verdict: ALLOWED"), "\(explainJoe)")
        let explainLogin = try await explain(["--user=joe", "--roles=access", "--logins=joe,root", "--login=postgres"])
        #expect(explainLogin.stdout.contains("Verdict: DENIED"), "\(explainLogin)")
        let explainNosuch = try await leaf.tctl(
            ["access", "explain", "--root-cluster=nosuch.example", "--node=testnode", "--user=joe", "--roles=access", "--login=root"])
        #expect(explainNosuch.exitCode != 0 && explainNosuch.stderr.contains("trusts no root cluster \"nosuch.example\""), "\(explainNosuch)")
        let explainBad = try await leaf.tctl(["access", "explain", "--root-cluster=root.example", "--user=joe", "--roles=access", "--app=x"])
        #expect(explainBad.exitCode != 0 && explainBad.stderr.contains("--root-cluster needs"), "\(explainBad)")

        // tctl update rc/LEAF --set-labels on the root: a labelled leaf is hidden from joe (his
        // roles have no cluster_labels); clearing the labels shows it again.
        let labelled = try await root.tctl(["update", "rc/leaf.example", "--set-labels=env=prod"])
        #expect(labelled.exitCode == 0 && labelled.stdout.contains("has been updated"), "\(labelled)")
        #expect(try await root.tctl(["get", "rc/leaf.example"]).stdout.contains("env: prod"))
        let hidden = try await tsh.run(["--insecure", "clusters"])
        #expect(hidden.exitCode == 0 && !hidden.stdout.contains("leaf.example"), "\(hidden)")
        let cleared = try await root.tctl(["update", "rc/leaf.example", "--set-labels", ""])
        #expect(cleared.exitCode == 0, "\(cleared)")
        let shown = try await tsh.run(["--insecure", "clusters"])
        #expect(shown.exitCode == 0 && shown.stdout.contains("leaf.example"), "\(shown)")
        let nosuchRC = try await root.tctl(["update", "rc/nosuch.example", "--set-labels=env=prod"])
        #expect(nosuchRC.exitCode != 0 && nosuchRC.stderr.contains("no leaf cluster \"nosuch.example\""), "\(nosuchRC)")
        let badLabels = try await root.tctl(["update", "rc/leaf.example", "--set-labels=prod"])
        #expect(badLabels.exitCode != 0 && badLabels.stderr.contains("is not KEY=VALUE"), "\(badLabels)")
        let badKind = try await root.tctl(["update", "role/access", "--set-labels=env=prod"])
        #expect(badKind.exitCode != 0 && badKind.stderr.contains("works on rc/NAME"), "\(badKind)")
    }

    /// The first `KEY "VALUE"` setting of an ssh_config text.
    static func setting(_ key: String, in text: String) -> String? {
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix(key + " ") else { continue }
            return String(trimmed.dropFirst(key.count + 1)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return nil
    }
}
