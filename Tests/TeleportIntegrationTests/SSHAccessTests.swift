import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import TeleportAPI
import TeleportTestSupport
import Testing

/// SSH access end to end with real clients: a cluster (auth, proxy, node `testnode`) plus joined
/// nodes `db1` (env=test) and `web1` (env=prod), a user certificate from `tctl auth sign`, then `tsh ssh` and OpenSSH `ssh`, `scp` and
/// `sftp` through the proxy, and the refusals the product promises.
@Suite("SSH access through the proxy", .serialized)
struct SSHAccessTests {
    /// A running cluster with two joined nodes and joe's credentials in both formats (`db1` is the
    /// one the tests use most; its directory and port are here).
    struct Setup {
        let cluster: ClusterFixture
        let nodePID: pid_t
        let nodeDir: URL
        let nodePort: UInt16
        let identity: String
        let keyPath: String
        let sshConfig: String

        func tsh(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> CommandResult {
            try await TestSupport.run(
                try ClusterFixture.binary("tsh"), ["-i", identity, "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure"] + arguments,
                timeout: timeout)
        }

        /// OpenSSH `ssh` with joe's key and certificate and no host-key prompts (the interop tests
        /// exercise the paths; host-key trust through the cluster is tested with tsh).
        func ssh(_ arguments: [String], program: String = TestSupport.ssh) async throws -> CommandResult {
            try await TestSupport.run(program, ["-F", sshConfig] + arguments)
        }

        var proxyCommand: String {
            "ProxyCommand=\(TestSupport.ssh) -F \(sshConfig) -p \(cluster.proxyPort) 127.0.0.1 -s proxy:%h:%p@\(cluster.clusterName)"
        }
    }

    static func withSetup(_ body: (Setup) async throws -> Void) async throws {
        try await withCluster(try ClusterFixture(clusterName: "ssh.example")) { cluster in
            try await cluster.start()
            #expect(try await cluster.tctl(["users", "add", "joe", "root"]).exitCode == 0)
            let identity = cluster.directory.appendingPathComponent("joe.id").path
            #expect(try await cluster.tctl(["auth", "sign", "--user=joe", "--out=\(identity)"]).exitCode == 0)
            let keyPath = cluster.directory.appendingPathComponent("joe").path
            #expect(try await cluster.tctl(["auth", "sign", "--user=joe", "--format=openssh", "--out=\(keyPath)"]).exitCode == 0)
            let sshConfig = cluster.directory.appendingPathComponent("ssh_config").path
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

            let added = try await cluster.tctl(["nodes", "add", "--ttl=5m"])
            let token = try #require(added.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") }?.split(separator: " ").last)
            // Two joined nodes: db1 (env=test, like the cluster's own testnode) and web1 (env=prod).
            var joined: [(name: String, pid: pid_t, dir: URL, port: UInt16)] = []
            defer { for node in joined { try? FileManager.default.removeItem(at: node.dir) } }
            do {
                for (name, env, role) in [("db1", "test", "db"), ("web1", "prod", "web")] {
                    let nodeDir = try TestSupport.makeTemporaryDirectory(prefix: "sshnode")
                    let nodePort = try TestSupport.freeLoopbackPort()
                    let nodeConfig = nodeDir.appendingPathComponent("teleport.yaml")
                    try TestSupport.write(
                        """
                        teleport:
                          nodename: \(name)
                          data_dir: \(nodeDir.appendingPathComponent("data").path)
                          auth_token: \(token)
                          auth_servers: ["127.0.0.1:\(cluster.authPort)"]
                        auth_service:
                          enabled: false
                        proxy_service:
                          enabled: false
                        ssh_service:
                          enabled: true
                          listen_addr: 127.0.0.1:\(nodePort)
                          labels:
                            env: \(env)
                            role: \(role)

                        """, to: nodeConfig)
                    let pid = try TestSupport.spawnDaemon(
                        try ClusterFixture.binary("teleport"), ["start", "-c", nodeConfig.path],
                        logPath: nodeDir.appendingPathComponent("node.log").path)
                    joined.append((name, pid, nodeDir, nodePort))
                }
                let db1 = joined[0]
                let setup = Setup(
                    cluster: cluster, nodePID: db1.pid, nodeDir: db1.dir, nodePort: db1.port, identity: identity, keyPath: keyPath,
                    sshConfig: sshConfig)
                #expect(await TestSupport.waitForPort(cluster.sshPort))
                #expect(await TestSupport.waitForPort(cluster.proxyPort))
                for node in joined {
                    #expect(await TestSupport.waitForPort(node.port), "\((try? TestSupport.read(node.dir.appendingPathComponent("node.log"))) ?? "")")
                }
                var listed = try await setup.tsh(["ls", "--format", "names"])
                for _ in 0..<100 where !(listed.stdout.contains("db1") && listed.stdout.contains("web1")) {
                    try await Task.sleep(for: .milliseconds(100))
                    listed = try await setup.tsh(["ls", "--format", "names"])
                }
                try #require(listed.stdout.contains("db1") && listed.stdout.contains("web1"), "\(listed)")
                try await body(setup)
            } catch {
                for node in joined {
                    await TestSupport.stopDaemon(node.pid)
                    Issue.record("\(node.name) log:\n\((try? TestSupport.read(node.dir.appendingPathComponent("node.log"))) ?? "")")
                }
                throw error
            }
            for node in joined { await TestSupport.stopDaemon(node.pid) }
            await cluster.stop()
        }
    }

