import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import TeleportAPI
import TeleportTestSupport
import Testing

/// Trusted clusters (issue 20), root users on the leaf's nodes, with two real `teleport` processes
/// and real clients: once trust is established (role_map `access` → `access`), a root user's `tsh
/// ls`, `tsh ssh` (exit codes), `tsh scp` and OpenSSH through the root proxy's `proxy:%h:%p@LEAF`
/// subsystem reach the leaf's node through the leaf's tunnel; the leaf's audit log holds the
/// sessions with the root user's name, the mapped roles and the user's cluster. A root user whose
/// roles map to nothing is refused and audited on the leaf; a disabled trust gives a clear error.
@Suite("trusted clusters: root users reach the leaf's nodes through its tunnel (two real clusters)", .serialized)
struct TrustedClusterAccessIntegrationTests {
    typealias Base = TrustedClusterIntegrationTests

    @Test("tsh ls/ssh/scp --cluster=leaf and OpenSSH proxy:%h:%p@leaf; unmapped roles refused and audited; disabled trust")
    func rootUsersOnLeafNodes() async throws {
        let root = try ClusterFixture(clusterName: "root.example")
        let leaf = try ClusterFixture(clusterName: "leaf.example")
        do {
            try await run(root: root, leaf: leaf)
        } catch {
            Self.recordCrash(root, "root")
            Self.recordCrash(leaf, "leaf")
            await root.cleanUp()
            await leaf.cleanUp()
            throw error
        }
        Self.recordCrash(root, "root")
        Self.recordCrash(leaf, "leaf")
        await root.cleanUp()
        await leaf.cleanUp()
    }

    /// A crash report in a daemon's log, as an issue.
    static func recordCrash(_ fixture: ClusterFixture, _ name: String) {
        let log = fixture.log
        for marker in ["Program crashed", "Fatal error", "crashed:"] {
            if let found = log.range(of: marker) {
                Issue.record("the \(name) teleport crashed:\n\(log[log.index(found.lowerBound, offsetBy: -min(3000, log.distance(from: log.startIndex, to: found.lowerBound)))...].prefix(12000))")
                return
            }
        }
    }

    /// Polls `body` until it returns true, up to `seconds`.
    func eventually(_ seconds: Int = 60, _ body: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await body() { return true }
            try await Task.sleep(for: .milliseconds(500))
        }
        return false
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
        #expect(try await eventually { try await root.tctl(["get", "rc"]).stdout.contains("connection: online") }, "\(root.log.suffix(3000))")

        // joe (access → access on the leaf) and ann (editor: the role map gives nothing).
        let tsh = try ClusterFixture.binary("tsh")
        var identities: [String: String] = [:]
        for (user, roles) in [("joe", "access"), ("ann", "editor")] {
            #expect(try await root.tctl(["users", "add", user, "root", "--roles=\(roles)"]).exitCode == 0)
            let identity = root.directory.appendingPathComponent("\(user).id").path
            #expect(try await root.tctl(["auth", "sign", "--user=\(user)", "--out=\(identity)"]).exitCode == 0)
            identities[user] = identity
        }
        func tshAs(_ user: String, _ arguments: [String]) async throws -> CommandResult {
            try await TestSupport.run(
                tsh, ["-i", identities[user] ?? "", "--proxy=127.0.0.1:\(root.webPort)", "--insecure"] + arguments, timeout: .seconds(90))
        }

        // tsh ls: the leaf's nodes the mapped roles reach.
        let listed = try await tshAs("joe", ["ls", "--cluster=leaf.example", "--format=names"])
        #expect(listed.exitCode == 0 && listed.stdout == "testnode\n", "\(listed)\n\(leaf.log.suffix(3000))")

        // tsh ssh: the command runs on the leaf's node (its cluster name), with its exit code.
        let ran = try await tshAs("joe", ["ssh", "--cluster=leaf.example", "root@testnode", "echo on-$TELEPORT_CLUSTER_NAME-as-$TELEPORT_USERNAME; exit 7"])
        #expect(ran.exitCode == 7, "\(ran)\n\(root.log.suffix(2000))\n\(leaf.log.suffix(3000))")
        #expect(ran.stdout == "on-leaf.example-as-joe\n", "\(ran)")

