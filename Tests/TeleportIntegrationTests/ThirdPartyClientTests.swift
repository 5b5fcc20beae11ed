import Foundation
import TeleportTestSupport
import Testing

/// Third-party SSH clients against a real cluster, as the README's "Third-party SSH clients"
/// section tells users to set them up: PuTTY's plink, paramiko and asyncssh (PyPI, scripts in `Fixtures/`)
/// through a `direct-tcpip` tunnel (as `ssh -J`) and through the `proxy:HOST:PORT@CLUSTER`
/// subsystem, OpenSSH `ssh -J` with strict host-key checking and a known_hosts file made only by
/// `tsh known-hosts`, and Ansible through the block `tsh config` prints. Any `direct-tcpip`
/// originator works (the SSH library alone accepts only IP literals); certificate-only offers are
/// refused with a log line that names the client and the fix.
@Suite("Third-party SSH clients: paramiko, asyncssh, OpenSSH ssh -J, Ansible, plink", .serialized)
struct ThirdPartyClientTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    @Test(.enabled(if: SSHDFixture.available, "needs root and openssh-client"), .timeLimit(.minutes(10)))
    func thirdPartyClients() async throws {
        for module in ["paramiko", "asyncssh"] {
            let found = try await TestSupport.run("/usr/bin/env", ["python3", "-c", "import \(module)"])
            try #require(found.exitCode == 0, "the Python module \(module) is missing: run scripts/install-test-deps.sh\n\(found)")
        }
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        try await withCluster(try ClusterFixture(clusterName: "interop.example")) { cluster in
            var codes = try await TSHLoginTests.signUp(cluster)
            let login = try await TSHLoginTests.login(
                tsh, ["--proxy=127.0.0.1:\(cluster.webPort)", "--user=joe", "--insecure"], password: TSHLoginTests.password, code: try await codes.next())
            try #require(login.status == 0, "\(login.transcript)")
            #expect(await TestSupport.waitForPort(cluster.proxyPort))

            let work = try TestSupport.makeTemporaryDirectory(prefix: "interop")
            defer { try? FileManager.default.removeItem(at: work) }
            let setup = try await Setup(tsh: tsh, cluster: cluster, work: work)
            try await openSSHJump(setup)
            try await pythonClients(setup)
            try await libraryLimits(setup)
            try await ansibleThroughTSHConfig(setup)
            try await plink(setup)
            await cluster.stop()
        }
    }

    /// What every client needs: the profile's key and certificate, the known_hosts file from
    /// `tsh known-hosts`, and a 10 MB file to copy.
    struct Setup {
        let tsh: TSHRunner
        let cluster: ClusterFixture
        let work: URL
        let key: String
        let certificate: String
        let knownHosts: String
        let proxyLine: String
        let bigFile: String
        let bigSHA256: String
        let remoteDir: String

        init(tsh: TSHRunner, cluster: ClusterFixture, work: URL) async throws {
            self.tsh = tsh
            self.cluster = cluster
            self.work = work
            let keys = tsh.tshHome.appendingPathComponent("keys/127.0.0.1")
            key = keys.appendingPathComponent("joe").path
            certificate = keys.appendingPathComponent("joe-cert.pub").path
            let listed = try await tsh.run(["--insecure", "known-hosts"])
            try #require(listed.exitCode == 0, "\(listed)")
            // The proxy's own SSH host key, named as OpenSSH looks it up for `ssh -J 127.0.0.1:PORT`.
            let proxyName = "[127.0.0.1]:\(cluster.proxyPort)"
            let proxyLines = listed.stdout.split(separator: "\n").filter { $0.split(separator: " ").first?.split(separator: ",").contains(Substring(proxyName)) == true }
            try #require(proxyLines.count == 1, "tsh known-hosts has no line for the proxy \(proxyName):\n\(listed.stdout)")
            proxyLine = String(proxyLines[0])
            #expect(!listed.stdout.contains("could not be read") && !listed.stdout.contains("does not vouch"), "\(listed.stdout)")
            // With a host name, only that host's lines: the proxy's name gives the proxy's line.
            let one = try await tsh.run(["--insecure", "known-hosts", proxyName])
            #expect(one.exitCode == 0 && one.stdout == proxyLine + "\n", "\(one)")
            knownHosts = work.appendingPathComponent("known_hosts").path
            try TestSupport.write(listed.stdout, to: URL(fileURLWithPath: knownHosts))
            bigFile = work.appendingPathComponent("ten-mb.bin").path
            let made = try await TestSupport.run("/bin/sh", ["-c", "head -c 10485760 /dev/urandom > \(bigFile)"])
            try #require(made.exitCode == 0, "\(made)")
            let sum = try await TestSupport.run("/usr/bin/sha256sum", [bigFile])
            bigSHA256 = String(sum.stdout.prefix(64))
            remoteDir = work.appendingPathComponent("remote").path
            try FileManager.default.createDirectory(atPath: remoteDir, withIntermediateDirectories: true)
        }

        /// An ssh_config for OpenSSH's `ssh -J`: the jump host connection reads the same file.
        func openSSHConfig(knownHosts: String) throws -> String {
            let path = work.appendingPathComponent("ssh_config-\(UUID().uuidString.prefix(8))").path
            try TestSupport.write(
                """
                Host *
                    IdentityFile \(key)
                    CertificateFile \(certificate)
                    IdentitiesOnly yes
                    UserKnownHostsFile \(knownHosts)
                    GlobalKnownHostsFile /dev/null
                    StrictHostKeyChecking yes
                    BatchMode yes
                    LogLevel ERROR

                """, to: URL(fileURLWithPath: path))
            return path
        }

        /// Runs a client script from `Fixtures/` against the cluster.
        func python(_ script: String, _ extra: [String]) async throws -> CommandResult {
            try await TestSupport.run(
                "/usr/bin/env",
                [
                    "python3", ThirdPartyClientTests.fixtures.appendingPathComponent(script).path,
                    "--proxy", "127.0.0.1:\(cluster.proxyPort)", "--node", "testnode:\(cluster.sshPort)", "--cluster", cluster.clusterName,
                    "--key", key, "--cert", certificate, "--known-hosts", knownHosts,
                ] + extra, timeout: .seconds(240))
        }
    }

    /// `ssh -J` with StrictHostKeyChecking=yes and only `tsh known-hosts` lines: the proxy's key is
    /// among them (without its line, OpenSSH refuses the proxy).
    func openSSHJump(_ setup: Setup) async throws {
        let config = try setup.openSSHConfig(knownHosts: setup.knownHosts)
        let jump = ["-F", config, "-J", "root@127.0.0.1:\(setup.cluster.proxyPort)", "-p", "\(setup.cluster.sshPort)", "root@testnode"]
        let ran = try await TestSupport.run(TestSupport.ssh, jump + ["echo via-jump; exit 5"])
        #expect(ran.exitCode == 5 && ran.stdout == "via-jump\n", "\(ran)")

        let withoutProxy = setup.work.appendingPathComponent("known_hosts-without-proxy").path
        let lines = try TestSupport.read(URL(fileURLWithPath: setup.knownHosts)).split(separator: "\n").filter { $0 != setup.proxyLine[...] }
        try TestSupport.write(lines.joined(separator: "\n") + "\n", to: URL(fileURLWithPath: withoutProxy))
        let refused = try await TestSupport.run(
            TestSupport.ssh,
            ["-F", try setup.openSSHConfig(knownHosts: withoutProxy), "-J", "root@127.0.0.1:\(setup.cluster.proxyPort)", "-p", "\(setup.cluster.sshPort)", "root@testnode", "true"])
        #expect(refused.exitCode == 255 && refused.stderr.contains("Host key verification failed"), "\(refused)")
    }

    /// paramiko and asyncssh with an IP originator: a `-J`-style tunnel and the `proxy:` subsystem,
    /// each with an exit status, a pty and a 10 MB SFTP round trip.
    func pythonClients(_ setup: Setup) async throws {
        for (script, name) in [("paramiko_client.py", "paramiko"), ("asyncssh_client.py", "asyncssh")] {
            for via in ["jump", "subsystem"] {
                let result = try await setup.python(script, ["--via", via, "--sftp-file", setup.bigFile, "--remote-dir", setup.remoteDir])
                let lines = Set(result.stdout.split(separator: "\n").map(String.init))
                #expect(result.exitCode == 0, "\(name) via \(via): \(result)")
                for expected in [
                    "proxy=ok", "node=ok", "exec-status=7", "exec-stdout=hello-from-\(name)", "exec-stderr=to-stderr", "pty-status=0",
                    "pty-output=stdin-is-a-tty|30 100", "sftp-sha256=\(setup.bigSHA256)", "done=ok",
                ] {
                    #expect(lines.contains(expected), "\(name) via \(via): no \(expected.debugDescription) in \(result)")
                }
                let copied = try await TestSupport.run("/usr/bin/sha256sum", ["\(setup.remoteDir)/\(name)-ten-mb.bin"])
                #expect(copied.stdout.hasPrefix(setup.bigSHA256), "\(name) via \(via): the uploaded copy differs: \(copied)")
                try? FileManager.default.removeItem(atPath: "\(setup.remoteDir)/\(name)-ten-mb.bin")
            }
        }
    }

    /// Any `direct-tcpip` originator works: paramiko's usual `("localhost", 22)` and `("", 0)`,
    /// and asyncssh's own `tunnel=` (originator `""`), which swift-nio-ssh alone cannot parse
    /// (it dropped the whole connection); and certificate-only offers are refused with a log line
    /// that names the client and the fix.
    func libraryLimits(_ setup: Setup) async throws {
        for (script, originator) in [("paramiko_client.py", "localhost"), ("paramiko_client.py", ""), ("asyncssh_client.py", "asyncssh-default")] {
            let result = try await setup.python(script, ["--originator", originator])
            #expect(result.exitCode == 0 && result.stdout.contains("exec-status=7") && result.stdout.contains("done=ok"), "\(script) with the originator \(originator.debugDescription): \(result)")
        }
        #expect(!setup.cluster.log.contains("non-IP originator"), "\(setup.cluster.log)")

        // Certificate-only offers are refused, and the log says what to do.
        let certificateOnly = try await setup.python("paramiko_client.py", ["--cert-only"])
        #expect(certificateOnly.exitCode == 4 && certificateOnly.stdout.contains("proxy-auth-failed="), "\(certificateOnly)")
        let logged = await TestSupport.eventually {
            setup.cluster.log.split(separator: "\n").contains {
                $0.contains("SSH client at 127.0.0.1:") && $0.contains("a certificate was offered; offer its plain key too")
            }
        }
        #expect(logged, "no log line for the certificate-only offer")
        // tsh offers its certificate first, then the plain key: no such line for it.
        let before = setup.cluster.log.components(separatedBy: "a certificate was offered").count
        let tshRun = try await setup.tsh.run(["--insecure", "ssh", "root@testnode", "true"])
        #expect(tshRun.exitCode == 0, "\(tshRun)")
        #expect(setup.cluster.log.components(separatedBy: "a certificate was offered").count == before)
    }

    /// PuTTY's plink with the plain key (converted by puttygen) and host keys pinned by the
    /// fingerprints of `tsh known-hosts` lines, to the node through `-proxycmd "plink ... -nc"`;
    /// `-cert` (PuTTY offers only the certificate then) is refused, with the log line.
    func plink(_ setup: Setup) async throws {
        let plink = "/usr/bin/plink"
        try #require(FileManager.default.isExecutableFile(atPath: plink), "plink is missing: run scripts/install-test-deps.sh")
        let ppk = setup.work.appendingPathComponent("joe.ppk").path
        let converted = try await TestSupport.run("/usr/bin/puttygen", [setup.key, "-O", "private", "-o", ppk])
        try #require(converted.exitCode == 0, "\(converted)")
        func fingerprint(_ line: String) async throws -> String {
            let file = setup.work.appendingPathComponent("fingerprint.pub")
            try TestSupport.write(line.split(separator: " ").dropFirst().joined(separator: " ") + "\n", to: file)
            let listed = try await TestSupport.run(TestSupport.sshKeygen, ["-l", "-f", file.path])
            return String(listed.stdout.split(separator: " ").dropFirst().first ?? "")
        }
        let known = try TestSupport.read(URL(fileURLWithPath: setup.knownHosts)).split(separator: "\n").map(String.init)
        let nodeName = "[testnode]:\(setup.cluster.sshPort)"
        let nodeLine = try #require(known.first { $0.split(separator: " ").first?.split(separator: ",").contains(Substring(nodeName)) == true })
        let proxyKey = try await fingerprint(setup.proxyLine)
        let nodeKey = try await fingerprint(nodeLine)
        #expect(proxyKey.hasPrefix("SHA256:") && nodeKey.hasPrefix("SHA256:"), "\(proxyKey) \(nodeKey)")
        var environment = setup.tsh.environment
        environment["HOME"] = setup.tsh.home.path
        let proxyHop = "\(plink) -batch -ssh -hostkey \(proxyKey) -i \(ppk) -P \(setup.cluster.proxyPort) root@127.0.0.1 -nc %host:%port"
        let runner = ThirdPartyClientTests.fixtures.appendingPathComponent("run_plink.py").path
        let ran = try await TestSupport.run(
            "/usr/bin/env", ["python3", runner, plink, "-batch", "-ssh", "-hostkey", nodeKey, "-i", ppk, "-proxycmd", proxyHop, "-P", "\(setup.cluster.sshPort)", "root@testnode", "echo via-plink; exit 3"],
            environment: environment)
        #expect(ran.exitCode == 3 && ran.stdout.contains("via-plink"), "\(ran)")

        let before = setup.cluster.log.components(separatedBy: "a certificate was offered").count
        let certificateOnly = try await TestSupport.run(
            "/usr/bin/env", ["python3", runner, plink, "-batch", "-ssh", "-hostkey", proxyKey, "-i", ppk, "-cert", setup.certificate, "-P", "\(setup.cluster.proxyPort)", "root@127.0.0.1", "true"],
            environment: environment)
        #expect(certificateOnly.exitCode != 0 && certificateOnly.stderr.contains("No supported authentication methods"), "\(certificateOnly)")
        let logged = await TestSupport.eventually { setup.cluster.log.components(separatedBy: "a certificate was offered").count > before }
        #expect(logged, "no log line for plink's certificate-only offer")
    }

    /// Ansible (ansible-core, ssh connection plugin) with only the `tsh config` block.
    func ansibleThroughTSHConfig(_ setup: Setup) async throws {
        let printed = try await setup.tsh.run(["--insecure", "config"])
        try #require(printed.exitCode == 0, "\(printed)")
        #expect(printed.stdout.contains("refuse certificate-only offers") && printed.stdout.contains("tsh known-hosts"), "\(printed)")
        let config = setup.work.appendingPathComponent("tsh_ssh_config").path
        try TestSupport.write(printed.stdout + "Host *\n    BatchMode yes\n    LogLevel ERROR\n", to: URL(fileURLWithPath: config))
        let found = try await TestSupport.run("/usr/bin/env", ["ansible", "--version"])
        try #require(found.exitCode == 0, "ansible is missing: run scripts/install-test-deps.sh\n\(found)")
        var environment = setup.tsh.environment
        environment["ANSIBLE_HOST_KEY_CHECKING"] = "True"
        environment["ANSIBLE_NOCOLOR"] = "1"
        let ran = try await TestSupport.run(
            "/usr/bin/env",
            [
                "ansible", "all", "-i", "testnode.\(setup.cluster.clusterName),", "-u", "root", "-m", "command", "-a", "echo ansible-ok",
                "-e", "ansible_python_interpreter=/usr/bin/python3", "--ssh-common-args=-F \(config)",
            ], environment: environment, timeout: .seconds(180))
        #expect(ran.exitCode == 0 && ran.stdout.contains("CHANGED | rc=0") && ran.stdout.contains("ansible-ok"), "\(ran)")
    }
}
