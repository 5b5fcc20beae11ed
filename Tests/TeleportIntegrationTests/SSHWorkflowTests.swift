import Foundation
import TeleportTestSupport
import Testing

/// SSH as a new user meets it: invited, signed up, `tsh login` with password and TOTP, then
/// `tsh ssh`, `tsh scp` (100 MB both ways), plain OpenSSH `ssh`/`scp`/`sftp` through the block
/// `tsh config` prints, and an OpenSSH `sshd` registered as a node (host certificate from
/// `tctl auth sign --host`, user CA from `tctl auth export`) reached by `tsh` and by OpenSSH.
@Suite("SSH as a logged-in user: tsh scp, tsh config with OpenSSH, an OpenSSH sshd node", .serialized)
struct SSHWorkflowTests {
    @Test(.enabled(if: SSHDFixture.available, "needs root, openssh-server and openssh-client"), .timeLimit(.minutes(8)))
    func loggedInUser() async throws {
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        try await withCluster(try ClusterFixture(clusterName: "flow.example")) { cluster in
            var codes = try await TSHLoginTests.signUp(cluster)
            let proxy = "127.0.0.1:\(cluster.webPort)"
            let login = try await TSHLoginTests.login(
                tsh, ["--proxy=\(proxy)", "--user=joe", "--insecure"], password: TSHLoginTests.password, code: try await codes.next())
            try #require(login.status == 0, "\(login.transcript)")
            #expect(await TestSupport.waitForPort(cluster.proxyPort))

            let exit3 = try await tsh.run(["--insecure", "ssh", "root@testnode", "exit 3"])
            #expect(exit3.exitCode == 3, "\(exit3)")

            let work = try TestSupport.makeTemporaryDirectory(prefix: "flow")
            defer { try? FileManager.default.removeItem(at: work) }
            try await copiesWithTSHSCP(tsh, work: work)
            let config = try await writeSSHConfig(tsh, work: work)
            try await openSSHThroughConfig(tsh, cluster: cluster, config: config, work: work)
            try await openSSHNode(tsh, cluster: cluster, config: config, work: work)
            await cluster.stop()
        }
    }

    func sha256(_ path: String) async throws -> String {
        let result = try await TestSupport.run("/usr/bin/sha256sum", [path])
        return String(result.stdout.prefix(64))
    }

    /// `tsh scp`: 100 MB up and down with equal checksums, trees with -r, times with -p, errors.
    func copiesWithTSHSCP(_ tsh: TSHRunner, work: URL) async throws {
        let big = work.appendingPathComponent("big.bin").path
        let made = try await TestSupport.run("/bin/sh", ["-c", "head -c 104857600 /dev/urandom > \(big)"])
        try #require(made.exitCode == 0, "\(made)")
        let remoteDir = work.appendingPathComponent("remote")
        try FileManager.default.createDirectory(at: remoteDir, withIntermediateDirectories: true)

        let up = try await tsh.run(["--insecure", "scp", big, "root@testnode:\(remoteDir.path)/"], timeout: .seconds(300))
        #expect(up.exitCode == 0, "\(up)")
        let uploaded = remoteDir.appendingPathComponent("big.bin").path
        let original = try await sha256(big)
        #expect(try await sha256(uploaded) == original, "upload checksum")
        let back = work.appendingPathComponent("back.bin").path
        let down = try await tsh.run(["--insecure", "scp", "root@testnode:\(uploaded)", back], timeout: .seconds(300))
        #expect(down.exitCode == 0, "\(down)")
        #expect(try await sha256(back) == original, "download checksum")
        try? FileManager.default.removeItem(atPath: uploaded)
        try? FileManager.default.removeItem(atPath: back)

        // A tree with -r (and -p keeps the times): up to the node, then back under another name.
        let tree = work.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: tree.appendingPathComponent("a/b"), withIntermediateDirectories: true)
        try TestSupport.write("deep\n", to: tree.appendingPathComponent("a/b/c.txt"))
        try TestSupport.write("top\n", to: tree.appendingPathComponent("x.txt"), permissions: 0o640)
        _ = try await TestSupport.run("/usr/bin/touch", ["-d", "2001-02-03 04:05:06", tree.appendingPathComponent("x.txt").path])
        let noR = try await tsh.run(["--insecure", "scp", tree.path, "root@testnode:\(remoteDir.path)"])
        #expect(noR.exitCode == 1 && noR.stderr.contains("use -r"), "\(noR)")
        let treeUp = try await tsh.run(["--insecure", "scp", "-r", "-p", tree.path, "root@testnode:\(remoteDir.path)"])
        #expect(treeUp.exitCode == 0, "\(treeUp)")
        #expect((try? TestSupport.read(remoteDir.appendingPathComponent("tree/a/b/c.txt"))) == "deep\n")
        let attributes = try FileManager.default.attributesOfItem(atPath: remoteDir.appendingPathComponent("tree/x.txt").path)
        #expect((attributes[.posixPermissions] as? Int) == 0o640)
        #expect((attributes[.modificationDate] as? Date).map { Int($0.timeIntervalSince1970) } == 981_173_106, "\(attributes)")
        let copy = work.appendingPathComponent("copy")
        let treeDown = try await tsh.run(["--insecure", "scp", "-r", "root@testnode:\(remoteDir.path)/tree", copy.path])
        #expect(treeDown.exitCode == 0, "\(treeDown)")
        #expect((try? TestSupport.read(copy.appendingPathComponent("a/b/c.txt"))) == "deep\n")
        #expect((try? TestSupport.read(copy.appendingPathComponent("x.txt"))) == "top\n")