        // tsh scp both ways.
        let work = try TestSupport.makeTemporaryDirectory(prefix: "leafscp")
        defer { try? FileManager.default.removeItem(at: work) }
        let payload = String(repeating: "leaf cluster copy\n", count: 5000)
        try TestSupport.write(payload, to: work.appendingPathComponent("up.txt"))
        let up = try await tshAs("joe", ["scp", "--cluster=leaf.example", work.appendingPathComponent("up.txt").path, "root@testnode:\(work.path)/on-leaf.txt"])
        #expect(up.exitCode == 0, "\(up)\n\(root.log.suffix(6000))\n\(leaf.log.suffix(3000))")
        let down = try await tshAs(
            "joe", ["scp", "--cluster=leaf.example", "root@testnode:\(work.path)/on-leaf.txt", work.appendingPathComponent("back.txt").path])
        #expect(down.exitCode == 0, "\(down)")
        #expect((try? String(contentsOf: work.appendingPathComponent("back.txt"), encoding: .utf8)) == payload)

        // OpenSSH through the root proxy's SSH port and the seed's subsystem proxy:%h:%p@leaf.
        let keyPath = root.directory.appendingPathComponent("joe-openssh").path
        #expect(try await root.tctl(["auth", "sign", "--user=joe", "--format=openssh", "--out=\(keyPath)"]).exitCode == 0)
        let sshConfig = root.directory.appendingPathComponent("ssh_config").path
        try TestSupport.write(
            """
            Host *
              IdentityFile \(keyPath)
              CertificateFile \(keyPath)-cert.pub
              IdentitiesOnly yes
              StrictHostKeyChecking no
              UserKnownHostsFile /dev/null
              LogLevel ERROR
              BatchMode yes

            """, to: URL(fileURLWithPath: sshConfig))
        let proxyCommand = "ProxyCommand=\(TestSupport.ssh) -F \(sshConfig) -p \(root.proxyPort) 127.0.0.1 -s proxy:%h:%p@leaf.example"
        let openssh = try await TestSupport.run(
            TestSupport.ssh, ["-F", sshConfig, "-o", proxyCommand, "root@testnode", "echo openssh-on-$TELEPORT_CLUSTER_NAME; exit 5"],
            timeout: .seconds(90))
        #expect(openssh.exitCode == 5 && openssh.stdout == "openssh-on-leaf.example\n", "\(openssh)\n\(leaf.log.suffix(3000))")

        // OpenSSH with tsh proxy ssh --cluster=LEAF as its ProxyCommand, with the key of tsh's
        // identity (the root proxy passes on the certificate of the key tsh authenticated with).
        let identityText = try String(contentsOfFile: identities["joe"] ?? "", encoding: .utf8)
        let keyStart = try #require(identityText.range(of: "-----BEGIN OPENSSH PRIVATE KEY-----"))
        let keyEnd = try #require(identityText.range(of: "-----END OPENSSH PRIVATE KEY-----"))
        let idKey = root.directory.appendingPathComponent("joe-id-key")
        try TestSupport.write(String(identityText[keyStart.lowerBound..<keyEnd.upperBound]) + "\n", to: idKey)
        _ = chmod(idKey.path, 0o600)
        let certLine = try #require(identityText.split(separator: "\n").first { $0.hasPrefix("ssh-ed25519-cert-v01@openssh.com ") })
        try TestSupport.write(String(certLine) + "\n", to: URL(fileURLWithPath: idKey.path + "-cert.pub"))
        let tshConfig = root.directory.appendingPathComponent("ssh_config_tsh").path
        try TestSupport.write(
            """
            Host *
              IdentityFile \(idKey.path)
              CertificateFile \(idKey.path)-cert.pub
              IdentitiesOnly yes
              StrictHostKeyChecking no
              UserKnownHostsFile /dev/null
              LogLevel ERROR
              BatchMode yes
              ProxyCommand \(tsh) -i \(identities["joe"] ?? "") --proxy=127.0.0.1:\(root.webPort) --insecure proxy ssh --cluster=leaf.example %r@%h:%p

            """, to: URL(fileURLWithPath: tshConfig))
        let tshProxied = try await TestSupport.run(
            TestSupport.ssh, ["-F", tshConfig, "root@testnode", "echo tsh-proxy-on-$TELEPORT_CLUSTER_NAME"], timeout: .seconds(90))
        #expect(tshProxied.exitCode == 0 && tshProxied.stdout == "tsh-proxy-on-leaf.example\n", "\(tshProxied)\n\(root.log.suffix(2000))")

