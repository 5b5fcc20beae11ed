import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import TeleportTestSupport
import Testing

/// The seed's "HTTP CONNECT Proxies": a node whose way out is an HTTP proxy (a real tinyproxy,
/// started per test on a free port) joins and heartbeats through it; `NO_PROXY` bypasses it; a
/// proxy that refuses gives a one-line error naming the proxy and its answer.
@Suite("outbound connections through an HTTP CONNECT proxy", .serialized)
struct OutboundProxyTests {
    /// tinyproxy in a temporary directory, allowing 127.0.0.1 and CONNECT to `connectPorts` only;
    /// run as `nobody` when the tests run as root. Stopped by PID.
    struct Tinyproxy {
        let directory: URL
        let port: UInt16
        let pid: pid_t

        static let binary = "/usr/bin/tinyproxy"

        init(connectPorts: [UInt16]) async throws {
            try #require(
                FileManager.default.isExecutableFile(atPath: Self.binary), "tinyproxy is missing: run scripts/install-test-deps.sh")
            directory = try TestSupport.makeTemporaryDirectory(prefix: "tinyproxy")
            port = try TestSupport.freeLoopbackPort()
            let logURL = directory.appendingPathComponent("tinyproxy.log")
            let configURL = directory.appendingPathComponent("tinyproxy.conf")
            var config = """
                Port \(port)
                Listen 127.0.0.1
                Timeout 60
                LogFile "\(logURL.path)"
                LogLevel Info
                MaxClients 20
                Allow 127.0.0.1

                """
            for connectPort in connectPorts { config += "ConnectPort \(connectPort)\n" }
            if geteuid() == 0 {
                config += "User nobody\nGroup nogroup\n"
                try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: directory.path)
                try TestSupport.write("", to: logURL, permissions: 0o666)
            }
            try TestSupport.write(config, to: configURL, permissions: 0o644)
            pid = try TestSupport.spawnDaemon(
                Self.binary, ["-d", "-c", configURL.path], logPath: directory.appendingPathComponent("stderr.log").path)
            try #require(await TestSupport.waitForPort(port), "tinyproxy did not start: \(log)")
        }

        var url: String { "http://127.0.0.1:\(port)" }
        var log: String { (try? TestSupport.read(directory.appendingPathComponent("tinyproxy.log"))) ?? "" }

        func stop() async {
            await TestSupport.stopDaemon(pid)
            try? FileManager.default.removeItem(at: directory)
        }
    }

    func invite(_ cluster: ClusterFixture) async throws -> String {
        let added = try await cluster.tctl(["nodes", "add", "--ttl=10m"])
        return try #require(added.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") }?.split(separator: " ").last.map(String.init))
    }

    func nodeArguments(_ cluster: ClusterFixture, token: String, directory: URL, name: String) throws -> [String] {
        var arguments = [
            "start", "--roles=node", "--auth-server=127.0.0.1:\(cluster.authPort)", "--token=\(token)",
            "--data-dir", directory.appendingPathComponent("data").path, "--nodename", name, "--listen-ip", "127.0.0.1",
        ]
        arguments.insert(contentsOf: try TestSupport.nodeListenConfig(), at: 1)
        return arguments
    }

    func waitForNode(_ cluster: ClusterFixture, named name: String) async throws -> Bool {
        for _ in 0..<150 {
            if try await cluster.tctl(["nodes", "ls"]).stdout.contains(name) { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test("HTTPS_PROXY=host:port: the node joins and heartbeats through tinyproxy; NO_PROXY bypasses it; a refusing proxy is a one-line error")
    func joinThroughProxy() async throws {
        try await withCluster(try ClusterFixture(clusterName: "proxied.example")) { cluster in
            try await cluster.start()
            let teleport = try ClusterFixture.binary("teleport")
            let proxy = try await Tinyproxy(connectPorts: [cluster.authPort])
            let quiet = try await Tinyproxy(connectPorts: [cluster.authPort])
            let strict = try await Tinyproxy(connectPorts: [443])
            do {
                try await scenarios(cluster, teleport: teleport, proxy: proxy, quiet: quiet, strict: strict)
            } catch {
                for tinyproxy in [proxy, quiet, strict] { await tinyproxy.stop() }
                throw error
            }
            for tinyproxy in [proxy, quiet, strict] { await tinyproxy.stop() }
            await cluster.stop()
        }
    }

    @Test("HTTPS_PROXY: a node behind NAT joins through the proxy's web port and keeps its reverse tunnel through tinyproxy too")
    func tunnelThroughProxy() async throws {
        try await withCluster(try ClusterFixture(clusterName: "proxiedtunnel.example")) { cluster in
            try await cluster.start()
            let config = try TestSupport.read(cluster.configURL)
            let tunnelPort = try #require(
                config.firstMatch(of: #/tunnel_listen_addr: 127\.0\.0\.1:(\d+)/#).flatMap { UInt16($0.1) }, "\(config)")
            let proxy = try await Tinyproxy(connectPorts: [UInt16(cluster.webPort), tunnelPort])
            let nodeDir = try TestSupport.makeTemporaryDirectory(prefix: "proxied-tunnel-node")
            defer { try? FileManager.default.removeItem(at: nodeDir) }
            let nodeLog = nodeDir.appendingPathComponent("node.log")
            var arguments = [
                "start", "--roles=node", "--auth-server=127.0.0.1:\(cluster.webPort)", "--token=\(try await invite(cluster))",
                "--data-dir", nodeDir.appendingPathComponent("data").path, "--nodename", "natted1",
            ]
            // Its own free SSH port: the start-up check tries the listener before the node knows it is
            // tunnelled, and other tests may hold 3022.
            arguments.insert(contentsOf: try TestSupport.nodeListenConfig(), at: 1)
            let pid = try TestSupport.spawnDaemon(
                try ClusterFixture.binary("teleport"), arguments, logPath: nodeLog.path, environment: ["HTTPS_PROXY": proxy.url])
            let established = await TestSupport.eventually(timeout: .seconds(40)) {
                cluster.log.contains("reverse tunnel established") && proxy.log.contains("CONNECT 127.0.0.1:\(tunnelPort) HTTP/1.1")
            }
            let listing = try await cluster.tctl(["nodes", "ls"]).stdout
            let proxyLog = proxy.log
            await TestSupport.stopDaemon(pid)
            await proxy.stop()
            let nodeText = (try? TestSupport.read(nodeLog)) ?? ""
            #expect(established, "the tunnel did not go through the proxy:\n\(nodeText.suffix(3000))\ntinyproxy:\n\(proxyLog)")
            #expect(proxyLog.contains("CONNECT 127.0.0.1:\(cluster.webPort) HTTP/1.1"), "the join and the auth calls went through it too")
            #expect(listing.split(separator: "\n").contains { $0.contains("natted1") && $0.contains("⟵ Tunnel") }, "\(listing)")
            await cluster.stop()
        }
    }

    func scenarios(_ cluster: ClusterFixture, teleport: String, proxy: Tinyproxy, quiet: Tinyproxy, strict: Tinyproxy) async throws {
        do {

            // 1. Through the proxy (a bare host:port means http://).
            let token = try await invite(cluster)
            let nodeDir = try TestSupport.makeTemporaryDirectory(prefix: "proxied-node")
            defer { try? FileManager.default.removeItem(at: nodeDir) }
            let nodeLog = nodeDir.appendingPathComponent("node.log")
            let pid = try TestSupport.spawnDaemon(
                teleport, try nodeArguments(cluster, token: token, directory: nodeDir, name: "proxied1"), logPath: nodeLog.path,
                environment: ["HTTPS_PROXY": "127.0.0.1:\(proxy.port)", "NO_PROXY": "example.com,10.0.0.0/8"])
            let joined = try await waitForNode(cluster, named: "proxied1")
            let nodeText = (try? TestSupport.read(nodeLog)) ?? ""
            #expect(joined, "the node did not join through the proxy:\n\(nodeText)\ntinyproxy:\n\(proxy.log)")
            #expect(
                nodeText.contains(
                    "outbound connection to the auth server 127.0.0.1:\(cluster.authPort): through the HTTP CONNECT proxy \(proxy.url) (HTTPS_PROXY)"),
                "\(nodeText)")
            let connects = proxy.log.components(separatedBy: "CONNECT 127.0.0.1:\(cluster.authPort) HTTP/1.1").count - 1
            #expect(connects >= 3, "the CA fetch, the join and the heartbeats go through the proxy:\n\(proxy.log)")
            // Heartbeats keep going through it.
            #expect(await TestSupport.eventually(timeout: .seconds(30)) {
                proxy.log.components(separatedBy: "CONNECT 127.0.0.1:\(cluster.authPort) HTTP/1.1").count - 1 > connects
            }, "\(proxy.log)")
            await TestSupport.stopDaemon(pid)

            // 2. NO_PROXY covering the auth address: the proxy sees nothing.
            let bypassDir = try TestSupport.makeTemporaryDirectory(prefix: "bypass-node")
            defer { try? FileManager.default.removeItem(at: bypassDir) }
            let bypassLog = bypassDir.appendingPathComponent("node.log")
            let bypassPID = try TestSupport.spawnDaemon(
                teleport, try nodeArguments(cluster, token: try await invite(cluster), directory: bypassDir, name: "direct1"),
                logPath: bypassLog.path,
                environment: ["https_proxy": "http://127.0.0.1:\(quiet.port)", "no_proxy": "localhost,127.0.0.0/8"])
            let bypassJoined = try await waitForNode(cluster, named: "direct1")
            await TestSupport.stopDaemon(bypassPID)
            let bypassText = (try? TestSupport.read(bypassLog)) ?? ""
            #expect(bypassJoined, "\(bypassText)")
            #expect(bypassText.contains("127.0.0.1:\(cluster.authPort): direct (NO_PROXY)"), "\(bypassText)")
            #expect(!quiet.log.contains("CONNECT 127.0.0.1"), "\(quiet.log)")

            // 3. A proxy whose rules refuse CONNECT to the auth port: one line naming the proxy and its answer.
            let refusedDir = try TestSupport.makeTemporaryDirectory(prefix: "refused-node")
            defer { try? FileManager.default.removeItem(at: refusedDir) }
            // The daemon keeps retrying the join (the proxy's rules may change): each attempt logs the one line.
            let refusedLog = refusedDir.appendingPathComponent("node.log")
            let refusedPID = try TestSupport.spawnDaemon(
                teleport, try nodeArguments(cluster, token: try await invite(cluster), directory: refusedDir, name: "refused1"),
                logPath: refusedLog.path, environment: ["HTTPS_PROXY": strict.url])
            let expected =
                "the HTTP CONNECT proxy \(strict.url) (HTTPS_PROXY) refused the connection to 127.0.0.1:\(cluster.authPort): \"HTTP/1.1 403 Access violation\""
            let logged = await TestSupport.eventually(timeout: .seconds(20)) {
                ((try? TestSupport.read(refusedLog)) ?? "").contains(expected)
            }
            await TestSupport.stopDaemon(refusedPID)
            let refusedText = (try? TestSupport.read(refusedLog)) ?? ""
            #expect(logged, "\(refusedText)")
            for line in refusedText.split(separator: "\n") where line.contains("HTTP CONNECT proxy") && !line.contains("outbound connection") {
                #expect(line.contains(expected), "each attempt is the one line: \(line)")
            }
            #expect(!refusedText.contains("\"refused1\" joined"))
            #expect(try await cluster.tctl(["nodes", "ls"]).stdout.contains("refused1") == false)
            #expect(strict.log.contains("Refused CONNECT method on port \(cluster.authPort)"), "\(strict.log)")

            // 4. No proxy listening at the address: one line naming it.
            let deadPort = try TestSupport.freeLoopbackPort()
            let deadLog = refusedDir.appendingPathComponent("dead.log")
            let deadPID = try TestSupport.spawnDaemon(
                teleport, try nodeArguments(cluster, token: try await invite(cluster), directory: refusedDir, name: "refused2"),
                logPath: deadLog.path, environment: ["HTTPS_PROXY": "http://127.0.0.1:\(deadPort)"])
            let unreachable =
                "cannot reach the HTTP CONNECT proxy http://127.0.0.1:\(deadPort) (HTTPS_PROXY) to connect to 127.0.0.1:\(cluster.authPort): connection refused"
            let deadLogged = await TestSupport.eventually(timeout: .seconds(20)) {
                ((try? TestSupport.read(deadLog)) ?? "").contains(unreachable)
            }
            await TestSupport.stopDaemon(deadPID)
            #expect(deadLogged, "\((try? TestSupport.read(deadLog)) ?? "")")

            // 5. A malformed variable stops the daemon at start with one line.
            let malformed = try await TestSupport.run(
                teleport, try nodeArguments(cluster, token: try await invite(cluster), directory: refusedDir, name: "refused3"),
                environment: ["HTTPS_PROXY": "socks5://127.0.0.1:1080"], timeout: .seconds(30))
            #expect(malformed.exitCode != 0)
            #expect(malformed.stderr.contains("HTTPS_PROXY=socks5://127.0.0.1:1080: the scheme socks5:// is not supported"), "\(malformed)")
        }
    }
}