        let missing = try await tsh.run(["--insecure", "scp", "root@testnode:\(remoteDir.path)/nothing-here", work.path])
        #expect(missing.exitCode == 1 && missing.stderr.contains("no such file"), "\(missing)")
        let bothLocal = try await tsh.run(["--insecure", "scp", big, back])
        #expect(bothLocal.exitCode == 1 && bothLocal.stderr.contains("neither side"), "\(bothLocal)")
        let nodeToNode = try await tsh.run(["--insecure", "scp", "root@testnode:/etc/hostname", "root@testnode:/tmp/x"])
        #expect(nodeToNode.exitCode == 1 && nodeToNode.stderr.contains("not supported"), "\(nodeToNode)")
        let unknownHost = try await tsh.run(["--insecure", "scp", big, "root@nosuchnode:/tmp/"])
        #expect(unknownHost.exitCode == 1 && unknownHost.stderr.contains("nosuchnode"), "\(unknownHost)")
    }

    /// `tsh config` into an ssh_config file of its own.
    func writeSSHConfig(_ tsh: TSHRunner, work: URL) async throws -> String {
        let printed = try await tsh.run(["--insecure", "config"])
        try #require(printed.exitCode == 0, "\(printed)")
        #expect(printed.stdout.contains("ProxyCommand") && printed.stdout.contains("KnownHostsCommand"), "\(printed)")
        let path = work.appendingPathComponent("ssh_config").path
        try TestSupport.write(printed.stdout + "Host *\n    BatchMode yes\n    LogLevel ERROR\n", to: URL(fileURLWithPath: path))
        return path
    }

    /// Plain `ssh`, `scp` and `sftp` with only the `tsh config` block: host keys come from the
    /// cluster (StrictHostKeyChecking yes, no known_hosts file).
    func openSSHThroughConfig(_ tsh: TSHRunner, cluster: ClusterFixture, config: String, work: URL) async throws {
        let node = "testnode.\(cluster.clusterName)"
        let ssh = try await TestSupport.run(TestSupport.ssh, ["-F", config, "root@\(node)", "echo via-config; exit 6"], environment: tsh.environment)
        #expect(ssh.exitCode == 6 && ssh.stdout == "via-config\n", "\(ssh)")
        let file = work.appendingPathComponent("small.txt")
        try TestSupport.write("over scp\n", to: file)
        let target = work.appendingPathComponent("scp-copy.txt").path
        let scp = try await TestSupport.run("/usr/bin/scp", ["-F", config, file.path, "root@\(node):\(target)"], environment: tsh.environment)
        #expect(scp.exitCode == 0 && (try? TestSupport.read(URL(fileURLWithPath: target))) == "over scp\n", "\(scp)")
        let batch = work.appendingPathComponent("batch")
        try TestSupport.write("get \(target) \(work.path)/sftp-copy.txt\n", to: batch)
        let sftp = try await TestSupport.run("/usr/bin/sftp", ["-F", config, "-b", batch.path, "root@\(node)"], environment: tsh.environment)
        #expect(sftp.exitCode == 0, "\(sftp)")
        #expect((try? TestSupport.read(work.appendingPathComponent("sftp-copy.txt"))) == "over scp\n")
        // A node the cluster does not know is refused by the proxy.
        let unknown = try await TestSupport.run(TestSupport.ssh, ["-F", config, "root@ghost.\(cluster.clusterName)", "true"], environment: tsh.environment)
        #expect(unknown.exitCode == 255 && unknown.stderr.contains("no registered node"), "\(unknown)")
    }

    /// An OpenSSH sshd with a host certificate from the cluster, registered with `tctl create`.
    func openSSHNode(_ tsh: TSHRunner, cluster: ClusterFixture, config: String, work: URL) async throws {
        let hostKey = work.appendingPathComponent("legacy").path
        let signed = try await cluster.tctl(["auth", "sign", "--host=legacy,127.0.0.1", "--format=openssh", "--out=\(hostKey)"])
        try #require(signed.exitCode == 0, "\(signed)")
        let certificate = try await TestSupport.run(TestSupport.sshKeygen, ["-L", "-f", "\(hostKey)-cert.pub"])
        #expect(certificate.stdout.contains("host certificate") && certificate.stdout.contains("legacy"), "\(certificate)")
        let userCA = try await cluster.tctl(["auth", "export", "--type=user"])
        let sshd = try await SSHDFixture(trustedUserCAKeys: userCA.stdout, hostKey: hostKey)
        // An sshd with a key the cluster never signed, registered all the same.
        let impostor = try await SSHDFixture(trustedUserCAKeys: userCA.stdout)
        do {
            for (name, uuid, port) in [("legacy", "6f1c5f8e-7d0a-4c3b-9e11-000000000001", sshd.port), ("impostor", "6f1c5f8e-7d0a-4c3b-9e11-000000000002", impostor.port)] {
                let resource = work.appendingPathComponent("\(name).yaml")
                try TestSupport.write(
                    """
                    kind: node
                    version: v2
                    sub_kind: openssh
                    metadata:
                      name: \(uuid)
                      labels:
                        env: legacy
                    spec:
                      addr: 127.0.0.1:\(port)
                      hostname: \(name)

                    """, to: resource)
                let created = try await cluster.tctl(["create", resource.path])
                try #require(created.exitCode == 0, "\(created)")
            }
            var listed = try await tsh.run(["--insecure", "ls", "--format", "names"])
            for _ in 0..<100 where !listed.stdout.contains("impostor") {
                try await Task.sleep(for: .milliseconds(100))
                listed = try await tsh.run(["--insecure", "ls", "--format", "names"])
            }
            #expect(listed.stdout.contains("legacy"), "\(listed)")

            let viaTSH = try await tsh.run(["--insecure", "ssh", "root@legacy", "echo from-sshd; exit 7"])
            #expect(viaTSH.exitCode == 7 && viaTSH.stdout == "from-sshd\n", "\(viaTSH)\n\(sshd.log)")
            #expect(sshd.log.contains("Accepted publickey for root") && sshd.log.contains("ID joe"), "sshd checked joe's certificate:\n\(sshd.log)")
            let byAddress = try await tsh.run(["--insecure", "ssh", "-p", "\(sshd.port)", "root@127.0.0.1", "echo by-address"])
            #expect(byAddress.stdout == "by-address\n", "\(byAddress)")
            let fanOut = try await tsh.run(["--insecure", "ssh", "root@env=legacy", "echo hi"])
            #expect(fanOut.stdout.contains("[legacy] hi"), "\(fanOut)")
            let file = work.appendingPathComponent("to-legacy.txt")
            try TestSupport.write("to sshd\n", to: file)
            let scp = try await tsh.run(["--insecure", "scp", file.path, "root@legacy:\(work.path)/on-legacy.txt"])
            #expect(scp.exitCode == 0 && (try? TestSupport.read(work.appendingPathComponent("on-legacy.txt"))) == "to sshd\n", "\(scp)")
            let viaOpenSSH = try await TestSupport.run(
                TestSupport.ssh, ["-F", config, "root@legacy.\(cluster.clusterName)", "echo openssh-to-sshd"], environment: tsh.environment)
            #expect(viaOpenSSH.stdout == "openssh-to-sshd\n", "\(viaOpenSSH)")

            // The impostor's host key is not one the cluster vouches for: both clients refuse it.
            let refused = try await tsh.run(["--insecure", "ssh", "root@impostor", "echo should-not-run"])
            #expect(refused.exitCode == 255 && refused.stderr.contains("not one the cluster vouches for"), "\(refused)")
            #expect(!refused.stdout.contains("should-not-run"))
            let refusedOpenSSH = try await TestSupport.run(
                TestSupport.ssh, ["-F", config, "root@impostor.\(cluster.clusterName)", "echo should-not-run"], environment: tsh.environment)
            #expect(refusedOpenSSH.exitCode == 255 && !refusedOpenSSH.stdout.contains("should-not-run"), "\(refusedOpenSSH)")
        } catch {
            await sshd.stop()
            await impostor.stop()
            throw error
        }
        await sshd.stop()
        await impostor.stop()
    }
}
