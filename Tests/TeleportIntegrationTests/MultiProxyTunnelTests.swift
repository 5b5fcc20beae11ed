import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Two proxies behind one round-robin load balancer (HAProxy, mode tcp), as in the seed's "Load
/// Balancers" paragraph: an auth+proxy daemon and a proxy-only daemon joined to it, both
/// multiplexed (tunnels on the web port) and advertising the balancer as their public address. A
/// tunnelled node pointed at the balancer keeps a tunnel to each proxy (it lists the proxies'
/// presence records and dials the balancer until it holds both); `tsh ssh` reaches it through
/// either proxy and through the balancer; after one proxy is killed, the other still serves it.
@Suite("a node keeps a tunnel to every proxy behind a load balancer", .serialized)
struct MultiProxyTunnelTests {
    static let haproxy = "/usr/sbin/haproxy"
    static let proxyToken = "multiproxy-proxy-token-7f3a"
    static let nodeToken = "multiproxy-node-token-91c2"

    /// A process of ours (or HAProxy) started in a temporary directory and stopped by PID.
    final class Daemon {
        let directory: URL
        let name: String
        var pid: pid_t?
        var logURL: URL { directory.appendingPathComponent("\(name).log") }
        var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

        init(name: String) throws {
            self.name = name
            directory = try TestSupport.makeTemporaryDirectory(prefix: name)
        }

        func start(_ executable: String, _ arguments: [String]) throws {
            pid = try TestSupport.spawnDaemon(executable, arguments, logPath: logURL.path)
        }

        /// SIGKILL, then reap: the process ends without any goodbye on its connections.
        func kill9() {
            guard let pid else { return }
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            self.pid = nil
        }

        func stop() async {
            if let pid { await TestSupport.stopDaemon(pid) }
            pid = nil
        }

        func cleanUp() async {
            await stop()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// The HAProxy configuration: TCP round robin over the proxies' web ports, with health checks
    /// (a stopped proxy is taken out within a few seconds) and redispatch of refused connections.
    static func haproxyConfig(listen: UInt16, backends: [UInt16]) -> String {
        let servers = backends.enumerated().map { index, port in
            "    server proxy\(index) 127.0.0.1:\(port) check inter 1s fall 2 rise 1"
        }.joined(separator: "\n")
        return """
            global
                maxconn 512
            defaults
                mode tcp
                timeout connect 3s
                timeout client 10m
                timeout server 10m
                retries 3
                option redispatch 1
            frontend teleport
                bind 127.0.0.1:\(listen)
                default_backend proxies
            backend proxies
                balance roundrobin
            \(servers)

            """
    }

    /// Proxy B, a proxy-only process joined to the auth service at `authPort` with the proxy
    /// token `token` and announcing the balancer's address, then HAProxy on `lbPort` in front of
    /// both web ports (round robin); each started in its own directory and stopped by PID by the
    /// caller. Returns once B is ready, `tctl get proxies` lists both proxies and HAProxy listens:
    /// B's web port.
    static func startSecondProxy(
        _ proxyB: Daemon, behind balancer: Daemon, lbPort: UInt16, proxyA: UInt16, authPort: UInt16, token: String,
        tctl: ([String]) async throws -> CommandResult
    ) async throws -> UInt16 {
        let teleport = try ClusterFixture.binary("teleport")
        let polls = MultiProxyTunnelTests()
        let webB = try TestSupport.freeLoopbackPort()
        let diagB = try TestSupport.freeLoopbackPort()
        let configB = proxyB.directory.appendingPathComponent("teleport.yaml")
        try TestSupport.write(
            """
            version: v3
            teleport:
              nodename: proxy-b
              data_dir: \(proxyB.directory.appendingPathComponent("data").path)
              auth_token: \(token)
              auth_servers: [127.0.0.1:\(authPort)]
              log:
                severity: DEBUG
            auth_service:
              enabled: false
            ssh_service:
              enabled: false
            proxy_service:
              enabled: true
              listen_addr: 127.0.0.1:\(try TestSupport.freeLoopbackPort())
              web_listen_addr: 127.0.0.1:\(webB)
              proxy_listener_mode: multiplex
              public_addr: 127.0.0.1:\(lbPort)
            """, to: configB)
        try proxyB.start(teleport, ["start", "-c", configB.path, "--diag-addr", "127.0.0.1:\(diagB)"])
        let readyB = try await polls.eventually(within: .seconds(60)) {
            let probe = try await TestSupport.run("/usr/bin/curl", ["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(diagB)/readyz"])
            return probe.stdout == "200"
        }
        try #require(readyB, "proxy B did not become ready:\n\(proxyB.log.suffix(4000))")

        // Both proxies heartbeat a `proxy` record: tctl get proxies lists them.
        let listed = try await polls.eventually(within: .seconds(30)) {
            let proxies = try await tctl(["get", "proxies"]).stdout
            return proxies.contains("hostname: proxy-a") && proxies.contains("hostname: proxy-b")
        }
        let proxies = try await tctl(["get", "proxies"])
        try #require(listed, "\(proxies)")
        #expect(proxies.stdout.contains("kind: proxy") && proxies.stdout.contains("127.0.0.1:\(lbPort)"), "\(proxies)")

        // HAProxy in front of both web ports (round robin).
        let balancerConfig = balancer.directory.appendingPathComponent("haproxy.cfg")
        try TestSupport.write(haproxyConfig(listen: lbPort, backends: [proxyA, webB]), to: balancerConfig)
        try balancer.start(haproxy, ["-db", "-f", balancerConfig.path])
        try #require(await TestSupport.waitForPort(lbPort, timeout: .seconds(20)), "haproxy did not listen:\n\(balancer.log)")
        return webB
    }

    /// Polls `check` every 300 ms until it holds or `limit` passes.
    func eventually(within limit: Duration, _ check: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await check() { return true }
            try await Task.sleep(for: .milliseconds(300))
        }
        return false
    }