        // The leaf's audit log: the sessions with the root user's name, mapped roles and cluster.
        var starts = ""
        #expect(try await eventually {
            starts = try await leaf.tctl(["events", "ls", "--type=session.start", "--format=json"]).stdout
            return starts.contains("\"user_cluster\"")
        }, "\(starts)")
        #expect(starts.contains("\"joe\"") && starts.contains("root.example") && starts.contains("\"access\""), "\(starts)")
        // The root's audit log has no session of its own for them.
        #expect(!(try await root.tctl(["events", "ls", "--type=session.start", "--format=json"])).stdout.contains("joe"))

        // ann's roles map to nothing: refused (ls and ssh), and audited on the leaf.
        let annList = try await tshAs("ann", ["ls", "--cluster=leaf.example"])
        #expect(annList.exitCode != 0 && annList.stderr.contains("has no roles in cluster leaf.example"), "\(annList)")
        let annSSH = try await tshAs("ann", ["ssh", "--cluster=leaf.example", "root@testnode", "echo should-not-run"])
        #expect(annSSH.exitCode != 0 && !annSSH.stdout.contains("should-not-run"), "\(annSSH)")
        #expect(annSSH.stderr.contains("has no roles in cluster leaf.example"), "\(annSSH)")
        let annSCP = try await tshAs("ann", ["scp", "--cluster=leaf.example", work.appendingPathComponent("up.txt").path, "root@testnode:\(work.path)/ann.txt"])
        #expect(annSCP.exitCode != 0 && !FileManager.default.fileExists(atPath: "\(work.path)/ann.txt"), "\(annSCP)")
        let denied = try await leaf.tctl(["events", "ls", "--type=trusted_cluster.user.denied", "--format=json"]).stdout
        #expect(denied.contains("T7010W") && denied.contains("\"ann\"") && denied.contains("root.example"), "\(denied)")

        // Labels on the leaf's remote_cluster decide who sees and reaches it: joe's roles have no
        // cluster_labels, so a labelled leaf is hidden from him; pat's leaf-prod role matches.
        let labelled = try await root.tctl(["create", "-f", try base.write(
            """
            kind: remote_cluster
            version: v3
            metadata:
              name: leaf.example
              labels:
                env: prod
            status:
              connection: online

            """, "rc.yaml", in: root)])
        #expect(labelled.exitCode == 0, "\(labelled)")
        #expect(try await root.tctl(["get", "rc"]).stdout.contains("env: prod"))
        let hidden = try await tshAs("joe", ["clusters"])
        #expect(hidden.exitCode == 0 && !hidden.stdout.contains("leaf.example"), "\(hidden)")
        let hiddenSSH = try await tshAs("joe", ["ssh", "--cluster=leaf.example", "root@testnode", "echo should-not-run"])
        #expect(hiddenSSH.exitCode != 0 && hiddenSSH.stderr.contains("is not known to root.example"), "\(hiddenSSH)")
        let hiddenOpenSSH = try await TestSupport.run(
            TestSupport.ssh, ["-F", sshConfig, "-o", proxyCommand, "root@testnode", "echo should-not-run"], timeout: .seconds(90))
        #expect(hiddenOpenSSH.exitCode != 0 && !hiddenOpenSSH.stdout.contains("should-not-run"), "\(hiddenOpenSSH)")
        let role = try await root.tctl(["create", try base.write(
            """
            kind: role
            version: v7
            metadata:
              name: leaf-prod
            spec:
              allow:
                cluster_labels:
                  env: prod

            """, "leaf-prod.yaml", in: root)])
        #expect(role.exitCode == 0, "\(role)")
        #expect(try await root.tctl(["users", "add", "pat", "root", "--roles=access,leaf-prod"]).exitCode == 0)
        identities["pat"] = root.directory.appendingPathComponent("pat.id").path
        #expect(try await root.tctl(["auth", "sign", "--user=pat", "--out=\(identities["pat"] ?? "")"]).exitCode == 0)
        let patClusters = try await tshAs("pat", ["clusters"])
        #expect(patClusters.stdout.contains("leaf.example"), "\(patClusters)")
        let patSSH = try await tshAs("pat", ["ssh", "--cluster=leaf.example", "root@testnode", "echo pat-on-$TELEPORT_CLUSTER_NAME"])
        #expect(patSSH.exitCode == 0 && patSSH.stdout == "pat-on-leaf.example\n", "\(patSSH)")
        // tctl create of a remote_cluster that no leaf wrote is refused.
        let invented = try await root.tctl(["create", "-f", try base.write(
            "kind: remote_cluster\nversion: v3\nmetadata:\n  name: nosuch.example\nstatus:\n  connection: online\n", "rc2.yaml", in: root)])
        #expect(invented.exitCode != 0 && invented.stderr.contains("no leaf cluster nosuch.example trusts this cluster"), "\(invented)")

        // Trust is one-way: a leaf user's credentials get nothing from the root's proxy.
        #expect(try await leaf.tctl(["users", "add", "lou", "root"]).exitCode == 0)
        let louIdentity = leaf.directory.appendingPathComponent("lou.id").path
        #expect(try await leaf.tctl(["auth", "sign", "--user=lou", "--out=\(louIdentity)"]).exitCode == 0)
        let lou = try await TestSupport.run(
            tsh, ["-i", louIdentity, "--proxy=127.0.0.1:\(root.webPort)", "--insecure", "ssh", "root@testnode", "echo should-not-run"],
            timeout: .seconds(90))
        #expect(lou.exitCode != 0 && !lou.stdout.contains("should-not-run"), "\(lou)")

        // The trust disabled on the leaf: the tunnel closes and the root user gets a clear error.
        let disabled = try await leaf.tctl(["create", "-f", try base.write(Base.trustYAML(token: "", webProxy: webProxy, enabled: false), "off.yaml", in: leaf)])
        #expect(disabled.exitCode == 0, "\(disabled)")
        #expect(try await eventually { try await root.tctl(["get", "rc"]).stdout.contains("connection: offline") })
        let off = try await tshAs("pat", ["ssh", "--cluster=leaf.example", "root@testnode", "echo should-not-run"])
        #expect(off.exitCode != 0 && off.stderr.contains("leaf cluster leaf.example is offline"), "\(off)")
        let offOpenSSH = try await TestSupport.run(
            TestSupport.ssh, ["-F", sshConfig, "-o", proxyCommand, "root@testnode", "echo should-not-run"], timeout: .seconds(90))
        #expect(offOpenSSH.exitCode != 0 && !offOpenSSH.stdout.contains("should-not-run"), "\(offOpenSSH)")
        // (OpenSSH prints only "subsystem request failed": the reason, sent as stderr data before
        // the failure reply, is not shown by it; tsh shows it, above.)
        #expect(offOpenSSH.stderr.contains("subsystem request failed"), "\(offOpenSSH)")
    }

    @Test("tsh join and tsh play --cluster=leaf; disabling the trust cuts an open session")
    func joinPlayAndCut() async throws {
        let root = try ClusterFixture(clusterName: "root.example")
        let leaf = try ClusterFixture(clusterName: "leaf.example")
        do {
            try await runJoinPlay(root: root, leaf: leaf)
        } catch {
            Self.recordCrash(root, "root")
            Self.recordCrash(leaf, "leaf")
            await root.cleanUp()
            await leaf.cleanUp()
            throw error
        }
        Self.recordCrash(root, "root")
        Self.recordCrash(leaf, "leaf")
        await root.cleanUp()
        await leaf.cleanUp()
    }

    func runJoinPlay(root: ClusterFixture, leaf: ClusterFixture) async throws {
        try await root.start()
        try await leaf.start()
        let base = Base()
        let webProxy = "127.0.0.1:\(root.webPort)"
        let value = try base.token(from: try await root.tctl(["tokens", "add", "--type=trusted_cluster", "--ttl=15m"]).stdout)
        #expect(try await leaf.tctl(["create", try base.write(Base.trustYAML(token: value, webProxy: webProxy), "tc.yaml", in: leaf)]).exitCode == 0)
        #expect(try await eventually { try await root.tctl(["get", "rc"]).stdout.contains("connection: online") }, "\(root.log.suffix(3000))")
        let tsh = try ClusterFixture.binary("tsh")
        var arguments: [String: [String]] = [:]
        for (user, roles) in [("joe", "access"), ("ann", "editor")] {
            #expect(try await root.tctl(["users", "add", user, "root", "--roles=\(roles)"]).exitCode == 0)
            let identity = root.directory.appendingPathComponent("\(user).id").path
            #expect(try await root.tctl(["auth", "sign", "--user=\(user)", "--out=\(identity)"]).exitCode == 0)
            arguments[user] = ["-i", identity, "--proxy=127.0.0.1:\(root.webPort)", "--insecure"]
        }
        let joe = arguments["joe"] ?? []
        let environment = ProcessInfo.processInfo.environment.merging(["TERM": "xterm"]) { $1 }

        // An interactive session on the leaf's node; the leaf's audit names it.
        let owner = try TSHTerminal(tsh, joe + ["ssh", "-t", "--cluster=leaf.example", "root@testnode"], environment: environment)
        do {
            try await owner.expect("# ")
        } catch {
            Issue.record("root:\n\(root.log.suffix(12000))\nleaf:\n\(leaf.log.suffix(6000))")
            throw error
        }
        var sid = ""
        for _ in 0..<150 where sid.isEmpty {
            let starts = try await AuditEventsTests.events(leaf, ["--type=session.start"])
            if case .string(let found)? = starts.first(where: { $0["user"] == .string("joe") && $0["interactive"] == .bool(true) })?["sid"] {
                sid = found
            } else {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        try #require(!sid.isEmpty, "the leaf recorded no session start:\n\(leaf.log.suffix(3000))")
        let listed = try await TestSupport.run(tsh, joe + ["sessions", "ls", "--cluster=leaf.example", "--format=json"])
        #expect(listed.exitCode == 0 && listed.stdout.contains(sid), "\(listed)")
        let annListed = try await TestSupport.run(tsh, (arguments["ann"] ?? []) + ["sessions", "ls", "--cluster=leaf.example"])
        #expect(annListed.exitCode != 0 && !annListed.stdout.contains(sid), "\(annListed)")

        // tsh join --cluster: the leaf lists the session for joe's mapped roles; joe watches it.
        let observer = try TSHTerminal(tsh, joe + ["join", "--cluster=leaf.example", sid], environment: environment)
        var joined = false
        for _ in 0..<150 where !joined {
            joined = try await AuditEventsTests.events(leaf, ["--type=session.join"]).contains { $0["sid"] == .string(sid) }
            if !joined { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(joined, "no join on the leaf:\n\(observer.transcript)\n\(leaf.log.suffix(3000))")
        owner.sendLine("echo live-on-leaf-$((3*3))")
        try await observer.expect("live-on-leaf-9")
        owner.sendLine("exit")
        #expect(try await owner.wait() == 0)
        _ = try? await observer.wait(timeout: .seconds(20))

        // tsh play --cluster: the leaf's recording, read with joe's mapped roles; ann gets nothing.
        var played = CommandResult(exitCode: -1, stdout: "", stderr: "")
        for _ in 0..<100 {
            played = try await TestSupport.run(tsh, joe + ["play", "--cluster=leaf.example", "--format=text", sid])
            if played.exitCode == 0 && played.stdout.contains("live-on-leaf-9") { break }
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(played.exitCode == 0 && played.stdout.contains("live-on-leaf-9"), "\(played)")
        let recordings = try await TestSupport.run(tsh, joe + ["recordings", "ls", "--cluster=leaf.example", "--format=json"])
        #expect(recordings.exitCode == 0 && recordings.stdout.contains(sid), "\(recordings)")
        #expect(!(try await TestSupport.run(tsh, joe + ["recordings", "ls", "--format=json"])).stdout.contains(sid), "the root lists its own")
        let annPlay = try await TestSupport.run(tsh, (arguments["ann"] ?? []) + ["play", "--cluster=leaf.example", "--format=text", sid])
        #expect(annPlay.exitCode != 0 && !annPlay.stdout.contains("live-on-leaf-9") && annPlay.stderr.contains("has no roles"), "\(annPlay)")
        #expect(!(try await TestSupport.run(tsh, joe + ["play", "--format=text", sid])).stdout.contains("live-on-leaf-9"), "the root holds no copy")

        // Disabling the trust on the leaf closes the tunnel, and with it the open session.
        let open = try TSHTerminal(tsh, joe + ["ssh", "-t", "--cluster=leaf.example", "root@testnode"], environment: environment)
        try await open.expect("# ")
        let disabled = try await leaf.tctl(["create", "-f", try base.write(Base.trustYAML(token: "", webProxy: webProxy, enabled: false), "off.yaml", in: leaf)])
        #expect(disabled.exitCode == 0, "\(disabled)")
        let status = try await open.wait(timeout: .seconds(60))
        #expect(status != 0, "the session ended with the trust:\n\(open.transcript)")
    }
}