    @Test("tsh ssh: commands, exit codes, stderr, label fan-out, interactive shell, -L")
    func tshSSH() async throws {
        try await Self.withSetup { setup in
            let echo = try await setup.tsh(["ssh", "root@testnode", "echo", "out;", "echo", "err", ">&2;", "exit", "3"])
            #expect(echo.exitCode == 3, "\(echo)")
            #expect(echo.stdout == "out\n" && echo.stderr.contains("err"), "\(echo)")
            let env = try await setup.tsh(["ssh", "root@db1", "echo $TELEPORT_USERNAME $USER $HOME $SSH_TELEPORT_CLUSTER_NAME"])
            #expect(env.stdout == "joe root /root ssh.example\n", "\(env)")
            let killed = try await setup.tsh(["ssh", "root@db1", "kill -TERM $$"])
            #expect(killed.exitCode == 128 + 15, "\(killed)")
            // The seed's form without the ssh subcommand: tsh --proxy=... --user=... LOGIN@HOST CMD.
            let seedForm = try await setup.tsh(["root@db1", "echo seed-form-$((1+1))"])
            #expect(seedForm.exitCode == 0 && seedForm.stdout == "seed-form-2\n", "\(seedForm)")

            let fanOut = try await setup.tsh(["ssh", "root@env=test", "echo hello; exit 2"])
            #expect(fanOut.exitCode == 2, "\(fanOut)")
            let lines = fanOut.stdout.split(separator: "\n").sorted()
            #expect(lines == ["[db1] hello", "[testnode] hello"], "\(fanOut)")

            let unknown = try await setup.tsh(["ssh", "root@nosuchnode", "true"])
            #expect(unknown.exitCode == 255 && unknown.stderr.hasPrefix("ERROR: "), "\(unknown)")
            let badLogin = try await setup.tsh(["ssh", "nobody@db1", "true"])
            #expect(badLogin.exitCode == 255, "\(badLogin)")

            // Interactive: a shell on a terminal, a resize, the exit code.
            let terminal = try TSHTerminal(
                try ClusterFixture.binary("tsh"),
                ["-i", setup.identity, "--proxy=127.0.0.1:\(setup.cluster.webPort)", "--insecure", "ssh", "-t", "root@db1"],
                environment: ProcessInfo.processInfo.environment.merging(["TERM": "xterm"]) { $1 })
            terminal.sendLine("echo sum=$((6*7))")
            try await terminal.expect("sum=42")
            terminal.resize(rows: 33, columns: 101)
            try await Task.sleep(for: .milliseconds(300))
            terminal.sendLine("stty size; tty")
            try await terminal.expect("33 101")
            try await terminal.expect("/dev/pts/")
            terminal.sendLine("exit 5")
            #expect(try await terminal.wait() == 5)

            // -L: a local port forwarded to an HTTP server next to the node.
            let site = try TestSupport.makeTemporaryDirectory(prefix: "site")
            defer { try? FileManager.default.removeItem(at: site) }
            try TestSupport.write("forwarded page\n", to: site.appendingPathComponent("index.html"), permissions: 0o644)
            let httpPort = try TestSupport.freeLoopbackPort()
            let http = try TestSupport.spawnDaemon(
                "/usr/bin/python3", ["-m", "http.server", "--bind", "127.0.0.1", "--directory", site.path, "\(httpPort)"],
                logPath: site.appendingPathComponent("http.log").path)
            defer { Task { await TestSupport.stopDaemon(http) } }
            #expect(await TestSupport.waitForPort(httpPort))
            let localPort = try TestSupport.freeLoopbackPort()
            let forward = try TestSupport.spawnDaemon(
                try ClusterFixture.binary("tsh"),
                [
                    "-i", setup.identity, "--proxy=127.0.0.1:\(setup.cluster.webPort)", "--insecure", "ssh", "-N", "-L",
                    "\(localPort):127.0.0.1:\(httpPort)", "root@db1",
                ], logPath: site.appendingPathComponent("tsh.log").path)
            // tsh logs in to the node before it listens: slow when the whole suite runs at once.
            let listening = await TestSupport.waitForPort(localPort, timeout: .seconds(60))
            #expect(listening, "\((try? TestSupport.read(site.appendingPathComponent("tsh.log"))) ?? "")")
            let page = try await TestSupport.run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(localPort)/index.html"])
            await TestSupport.stopDaemon(forward)
            #expect(page.stdout == "forwarded page\n", "\(page) \((try? TestSupport.read(site.appendingPathComponent("tsh.log"))) ?? "")")
        }
    }

