import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 14, "Done when", on one machine with real network namespaces: the cluster (auth and
/// proxy, one process) listens on this host; each node runs inside a namespace whose iptables
/// fence lets it open connections to the proxy's ports and nothing else, and lets nothing in. The
/// node joins with the seed's command line `teleport start --roles=node --token=... --ca-pin=...
/// --auth-server=PROXY:WEBPORT` and is reached only through its reverse tunnel.
///
/// Every namespace is removed and every process stopped by PID, on success and on failure.
@Suite("tunnelled nodes in network namespaces", .serialized)
struct TunnelNetworkTests {
    /// Namespaces need root, iproute2 and iptables; OpenSSH's client is used via `tsh config`.
    static var available: Bool {
        NetworkNamespace.available && FileManager.default.isExecutableFile(atPath: "/usr/sbin/iptables")
            && TestSupport.hasOpenSSHClient
    }

    static let skipReason: Comment = "needs root, iproute2 (ip netns), iptables and openssh-client"

    // MARK: - The lab: namespaces, a cluster reachable from them, nodes inside them

    /// Prints how long each step of a test took (the report's timings; CI logs show them).
    final class Stopwatch: @unchecked Sendable {
        let test: String
        let started = ContinuousClock.now
        var last = ContinuousClock.now

        init(_ test: String) { self.test = test }

        static func seconds(_ duration: Duration) -> String {
            let (seconds, attoseconds) = duration.components
            return String(format: "%.1f s", Double(seconds) + Double(attoseconds) / 1e18)
        }

        func lap(_ step: String) {
            let now = ContinuousClock.now
            print("\(test): \(step) took \(Self.seconds(now - last)) (total \(Self.seconds(now - started)))")
            last = now
        }
    }


    /// A node process started inside a namespace with the seed's command line (no config file).
    final class NamespacedNode: @unchecked Sendable {
        let namespace: NetworkNamespace
        let name: String
        let directory: URL
        var pid: pid_t?
        var logURL: URL { directory.appendingPathComponent("node.log") }
        var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

        init(namespace: NetworkNamespace, name: String) throws {
            self.namespace = namespace
            self.name = name
            directory = try TestSupport.makeTemporaryDirectory(prefix: "ns-node-\(name)")
        }

        /// `teleport start --roles=node --token=T --ca-pin=P --auth-server=PROXY:WEB` inside the namespace.
        func start(token: String, pin: String, proxy: String, environment: [String: String] = [:]) throws {
            let (executable, arguments) = namespace.wrap(
                try ClusterFixture.binary("teleport"),
                [
                    "start", "--roles=node", "--token=\(token)", "--ca-pin=\(pin)", "--auth-server=\(proxy)", "--nodename=\(name)",
                    "--data-dir=\(directory.appendingPathComponent("data").path)", "--debug",
                ])
            pid = try TestSupport.spawnDaemon(executable, arguments, logPath: logURL.path, environment: environment)
        }

        func stop() async {
            guard let pid else { return }
            self.pid = nil
            await TestSupport.stopDaemon(pid)
        }
    }

    /// What a test made: removed and stopped by ``tearDown()`` whatever happened.
    final class Lab: @unchecked Sendable {
        var namespaces: [NetworkNamespace] = []
        var nodes: [NamespacedNode] = []
        /// A process a test stopped with SIGSTOP; resumed before anything is stopped.
        var paused: pid_t?
        let work: URL

        init() throws {
            work = try TestSupport.makeTemporaryDirectory(prefix: "tunnel-net")
        }

        func namespace() async throws -> NetworkNamespace {
            let namespace = try await NetworkNamespace.create()
            namespaces.append(namespace)
            return namespace
        }

        func node(in namespace: NetworkNamespace, name: String) throws -> NamespacedNode {
            let node = try NamespacedNode(namespace: namespace, name: name)
            nodes.append(node)
            return node
        }

        /// Resumes a paused process, then stops every node by PID.
        func stopNodes() async {
            if let paused { kill(paused, SIGCONT) }
            paused = nil
            for node in nodes { await node.stop() }
        }

        func tearDown() async {
            await stopNodes()
            for namespace in namespaces { await namespace.remove() }
            for node in nodes { try? FileManager.default.removeItem(at: node.directory) }
            try? FileManager.default.removeItem(at: work)
        }
    }

    /// Runs `body` with a lab and a cluster whose proxy listens on every address (the namespaces
    /// reach it at `proxyHost`, the host side of the first veth pair, announced as its
    /// `public_addr`); the cluster is stopped before the lab is torn down.
    static func withLab(
        clusterName: String, multiplexed: Bool, _ body: (Lab, ClusterFixture, NetworkNamespace) async throws -> Void
    ) async throws {
        let lab = try Lab()
        do {
            let first = try await lab.namespace()
            let cluster = try exposedCluster(clusterName, proxyHost: first.hostAddress, multiplexed: multiplexed)
            try await withCluster(cluster) { cluster in
                // The nodes stop while the proxy still runs (their last upload has somewhere to go).
                do {
                    try await body(lab, cluster, first)
                } catch {
                    await lab.stopNodes()
                    throw error
                }
                await lab.stopNodes()
            }
        } catch {
            await lab.tearDown()
            throw error
        }
        await lab.tearDown()
    }

    /// A cluster whose proxy listeners (SSH, web, tunnel) bind 0.0.0.0 and whose public address is
    /// `proxyHost`; multiplexed, the tunnel address is the web address (the seed's one-port rule).
    static func exposedCluster(_ name: String, proxyHost: String, multiplexed: Bool) throws -> ClusterFixture {
        let cluster = try ClusterFixture(clusterName: name)
        var text = try TestSupport.read(cluster.configURL)
        let tunnelPort = try #require(Self.tunnelPort(in: text), "no tunnel_listen_addr in:\n\(text)")
        let replacements = [
            ("  listen_addr: 127.0.0.1:\(cluster.proxyPort)\n", "  listen_addr: 0.0.0.0:\(cluster.proxyPort)\n"),
            (
                "  web_listen_addr: 127.0.0.1:\(cluster.webPort)\n",
                "  web_listen_addr: 0.0.0.0:\(cluster.webPort)\n  public_addr: \(proxyHost):\(cluster.webPort)\n"
            ),
            (
                "  tunnel_listen_addr: 127.0.0.1:\(tunnelPort)\n",
                "  tunnel_listen_addr: 0.0.0.0:\(multiplexed ? cluster.webPort : tunnelPort)\n"
            ),
        ]
        for (old, new) in replacements {
            try #require(text.contains(old), "\(old) not in:\n\(text)")
            text = text.replacingOccurrences(of: old, with: new)
        }
        try TestSupport.write(text, to: cluster.configURL)
        return cluster
    }

    static func tunnelPort(in config: String) -> UInt16? {
        guard let range = config.range(of: #"tunnel_listen_addr: [0-9.]+:\d+"#, options: .regularExpression) else { return nil }
        return config[range].split(separator: ":").last.flatMap { UInt16($0) }
    }

    /// A join token and the CA pin from `tctl nodes add`.
    static func joinToken(_ cluster: ClusterFixture) async throws -> (token: String, pin: String) {
        let added = try await cluster.tctl(["nodes", "add", "--ttl=10m"])
        try #require(added.exitCode == 0, "\(added)")
        let token = try #require(
            added.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") }?.split(separator: " ").last, "\(added)")
        let pin = try #require(
            added.stdout.range(of: #"sha256:[0-9a-f]{64}"#, options: .regularExpression).map { String(added.stdout[$0]) }, "\(added)")
        return (String(token), pin)
    }

    /// Whether a TCP connection from inside `namespace` to `host:port` opens within 3 s.
    /// `timeout -s KILL`: a program `Process` starts keeps this process's signal mask, so a
    /// SIGTERM may stay blocked and a dropped SYN would be retried for about two minutes.
    static func canConnect(from namespace: NetworkNamespace, to host: String, port: UInt16) async throws -> Bool {
        let (executable, arguments) = namespace.wrap(
            "/usr/bin/timeout", ["-s", "KILL", "3", "/bin/bash", "-c", "exec 3<>/dev/tcp/\(host)/\(port)"])
        return try await TestSupport.run(executable, arguments, timeout: .seconds(20)).exitCode == 0
    }

    /// The fence holds: the namespace reaches the allowed port of the proxy's address but not the
    /// proxy's SSH port on that same address (open to this host), and this host cannot connect in.
    static func expectFenced(_ namespace: NetworkNamespace, cluster: ClusterFixture, proxyHost: String) async throws {
        #expect(try await canConnect(from: namespace, to: proxyHost, port: cluster.webPort), "the web port is allowed")
        // Both wait out a 3 s timeout: at once.
        async let outward = canConnect(from: namespace, to: proxyHost, port: cluster.proxyPort)
        // Dropped, not refused: curl times out (28) instead of failing to connect (7).
        async let inward = TestSupport.run("/usr/bin/curl", ["-s", "-m", "3", "http://\(namespace.address):3022/"])
        #expect(!(try await outward), "the fence lets only the allowed ports out")
        let inwardResult = try await inward
        #expect(inwardResult.exitCode == 28, "nothing connects into the namespace: \(inwardResult)")
    }

    /// `tsh ... NODE true` until it exits 0; the time it took, or nil after `limit`.
    static func reachable(_ tsh: TSHRunner, _ prefix: [String], node: String, within limit: Duration) async throws -> Duration? {
        let started = ContinuousClock.now
        while ContinuousClock.now - started < limit {
            let result = try await tsh.run(prefix + ["ssh", "root@\(node)", "true"], timeout: .seconds(20))
            if result.exitCode == 0 { return ContinuousClock.now - started }
            try await Task.sleep(for: .milliseconds(300))
        }
        return nil
    }

    /// Waits until `tsh ls` lists `nodes`, each marked as tunnelled; returns the listing.
    static func listed(_ tsh: TSHRunner, _ prefix: [String], nodes: [String], within limit: Duration = .seconds(60)) async throws -> String {
        let deadline = ContinuousClock.now + limit
        var listing = ""
        while ContinuousClock.now < deadline {
            listing = try await tsh.run(prefix + ["ls"]).stdout
            let rows = listing.split(separator: "\n")
            if nodes.allSatisfy({ node in rows.contains { $0.contains(node) && $0.contains("⟵ Tunnel") } }) { return listing }
            try await Task.sleep(for: .milliseconds(300))
        }
        return listing
    }

    static func sha256(_ path: String) async throws -> String {
        String(try await TestSupport.run("/usr/bin/sha256sum", [path]).stdout.prefix(64))
    }

    static func decodeList(_ text: String) -> [[String: JSONValue]] {
        (try? ResourceCodec.jsonDecoder().decode([[String: JSONValue]].self, from: Data(text.utf8))) ?? []
    }

    /// The sid of a live session of `tsh sessions ls` that is not in `known`.
    static func newSession(_ tsh: TSHRunner, _ prefix: [String], besides known: Set<String> = []) async throws -> String? {
        for _ in 0..<100 {
            let listed = try await tsh.run(prefix + ["sessions", "ls", "--format=json"])
            for entry in decodeList(listed.stdout) {
                if case .string(let sid)? = entry["sid"], !known.contains(sid) { return sid }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }

    /// Waits until `tsh recordings ls` lists `sid` (uploads are asynchronous).
    static func recorded(_ tsh: TSHRunner, _ prefix: [String], _ sid: String, within limit: Duration) async throws -> [String: JSONValue]? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let listed = try await tsh.run(prefix + ["recordings", "ls", "--format=json"])
            if let entry = decodeList(listed.stdout).first(where: { $0["sid"] == .string(sid) }) { return entry }
            try await Task.sleep(for: .milliseconds(300))
        }
        return nil
    }

    /// A user `joe` (login root) and an identity file from `tctl auth sign`: tsh's `-i` prefix.
    static func identity(_ cluster: ClusterFixture, proxyHost: String) async throws -> [String] {
        let added = try await cluster.tctl(["users", "add", "joe", "root"])
        try #require(added.exitCode == 0, "\(added)")
        let path = cluster.directory.appendingPathComponent("joe.id").path
        let signed = try await cluster.tctl(["auth", "sign", "--user=joe", "--out=\(path)"])
        try #require(signed.exitCode == 0, "\(signed)")
        return ["-i", path, "--proxy=\(proxyHost):\(cluster.webPort)", "--insecure"]
    }

    // MARK: - 1. A node behind a fence: every client, then a killed and restarted proxy

    @Test(
        "a fenced node joins through the proxy's web port; tsh ls, ssh (terminal, exit codes), scp 100 MB, OpenSSH, join, play; back within 60 s after the proxy is killed, no upload lost",
        .enabled(if: TunnelNetworkTests.available, TunnelNetworkTests.skipReason), .timeLimit(.minutes(10)))
    func fencedNode() async throws {
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        try await Self.withLab(clusterName: "fence.example", multiplexed: false) { lab, cluster, namespace in
            let watch = Stopwatch("fencedNode")
            let proxyHost = namespace.hostAddress
            let tunnelPort = try #require(Self.tunnelPort(in: try TestSupport.read(cluster.configURL)))
            var codes = try await TSHLoginTests.signUp(cluster)
            let login = try await TSHLoginTests.login(
                tsh, ["--proxy=\(proxyHost):\(cluster.webPort)", "--user=joe", "--insecure"], password: TSHLoginTests.password,
                code: try await codes.next())
            try #require(login.status == 0, "\(login.transcript)")
            watch.lap("cluster start, signup, tsh login")
            let tshArgs = ["--insecure"]

            try await namespace.allowOnly([(proxyHost, cluster.webPort), (proxyHost, tunnelPort)])
            try await Self.expectFenced(namespace, cluster: cluster, proxyHost: proxyHost)
            #expect(try await Self.canConnect(from: namespace, to: proxyHost, port: tunnelPort), "the tunnel port is allowed")
            watch.lap("fence and its checks")

            let (token, pin) = try await Self.joinToken(cluster)
            let node = try lab.node(in: namespace, name: "fenced")
            try node.start(token: token, pin: pin, proxy: "\(proxyHost):\(cluster.webPort)")

            // tsh ls: the node, marked as tunnelled.
            let listing = try await Self.listed(tsh, tshArgs, nodes: ["fenced"])
            #expect(listing.split(separator: "\n").contains { $0.contains("fenced") && $0.contains("⟵ Tunnel") }, "\(listing)\n\(node.log)")
            let first = try await Self.reachable(tsh, tshArgs, node: "fenced", within: .seconds(40))
            try #require(first != nil, "the node never became reachable:\n\(node.log.suffix(4000))")
            watch.lap("node joined, listed and reachable")
            #expect(node.log.contains("binds no port"), "\(node.log)")
            // The agent dialled the tunnel port the proxy's ping announced (its public host).
            #expect(
                node.log.split(separator: "\n").contains {
                    $0.contains("reverse tunnel to the proxy is up") && $0.contains("tp.proxy=\(proxyHost):\(tunnelPort)")
                }, "\(node.log.suffix(3000))")
            #expect(cluster.log.contains("reverse tunnel established"), "the proxy saw no tunnel")

            // Exit codes travel back.
            let exit7 = try await tsh.run(tshArgs + ["ssh", "root@fenced", "exit 7"])
            #expect(exit7.exitCode == 7, "\(exit7)")
            let echoed = try await tsh.run(tshArgs + ["ssh", "root@fenced", "echo behind-the-fence; exit 0"])
            #expect(echoed.exitCode == 0 && echoed.stdout == "behind-the-fence\n", "\(echoed)")
            watch.lap("exit codes")

            // Interactive on a pseudo-terminal; the same user joins it as an observer (tsh join).
            let environment = tsh.environment.merging(["TERM": "xterm"]) { $1 }
            let tshBinary = try ClusterFixture.binary("tsh")
            let owner = try TSHTerminal(tshBinary, tshArgs + ["ssh", "-t", "root@fenced"], environment: environment)
            try await owner.expect("# ")
            owner.sendLine("echo typed-$((6*7))")
            try await owner.expect("typed-42")
            let sid = try #require(try await Self.newSession(tsh, tshArgs), "the live session is not listed")
            let observer = try TSHTerminal(tshBinary, tshArgs + ["join", sid], environment: environment)
            var joined = false
            for _ in 0..<150 where !joined {
                joined = try await AuditEventsTests.events(cluster, ["--type=session.join"]).contains { $0["sid"] == .string(sid) }
                if !joined { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(joined, "the join was not reported")
            owner.sendLine("echo watched-$((5*5))")
            try await owner.expect("watched-25")
            try await observer.expect("watched-25")
            owner.sendLine("exit 3")
            #expect(try await owner.wait() == 3, "the shell's exit status reaches tsh")
            let observerStatus = try await observer.wait(timeout: .seconds(30))
            #expect(observerStatus == 3, "the observer's tsh ends with the session, with its status:\n\(observer.transcript)")
            watch.lap("terminal session joined by an observer")

            // tsh play: the finished session, uploaded through the proxy.
            let entry = try await Self.recorded(tsh, tshArgs, sid, within: .seconds(60))
            #expect(entry?["server_hostname"] == .string("fenced"), "\(String(describing: entry))")
            let played = try await tsh.run(tshArgs + ["play", "--format=text", sid])
            #expect(played.exitCode == 0 && played.stdout.contains("typed-42") && played.stdout.contains("watched-25"), "\(played)")
            watch.lap("recording uploaded and played")

            // tsh scp, 100 MB both ways, with checksums.
            let big = lab.work.appendingPathComponent("big.bin").path
            _ = try await TestSupport.runChecked("/bin/sh", ["-c", "head -c 104857600 /dev/urandom > \(big)"])
            let original = try await Self.sha256(big)
            let remote = lab.work.appendingPathComponent("remote")
            try FileManager.default.createDirectory(at: remote, withIntermediateDirectories: true)
            watch.lap("100 MB file written")
            let up = try await tsh.run(tshArgs + ["scp", big, "root@fenced:\(remote.path)/"], timeout: .seconds(240))
            watch.lap("tsh scp 100 MB up")
            #expect(up.exitCode == 0, "\(up)")
            #expect(try await Self.sha256(remote.appendingPathComponent("big.bin").path) == original, "the upload arrived intact")
            let back = lab.work.appendingPathComponent("back.bin").path
            let down = try await tsh.run(tshArgs + ["scp", "root@fenced:\(remote.path)/big.bin", back], timeout: .seconds(240))
            watch.lap("tsh scp 100 MB down")
            #expect(down.exitCode == 0, "\(down)")
            #expect(try await Self.sha256(back) == original, "the download arrived intact")
            for path in [big, back, remote.appendingPathComponent("big.bin").path] { try? FileManager.default.removeItem(atPath: path) }

            // OpenSSH through the block tsh config prints (ProxyCommand: tsh proxy ssh).
            let printed = try await tsh.run(tshArgs + ["config"])
            #expect(printed.exitCode == 0, "\(printed)")
            let sshConfig = lab.work.appendingPathComponent("ssh_config")
            try TestSupport.write(printed.stdout + "Host *\n    BatchMode yes\n    LogLevel ERROR\n", to: sshConfig)
            let openSSH = try await TestSupport.run(
                TestSupport.ssh, ["-F", sshConfig.path, "root@fenced.fence.example", "echo via-openssh; exit 6"], environment: tsh.environment)
            #expect(openSSH.exitCode == 6 && openSSH.stdout == "via-openssh\n", "\(openSSH)")
            watch.lap("OpenSSH via tsh config")

            // A session is live when the proxy (with auth: one process) is killed: its recording
            // waits on the node and arrives after the restart.
            let live = try TSHTerminal(tshBinary, tshArgs + ["ssh", "-t", "root@fenced"], environment: environment)
            try await live.expect("# ")
            live.sendLine("echo before-kill-$((8*8))")
            try await live.expect("before-kill-64")
            let liveSID = try #require(try await Self.newSession(tsh, tshArgs, besides: [sid]), "the second session is not listed")
            let proxyPID = try #require(cluster.pid)
            kill(proxyPID, SIGKILL)
            var status: Int32 = 0
            waitpid(proxyPID, &status, 0)
            let killedAt = ContinuousClock.now
            #expect(try await live.wait(timeout: .seconds(40)) != 0, "the user's tsh notices the proxy is gone")
            // The session ends on the node; its recording waits there while the proxy is down.
            let uploads = node.directory.appendingPathComponent("data/log/upload/sessions/default")
            func pendingUploads() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: uploads.path)) ?? [] }
            let waiting = await TestSupport.eventually(timeout: .seconds(30)) { pendingUploads().contains("\(liveSID).done") }
            #expect(waiting, "the cut session's recording is not waiting on the node: \(pendingUploads())\n\(node.log.suffix(3000))")
            try await cluster.start()
            let back60 = try await Self.reachable(tsh, tshArgs, node: "fenced", within: .seconds(60))
            #expect(back60 != nil, "not reachable within 60 s of the restart:\n\(node.log.suffix(4000))")
            watch.lap("killed, restarted, reachable again (\(Stopwatch.seconds(ContinuousClock.now - killedAt)) after the kill)")
            let pending = try await Self.recorded(tsh, tshArgs, liveSID, within: .seconds(60))
            #expect(pending != nil, "the recording of the session cut by the kill was not uploaded:\n\(node.log.suffix(3000))")
            let replay = try await tsh.run(tshArgs + ["play", "--format=text", liveSID])
            #expect(replay.exitCode == 0 && replay.stdout.contains("before-kill-64"), "\(replay)")
            watch.lap("the cut session's recording uploaded and played")
            let again = try await tsh.run(tshArgs + ["play", "--format=text", sid])
            #expect(again.stdout.contains("watched-25"), "the earlier recording survived the restart: \(again)")
            let exit5 = try await tsh.run(tshArgs + ["ssh", "root@fenced", "exit 5"])
            #expect(exit5.exitCode == 5, "\(exit5)")
        }
    }

    // MARK: - 2. One port: tunnel_listen_addr = web_listen_addr, two nodes

    @Test(
        "multiplexed: with only the web port reachable, two fenced nodes in two namespaces join and are reachable",
        .enabled(if: TunnelNetworkTests.available, TunnelNetworkTests.skipReason), .timeLimit(.minutes(6)))
    func onePortTwoNodes() async throws {
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        try await Self.withLab(clusterName: "oneport.example", multiplexed: true) { lab, cluster, first in
            let watch = Stopwatch("onePortTwoNodes")
            let proxyHost = first.hostAddress
            try await cluster.start()
            watch.lap("cluster start")
            #expect(
                cluster.log.contains("Setup Proxy: Reverse tunnel proxy and web proxy listen on the same port, multiplexing is on."),
                "\(cluster.log.suffix(3000))")
            let prefix = try await Self.identity(cluster, proxyHost: proxyHost)
            let second = try await lab.namespace()
            watch.lap("identity, second namespace")
            for namespace in [first, second] {
                try await namespace.allowOnly([(proxyHost, cluster.webPort)])
                try await Self.expectFenced(namespace, cluster: cluster, proxyHost: proxyHost)
            }
            // The second namespace reaches the proxy through this host, at the first one's address.
            #expect(second.hostAddress != proxyHost)
            watch.lap("fences and their checks")

            var nodes: [NamespacedNode] = []
            for (namespace, name) in [(first, "alpha"), (second, "beta")] {
                let (token, pin) = try await Self.joinToken(cluster)
                let node = try lab.node(in: namespace, name: name)
                try node.start(token: token, pin: pin, proxy: "\(proxyHost):\(cluster.webPort)")
                nodes.append(node)
            }
            let listing = try await Self.listed(tsh, prefix, nodes: ["alpha", "beta"])
            watch.lap("both nodes joined (tsh ls)")
            for node in nodes {
                #expect(
                    listing.split(separator: "\n").contains { $0.contains(node.name) && $0.contains("⟵ Tunnel") },
                    "\(listing)\n\(node.log.suffix(3000))")
            }
            for (index, node) in nodes.enumerated() {
                let reached = try await Self.reachable(tsh, prefix, node: node.name, within: .seconds(40))
                #expect(reached != nil, "\(node.name) is not reachable:\n\(node.log.suffix(3000))")
                watch.lap("\(node.name) reachable")
                let ran = try await tsh.run(prefix + ["ssh", "root@\(node.name)", "echo on-$TELEPORT_NODENAME; exit \(10 + index)"])
                #expect(ran.exitCode == Int32(10 + index) && ran.stdout == "on-\(node.name)\n", "\(ran)")
                // Each dialled the web port, as the proxy's ping announced (no tunnel listener exists).
                let up = node.log.split(separator: "\n").filter { $0.contains("reverse tunnel to the proxy is up") }
                #expect(
                    !up.isEmpty && up.allSatisfy { $0.contains("tp.proxy=\(proxyHost):\(cluster.webPort)") }, "\(node.log.suffix(3000))")
            }
            // File copies both ways through the one port (SFTP over the tunnel channel), with checksums.
            let file = lab.work.appendingPathComponent("oneport.bin").path
            _ = try await TestSupport.runChecked("/bin/sh", ["-c", "head -c 5242880 /dev/urandom > \(file)"])
            let original = try await Self.sha256(file)
            let remote = lab.work.appendingPathComponent("oneport-remote")
            try FileManager.default.createDirectory(at: remote, withIntermediateDirectories: true)
            let up = try await tsh.run(prefix + ["scp", file, "root@beta:\(remote.path)/"], timeout: .seconds(120))
            #expect(up.exitCode == 0, "\(up)")
            #expect(try await Self.sha256(remote.appendingPathComponent("oneport.bin").path) == original, "the upload arrived intact")
            let back = lab.work.appendingPathComponent("oneport-back.bin").path
            let down = try await tsh.run(prefix + ["scp", "root@beta:\(remote.path)/oneport.bin", back], timeout: .seconds(120))
            #expect(down.exitCode == 0, "\(down)")
            #expect(try await Self.sha256(back) == original, "the download arrived intact")
            watch.lap("tsh scp 5 MB both ways")
        }
    }

    // MARK: - 3. A stopped proxy (SIGSTOP): keepalives notice, the node comes back after SIGCONT

    @Test(
        "kill -STOP of the proxy: the node's keepalives notice within three intervals; after SIGCONT it is reachable again",
        .enabled(if: TunnelNetworkTests.available, TunnelNetworkTests.skipReason), .timeLimit(.minutes(6)))
    func stoppedProxy() async throws {
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        try await Self.withLab(clusterName: "stopped.example", multiplexed: true) { lab, cluster, namespace in
            let watch = Stopwatch("stoppedProxy")
            let proxyHost = namespace.hostAddress
            try await cluster.start()
            let prefix = try await Self.identity(cluster, proxyHost: proxyHost)
            try await namespace.allowOnly([(proxyHost, cluster.webPort)])
            let (token, pin) = try await Self.joinToken(cluster)
            let node = try lab.node(in: namespace, name: "sleeper")
            // A keepalive every second (the default is 30 s): the variable is for tests.
            try node.start(token: token, pin: pin, proxy: "\(proxyHost):\(cluster.webPort)", environment: ["TELEPORT_UNSTABLE_TUNNEL_KEEPALIVE": "1"])
            let reached = try await Self.reachable(tsh, prefix, node: "sleeper", within: .seconds(60))
            watch.lap("cluster, node joined and reachable")
            try #require(reached != nil, "\(node.log.suffix(4000))")
            #expect(node.log.contains("TELEPORT_UNSTABLE_TUNNEL_KEEPALIVE is set"), "\(node.log.suffix(2000))")
            #expect(!node.log.contains("missed 3 keepalives"), "keepalives are answered while the proxy runs")

            let proxyPID = try #require(cluster.pid)
            kill(proxyPID, SIGSTOP)
            lab.paused = proxyPID
            let stoppedAt = ContinuousClock.now
            // Three 1 s intervals, bounded generously for a loaded machine.
            let noticed = await TestSupport.eventually(timeout: .seconds(30)) { node.log.contains("the proxy missed 3 keepalives") }
            let took = ContinuousClock.now - stoppedAt
            #expect(noticed, "the agent did not notice the stopped proxy in 30 s:\n\(node.log.suffix(3000))")
            watch.lap("the agent noticed the stopped proxy (\(Stopwatch.seconds(took)) after SIGSTOP)")
            kill(proxyPID, SIGCONT)
            lab.paused = nil
            let back = try await Self.reachable(tsh, prefix, node: "sleeper", within: .seconds(60))
            #expect(back != nil, "not reachable within 60 s of SIGCONT:\n\(node.log.suffix(4000))")
            watch.lap("reachable again after SIGCONT")
            let ups = node.log.components(separatedBy: "reverse tunnel to the proxy is up").count - 1
            #expect(ups >= 2, "the agent redialled (\(ups) tunnels)")
            let exit4 = try await tsh.run(prefix + ["ssh", "root@sleeper", "exit 4"])
            #expect(exit4.exitCode == 4, "\(exit4)")
        }
    }
}