    @Test(
        .enabled(if: SSHDFixture.available, "needs root and openssh-client"),
        .enabled(if: FileManager.default.isExecutableFile(atPath: haproxy), "needs haproxy (scripts/install-test-deps.sh)"),
        .timeLimit(.minutes(6)))
    func tunnelToEachProxy() async throws {
        let lbPort = try TestSupport.freeLoopbackPort()
        let cluster = try ClusterFixture(clusterName: "multi.example")
        // Proxy A runs with auth; its config is replaced (same ports) to multiplex the web port,
        // advertise the balancer, and accept a proxy and a node token.
        try TestSupport.write(
            """
            version: v3
            teleport:
              nodename: proxy-a
              data_dir: \(cluster.dataDir.path)
              log:
                severity: DEBUG
            auth_service:
              cluster_name: multi.example
              listen_addr: 127.0.0.1:\(cluster.authPort)
              tokens:
                - "proxy:\(Self.proxyToken)"
                - "node:\(Self.nodeToken)"
            proxy_service:
              listen_addr: 127.0.0.1:\(cluster.proxyPort)
              web_listen_addr: 127.0.0.1:\(cluster.webPort)
              proxy_listener_mode: multiplex
              public_addr: 127.0.0.1:\(lbPort)
            ssh_service:
              enabled: false
            """, to: cluster.configURL)
        let proxyB = try Daemon(name: "proxy-b")
        let balancer = try Daemon(name: "haproxy")
        let node = try Daemon(name: "tunnelnode")
        defer {
            for daemon in [node, balancer, proxyB] {
                if let pid = daemon.pid { kill(pid, SIGKILL) }
            }
        }
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            do {
                try await exercise(cluster: cluster, proxyB: proxyB, balancer: balancer, node: node, lbPort: lbPort)
            } catch {
                Issue.record("node log:\n\(node.log.suffix(6000))\nproxy-b log:\n\(proxyB.log.suffix(4000))\nhaproxy:\n\(balancer.log.suffix(2000))")
                for daemon in [node, balancer, proxyB] { await daemon.cleanUp() }
                throw error
            }
            for daemon in [node, balancer, proxyB] { await daemon.cleanUp() }
            await cluster.stop()
        }
    }