    @Test("tctl lock: open sessions of the user end, new ones and new certificates are refused; tctl rm lock restores access")
    func locks() async throws {
        try await Self.withSetup { setup in
            let work = try TestSupport.makeTemporaryDirectory(prefix: "lock")
            defer { try? FileManager.default.removeItem(at: work) }
            let sessionLog = work.appendingPathComponent("session.log")
            let session = try TestSupport.spawnDaemon(
                try ClusterFixture.binary("tsh"),
                ["-i", setup.identity, "--proxy=127.0.0.1:\(setup.cluster.webPort)", "--insecure", "ssh", "root@db1", "echo started; sleep 60; echo survived"],
                logPath: sessionLog.path)
            var started = false
            for _ in 0..<100 where !started {
                started = ((try? TestSupport.read(sessionLog)) ?? "").contains("started")
                if !started { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(started, "\((try? TestSupport.read(sessionLog)) ?? "")")

            let locked = try await setup.cluster.tctl(["lock", "--user=joe", "--message=incident 42", "--ttl=1h"])
            #expect(locked.exitCode == 0 && locked.stdout.hasPrefix("Created a lock with name"), "\(locked)")
            let name = try #require(locked.stdout.split(separator: "\"").dropFirst().first.map(String.init))
            // The open session ends within seconds, on the node and the proxy.
            var status: Int32 = 0
            var ended = false
            for _ in 0..<100 where !ended {
                ended = waitpid(session, &status, WNOHANG) == session
                if !ended { try await Task.sleep(for: .milliseconds(100)) }
            }
            if !ended { await TestSupport.stopDaemon(session) }
            #expect(ended, "the locked user's session did not end")
            #expect(!((try? TestSupport.read(sessionLog)) ?? "").contains("survived"))
            #expect(await TestSupport.eventually { setup.cluster.log.contains("closing an SSH connection: user=joe is locked: incident 42") }, "proxy log")
            #expect(
                await TestSupport.eventually {
                    ((try? TestSupport.read(setup.nodeDir.appendingPathComponent("node.log"))) ?? "").contains("closing an SSH connection: user=joe is locked")
                }, "node log")

            let refused = try await setup.tsh(["ssh", "root@db1", "echo should-not-run"])
            #expect(refused.exitCode == 255 && !refused.stdout.contains("should-not-run"), "\(refused)")
            #expect(await TestSupport.eventually { setup.cluster.log.contains("is locked: incident 42 (lock \(name))") }, "the refusal names the lock")
            let openSSH = try await setup.ssh(["-p", "\(setup.cluster.sshPort)", "-l", "root", "127.0.0.1", "echo should-not-run"])
            #expect(openSSH.exitCode == 255, "\(openSSH)")
            let signed = try await setup.cluster.tctl(["auth", "sign", "--user=joe", "--out=\(work.path)/joe2.id"])
            #expect(signed.exitCode != 0 && signed.stderr.contains("user=joe is locked: incident 42"), "\(signed)")
            let listed = try await setup.cluster.tctl(["get", "locks", "--format", "text"])
            #expect(listed.stdout.contains(name) && listed.stdout.contains("user=joe"), "\(listed)")
            let events = (try? FileManager.default.contentsOfDirectory(atPath: setup.cluster.dataDir.appendingPathComponent("log").path)) ?? []
            let audit = events.compactMap { try? TestSupport.read(setup.cluster.dataDir.appendingPathComponent("log/\($0)")) }.joined()
            #expect(audit.contains("\"lock.created\""), "audit")

            #expect(try await setup.cluster.tctl(["rm", "lock/\(name)"]).exitCode == 0)
            var back = try await setup.tsh(["ssh", "root@db1", "echo back"])
            for _ in 0..<50 where back.stdout != "back\n" {
                try await Task.sleep(for: .milliseconds(100))
                back = try await setup.tsh(["ssh", "root@db1", "echo back"])
            }
            #expect(back.stdout == "back\n", "\(back)")
        }
    }

    @Test("OpenSSH ssh, scp and sftp through the proxy: ProxyCommand subsystem, -J, tsh proxy ssh")
    func openSSHClients() async throws {
        try await Self.withSetup { setup in
            let viaSubsystem = try await setup.ssh(["-o", setup.proxyCommand, "-p", "\(setup.nodePort)", "root@db1", "echo via-subsystem; exit 4"])
            #expect(viaSubsystem.exitCode == 4 && viaSubsystem.stdout == "via-subsystem\n", "\(viaSubsystem)")
            let viaJump = try await setup.ssh(["-J", "root@127.0.0.1:\(setup.cluster.proxyPort)", "-p", "\(setup.nodePort)", "root@db1", "hostname -s >/dev/null; echo via-jump"])
            #expect(viaJump.stdout == "via-jump\n", "\(viaJump)")
            let tsh = try ClusterFixture.binary("tsh")
            let tshProxy = "ProxyCommand=\(tsh) -i \(setup.identity) --proxy=127.0.0.1:\(setup.cluster.webPort) --insecure proxy ssh %r@%h:%p"
            let viaTSH = try await setup.ssh(["-o", tshProxy, "-p", "\(setup.nodePort)", "root@db1.ssh.example", "echo via-tsh"])
            #expect(viaTSH.stdout == "via-tsh\n", "\(viaTSH)")

            // scp and sftp of 8 MB both ways, checksums compared.
            let work = try TestSupport.makeTemporaryDirectory(prefix: "scp")
            defer { try? FileManager.default.removeItem(at: work) }
            let source = work.appendingPathComponent("source.bin")
            try Data((0..<(8 << 20)).map { _ in UInt8.random(in: 0...255) }).write(to: source)
            let remote = work.appendingPathComponent("remote.bin").path
            let up = try await TestSupport.run("/usr/bin/scp", ["-F", setup.sshConfig, "-o", tshProxy, "-P", "\(setup.nodePort)", source.path, "root@db1:\(remote)"])
            #expect(up.exitCode == 0, "\(up)")
            let back = work.appendingPathComponent("back.bin").path
            let down = try await TestSupport.run("/usr/bin/scp", ["-F", setup.sshConfig, "-o", tshProxy, "-P", "\(setup.nodePort)", "root@db1:\(remote)", back])
            #expect(down.exitCode == 0, "\(down)")
            #expect(FileManager.default.contentsEqual(atPath: source.path, andPath: back), "scp round trip differs")
            let batch = work.appendingPathComponent("batch")
            try TestSupport.write("get \(remote) \(work.path)/sftp.bin\n", to: batch)
            let sftp = try await TestSupport.run("/usr/bin/sftp", ["-F", setup.sshConfig, "-o", tshProxy, "-P", "\(setup.nodePort)", "-b", batch.path, "root@db1"])
            #expect(sftp.exitCode == 0, "\(sftp)")
            #expect(FileManager.default.contentsEqual(atPath: source.path, andPath: work.appendingPathComponent("sftp.bin").path))
        }
    }

    @Test("refusals: unknown keys, wrong logins, expired certificates, LD_PRELOAD, SSRF targets, banner and pre-auth floods")
    func refusals() async throws {
        try await Self.withSetup { setup in
            let work = try TestSupport.makeTemporaryDirectory(prefix: "refuse")
            defer { try? FileManager.default.removeItem(at: work) }
            let direct = ["-p", "\(setup.cluster.sshPort)", "127.0.0.1"]

            // A plain key with no certificate, and a certificate from a CA of our own making.
            let stranger = work.appendingPathComponent("stranger").path
            _ = try await TestSupport.run(TestSupport.sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-f", stranger])
            let bare = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes"]
            let plain = try await TestSupport.run(TestSupport.ssh, bare + ["-i", stranger] + direct + ["-l", "root", "true"])
            #expect(plain.exitCode == 255 && plain.stderr.contains("Permission denied"), "\(plain)")
            let otherCA = work.appendingPathComponent("other_ca").path
            _ = try await TestSupport.run(TestSupport.sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-f", otherCA])
            _ = try await TestSupport.run(TestSupport.sshKeygen, ["-q", "-s", otherCA, "-I", "joe", "-n", "root", "-V", "+1h", "\(stranger).pub"])
            let foreign = try await TestSupport.run(
                TestSupport.ssh, ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-i", stranger] + direct + ["-l", "root", "true"])
            #expect(foreign.exitCode == 255 && foreign.stderr.contains("Permission denied"), "\(foreign)")
            // joe's certificate does not list the login "nobody".
            let wrongLogin = try await setup.ssh(direct + ["-l", "nobody", "true"])
            #expect(wrongLogin.exitCode == 255 && wrongLogin.stderr.contains("Permission denied"), "\(wrongLogin)")
            #expect(await TestSupport.eventually { setup.cluster.log.contains("is not valid for principal") }, "log")

            // An expired certificate (a 1-second TTL).
            let shortKey = work.appendingPathComponent("short").path
            let signed = try await setup.cluster.tctl(["auth", "sign", "--user=joe", "--format=openssh", "--ttl=1s", "--out=\(shortKey)"])
            if signed.exitCode == 0 {
                try await Task.sleep(for: .seconds(2))
                let expired = try await setup.ssh(["-o", "IdentityFile=\(shortKey)", "-o", "CertificateFile=\(shortKey)-cert.pub", "-i", shortKey] + direct + ["-l", "root", "true"])
                // The profile's identity is still offered by IdentityFile in ssh_config, so use only the short key.
                let onlyShort = try await TestSupport.run(
                    TestSupport.ssh, ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-i", shortKey] + direct + ["-l", "root", "true"])
                #expect(onlyShort.exitCode == 255, "\(onlyShort) \(expired)")
                #expect(await TestSupport.eventually { setup.cluster.log.contains("has expired") }, "the node logs the reason")
            }

            // The environment allow-list: LANG passes, LD_PRELOAD does not.
            let env = try await setup.ssh(["-o", "SetEnv=LD_PRELOAD=/tmp/evil.so LANG=C.UTF-8"] + direct + ["-l", "root", "echo ${LD_PRELOAD:-unset} $LANG"])
            #expect(env.stdout == "unset C.UTF-8\n", "\(env)")

            // A login the certificate allows but the host does not have.
            #expect(try await setup.cluster.tctl(["users", "add", "ghost", "ghostlogin"]).exitCode == 0)
            let ghostIdentity = work.appendingPathComponent("ghost.id").path
            #expect(try await setup.cluster.tctl(["auth", "sign", "--user=ghost", "--out=\(ghostIdentity)"]).exitCode == 0)
            let ghost = try await TestSupport.run(
                try ClusterFixture.binary("tsh"),
                ["-i", ghostIdentity, "--proxy=127.0.0.1:\(setup.cluster.webPort)", "--insecure", "ssh", "ghostlogin@db1", "echo should-not-run"])
            #expect(ghost.exitCode != 0 && !ghost.stdout.contains("should-not-run"), "\(ghost)")
            #expect(ghost.stderr.contains("login \"ghostlogin\" does not exist on this host"), "\(ghost)")

            // The proxy dials registered nodes only.
            for target in ["nosuchhost:22", "127.0.0.1:\(setup.cluster.authPort)", "169.254.169.254:80", "localhost:\(setup.cluster.webPort)"] {
                let refused = try await setup.ssh(["-p", "\(setup.cluster.proxyPort)", "-l", "root", "127.0.0.1", "-s", "proxy:\(target)"])
                #expect(refused.exitCode != 0, "\(target): \(refused)")
                let host = String(target.split(separator: ":")[0])
                var logged = false
                for _ in 0..<50 where !logged {
                    logged = setup.cluster.log.contains("no registered node is named or addressed \"\(host)\"")
                    if !logged { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(logged, "\(target) refusal is logged")
                let jump = try await setup.ssh(["-p", "\(setup.cluster.proxyPort)", "-l", "root", "-W", target, "127.0.0.1"])
                #expect(jump.exitCode != 0, "\(target): \(jump)")
            }

            // The TLS tunnel of tsh proxy ssh on the web port needs a user certificate.
            let anonymous = try await TestSupport.run(
                "/bin/sh",
                [
                    "-c",
                    "printf 'db1:0@\(setup.cluster.clusterName)\\n' | timeout 10 openssl s_client -quiet -alpn teleport-proxy-ssh -connect 127.0.0.1:\(setup.cluster.webPort) 2>/dev/null",
                ])
            #expect(anonymous.stdout.hasPrefix("ERR a user certificate is required"), "\(anonymous)")
            let tunnelled = try await setup.tsh(["proxy", "ssh", "root@169.254.169.254:80"], timeout: .seconds(20))
            #expect(tunnelled.exitCode != 0 && tunnelled.stderr.contains("no registered node"), "\(tunnelled)")

            // Each refusal is an audit event with its reason.
            var events: [[String: JSONValue]] = []
            func has(_ predicate: ([String: JSONValue]) -> Bool) -> Bool { events.contains(where: predicate) }
            func text(_ event: [String: JSONValue], _ key: String) -> String { event[key]?.stringValue ?? "" }
            func rejected(_ request: String, _ reason: String) -> Bool {
                has { text($0, "event") == "session.rejected" && text($0, "code") == "T2000W" && text($0, "request") == request && text($0, "reason").contains(reason) }
            }
            func refusedPort(_ target: String) -> Bool {
                has { text($0, "event") == "port" && text($0, "code") == "T3003E" && text($0, "addr") == target && text($0, "error").contains("no registered node") }
            }
            let proxyTargets = ["nosuchhost:22", "127.0.0.1:\(setup.cluster.authPort)", "169.254.169.254:80"]
            func complete() -> Bool {
                rejected("env LD_PRELOAD", "allow-list") && rejected("exec echo should-not-run", "does not exist on this host")
                    && proxyTargets.allSatisfy { refusedPort("proxy:" + $0) && refusedPort($0) } && refusedPort("169.254.169.254:80@ssh.example")
            }
            for _ in 0..<100 where !complete() {
                events = try await AuditEventsTests.events(setup.cluster)
                if !complete() { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(complete(), "\(events.filter { text($0, "event") == "session.rejected" || text($0, "event") == "port" })")
            #expect(has { text($0, "event") == "session.rejected" && text($0, "user") == "ghost" && text($0, "login") == "ghostlogin" }, "\(events)")
            let plainHTTPS = try await TestSupport.run("/usr/bin/curl", ["-sk", "https://127.0.0.1:\(setup.cluster.webPort)/webapi/ping"])
            #expect(plainHTTPS.stdout.contains("proxy"), "HTTPS without the tunnel protocol is served as before: \(plainHTTPS)")

            // A 1 MB version banner is cut off; 200 half-open connections do not stop a real login.
            let banner = try await TestSupport.run(
                "/usr/bin/python3",
                ["-c", """
                import socket
                s = socket.create_connection(("127.0.0.1", \(setup.cluster.sshPort)))
                try:
                    s.sendall(b"SSH-2.0-" + b"A" * (1 << 20) + b"\\r\\n")
                except OSError:
                    pass
                s.settimeout(10)
                try:
                    while s.recv(65536):
                        pass
                    print("closed")
                except OSError:
                    print("closed")
                """])
            #expect(banner.stdout.contains("closed"), "\(banner)")
            let flood = try await TestSupport.run(
                "/usr/bin/python3",
                ["-c", """
                import socket, subprocess, sys
                held = [socket.create_connection(("127.0.0.1", \(setup.cluster.sshPort))) for _ in range(200)]
                result = subprocess.run(["\(TestSupport.ssh)", "-F", "\(setup.sshConfig)", "-p", "\(setup.cluster.sshPort)", "-l", "root", "127.0.0.1", "echo still-works"], capture_output=True, text=True, timeout=60)
                print(result.stdout.strip(), result.returncode)
                """])
            #expect(flood.stdout.contains("still-works 0"), "\(flood)")
        }
    }
}