    func exercise(cluster: ClusterFixture, proxyB: Daemon, balancer: Daemon, node: Daemon, lbPort: UInt16) async throws {
        let teleport = try ClusterFixture.binary("teleport")
        let tsh = try ClusterFixture.binary("tsh")

        let webB = try await Self.startSecondProxy(
            proxyB, behind: balancer, lbPort: lbPort, proxyA: cluster.webPort, authPort: cluster.authPort, token: Self.proxyToken,
            tctl: { try await cluster.tctl($0) })

        // The node knows only the balancer: it joins, and keeps its tunnels, through it.
        let nodeConfig = node.directory.appendingPathComponent("teleport.yaml")
        try TestSupport.write(
            """
            version: v3
            teleport:
              nodename: tunnelnode
              data_dir: \(node.directory.appendingPathComponent("data").path)
              auth_token: \(Self.nodeToken)
              proxy_server: 127.0.0.1:\(lbPort)
              log:
                severity: DEBUG
            auth_service:
              enabled: false
            proxy_service:
              enabled: false
            ssh_service:
              enabled: true
            """, to: nodeConfig)
        try node.start(teleport, ["start", "-c", nodeConfig.path])

        var row: Substring?
        _ = try await eventually(within: .seconds(40)) {
            row = try await cluster.tctl(["nodes", "ls"]).stdout.split(separator: "\n").first { $0.contains("tunnelnode") }
            return row != nil
        }
        let nodeRow = try #require(row, "the node did not register:\n\(node.log.suffix(4000))")
        #expect(nodeRow.contains("⟵ Tunnel"), "\(nodeRow)")
        let uuid = String(try #require(nodeRow.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first))

        // A tunnel to each proxy: each proxy logged the node's tunnel.
        func hasTunnel(_ log: String) -> Bool {
            log.split(separator: "\n").contains { $0.contains("reverse tunnel established") && $0.contains(uuid) }
        }
        let both = try await eventually(within: .seconds(60)) { hasTunnel(cluster.log) && hasTunnel(proxyB.log) }
        #expect(both, "proxy A has the tunnel: \(hasTunnel(cluster.log)); proxy B: \(hasTunnel(proxyB.log))\n\(node.log.suffix(4000))")

        // tsh ssh through each proxy directly, and through the balancer.
        #expect(try await cluster.tctl(["users", "add", "joe", "root"]).exitCode == 0)
        let identity = cluster.directory.appendingPathComponent("joe.id").path
        #expect(try await cluster.tctl(["auth", "sign", "--user=joe", "--out=\(identity)"]).exitCode == 0)
        func ssh(via port: UInt16, _ marker: String) async throws -> CommandResult {
            try await TestSupport.run(
                tsh, ["-i", identity, "--proxy=127.0.0.1:\(port)", "--insecure", "ssh", "root@tunnelnode", "echo \(marker)"], timeout: .seconds(30))
        }
        for (port, marker) in [(cluster.webPort, "via-proxy-a"), (webB, "via-proxy-b"), (lbPort, "via-balancer")] {
            let result = try await ssh(via: port, marker)
            #expect(result.exitCode == 0 && result.stdout == "\(marker)\n", "\(marker): \(result)")
        }

        // Proxy B is killed: the node stays reachable through A (directly and through the
        // balancer once its health check took B out), and its agent saw B's tunnel end.
        proxyB.kill9()
        let ended = try await eventually(within: .seconds(30)) { node.log.contains("reverse tunnel to proxy") && node.log.contains("ended") }
        #expect(ended, "\(node.log.suffix(3000))")
        for attempt in 0..<3 {
            let result = try await ssh(via: cluster.webPort, "still-there-\(attempt)")
            #expect(result.exitCode == 0 && result.stdout == "still-there-\(attempt)\n", "\(result)")
        }
        let viaBalancer = try await eventually(within: .seconds(30)) {
            try await ssh(via: lbPort, "balanced").stdout == "balanced\n"
        }
        #expect(viaBalancer, "the balancer did not reach the node through proxy A")

        // B's record expires like a node's; the agent then seeks it no more and keeps A's tunnel.
        let expired = try await eventually(within: .seconds(60)) {
            !(try await cluster.tctl(["get", "proxies"]).stdout.contains("hostname: proxy-b"))
        }
        #expect(expired, "proxy B's record outlived its heartbeats")
        let final = try await ssh(via: cluster.webPort, "after-expiry")
        #expect(final.exitCode == 0 && final.stdout == "after-expiry\n", "\(final)")
    }
}
