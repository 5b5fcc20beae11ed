import Foundation
import TeleportTestSupport
import Testing

/// A second host joins the cluster with a token, checking the CA pin before it sends the token.
@Suite("nodes join", .serialized)
struct NodeJoinTests {
    /// A node-only host with its own data dir; stopped and removed by the caller.
    struct JoiningNode {
        let directory: URL
        let logURL: URL
        var pid: pid_t?

        init() throws {
            directory = try TestSupport.makeTemporaryDirectory(prefix: "node")
            logURL = directory.appendingPathComponent("node.log")
        }

        /// `viaProxy`: the seed's join through the proxy's web port (`--auth-server=PROXY:3080`).
        func arguments(cluster: ClusterFixture, token: String?, pin: String?, name: String, viaProxy: Bool = false) throws -> [String] {
            var arguments = [
                "start", "--roles=node", "--auth-server=127.0.0.1:\(viaProxy ? cluster.webPort : cluster.authPort)", "--data-dir", directory.appendingPathComponent("data").path,
                "--nodename", name, "--labels", "env=dev,kernel=[1m:\"uname -s\"]", "--listen-ip", "127.0.0.1",
            ]
            arguments.insert(contentsOf: try TestSupport.nodeListenConfig(), at: 1)
            if let token { arguments.append("--token=\(token)") }
            if let pin { arguments.append("--ca-pin=\(pin)") }
            return arguments
        }

        var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }
    }

    func invite(_ cluster: ClusterFixture) async throws -> (token: String, pin: String, output: String) {
        let added = try await cluster.tctl(["nodes", "add", "--ttl=10m"])
        #expect(added.exitCode == 0, "\(added)")
        let token = try #require(added.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") }?.split(separator: " ").last)
        let pin = try #require(added.stdout.range(of: #"sha256:[0-9a-f]{64}"#, options: .regularExpression).map { String(added.stdout[$0]) })
        return (String(token), pin, added.stdout)
    }

    func waitForNode(_ cluster: ClusterFixture, named name: String) async throws -> Bool {
        for _ in 0..<100 {
            if try await cluster.tctl(["nodes", "ls"]).stdout.contains(name) { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test("tctl nodes add prints a working teleport start line; the node joins, heartbeats and restarts without the token")
    func joinWithPin() async throws {
        try await withCluster(try ClusterFixture(clusterName: "join.example")) { cluster in
            try await cluster.start()
            let (token, pin, output) = try await invite(cluster)
            #expect(token.count == 32)
            #expect(output.contains("--roles=node \\"))
            #expect(output.contains("--auth-server=127.0.0.1:\(cluster.authPort)"))
            let status = try await cluster.tctl(["status"])
            #expect(status.stdout.contains(pin), "the printed pin is the cluster's")

            var node = try JoiningNode()
            defer { try? FileManager.default.removeItem(at: node.directory) }
            let teleport = try ClusterFixture.binary("teleport")
            node.pid = try TestSupport.spawnDaemon(teleport, try node.arguments(cluster: cluster, token: token, pin: pin, name: "worker1"), logPath: node.logURL.path)
            let joined = try await waitForNode(cluster, named: "worker1")
            if let pid = node.pid { await TestSupport.stopDaemon(pid) }
            #expect(joined, "node did not join:\n\(node.log)")
            let listed = try await cluster.tctl(["nodes", "ls"])
            #expect(listed.stdout.contains("env=dev"))
            #expect(listed.stdout.contains("kernel=Linux"), "dynamic label: \(listed)")
            #expect(!node.log.contains("without a CA pin"))
            // The node's SSH host key was registered: its fingerprint is what ssh-keygen computes.
            let hostKeyPath = node.directory.appendingPathComponent("data/keys/ssh_host_ed25519_key").path
            let fingerprint = try await TestSupport.run(TestSupport.sshKeygen, ["-l", "-f", hostKeyPath])
            let expected = try #require(fingerprint.stdout.split(separator: " ").dropFirst().first.map(String.init))
            let json = try await cluster.tctl(["get", "nodes", "--format", "json"])
            #expect(json.stdout.contains("\"host_key_fingerprint\" : \"\(expected)\""), "\(json.stdout)")
            let identityMode = try FileManager.default.attributesOfItem(
                atPath: node.directory.appendingPathComponent("data/keys/node.key").path)[.posixPermissions] as? Int
            #expect(identityMode == 0o600)

            // Later starts reuse the stored identity: no token needed, even after it is revoked.
            let tokens = try await cluster.tctl(["tokens", "ls"])
            #expect(tokens.stdout.contains("Node"), "\(tokens)")
            #expect(!tokens.stdout.contains(token), "token values are not stored or shown")
            #expect(try await cluster.tctl(["tokens", "rm", token]).exitCode == 0)
            let restartLog = node.directory.appendingPathComponent("restart.log")
            let again = try TestSupport.spawnDaemon(
                teleport, try node.arguments(cluster: cluster, token: nil, pin: nil, name: "worker1"), logPath: restartLog.path)
            var ready = false
            for _ in 0..<100 where !ready {
                ready = ((try? String(contentsOf: restartLog, encoding: .utf8)) ?? "").contains("teleport is ready")
                try await Task.sleep(for: .milliseconds(100))
            }
            await TestSupport.stopDaemon(again)
            #expect(ready, "\((try? String(contentsOf: restartLog, encoding: .utf8)) ?? "")")
            await cluster.stop()
        }
    }

    @Test(
        "a wrong CA pin stops the join before the token is sent; a bad, expired or wrong-type token is refused and audited (direct and through the proxy's web port)",
        arguments: [false, true])
    func refusals(viaProxy: Bool) async throws {
        try await withCluster(try ClusterFixture(clusterName: "refuse.example")) { cluster in
            try await cluster.start()
            let (token, pin, _) = try await invite(cluster)
            let teleport = try ClusterFixture.binary("teleport")
            let node = try JoiningNode()
            defer { try? FileManager.default.removeItem(at: node.directory) }

            let wrongPin = "sha256:" + String(repeating: "0", count: 64)
            let pinned = try await TestSupport.run(
                teleport, try node.arguments(cluster: cluster, token: token, pin: wrongPin, name: "evil", viaProxy: viaProxy), timeout: .seconds(30))
            #expect(pinned.exitCode != 0)
            #expect(pinned.stderr.contains("does not match --ca-pin; refusing to send the token"), "\(pinned)")

            let badToken = try await TestSupport.run(
                teleport, try node.arguments(cluster: cluster, token: "0123456789abcdef0123456789abcdef", pin: pin, name: "evil", viaProxy: viaProxy),
                timeout: .seconds(30))
            #expect(badToken.exitCode != 0)
            #expect(badToken.stderr.contains("the join token is not valid"), "\(badToken)")

            // A token past its TTL is refused the same way.
            let shortLived = try await cluster.tctl(["nodes", "add", "--ttl=1s"])
            let expiredToken = try #require(
                shortLived.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") }?.split(separator: " ").last.map(String.init))
            try await Task.sleep(for: .milliseconds(2200))
            let expired = try await TestSupport.run(
                teleport, try node.arguments(cluster: cluster, token: expiredToken, pin: pin, name: "evil", viaProxy: viaProxy), timeout: .seconds(30))
            #expect(expired.exitCode != 0)
            #expect(expired.stderr.contains("the join token is not valid (unknown, expired or revoked)"), "\(expired)")

            // The proxy's listeners on free ports (the defaults may be taken by another test).
            let proxyConfig = node.directory.appendingPathComponent("proxy.yaml")
            try TestSupport.write(
                """
                proxy_service:
                  listen_addr: 127.0.0.1:\(try TestSupport.freeLoopbackPort())
                  web_listen_addr: 127.0.0.1:\(try TestSupport.freeLoopbackPort())
                  tunnel_listen_addr: 127.0.0.1:\(try TestSupport.freeLoopbackPort())
                """, to: proxyConfig)
            var proxyArguments = try node.arguments(cluster: cluster, token: token, pin: pin, name: "evil", viaProxy: viaProxy)
                .map { $0 == "--roles=node" ? "--roles=proxy" : $0 }
            proxyArguments[2] = proxyConfig.path  // after "start", "-c"
            let proxyWithNodeToken = try await TestSupport.run(
                teleport, proxyArguments + ["--diag-addr", "127.0.0.1:\(try TestSupport.freeLoopbackPort())"], timeout: .seconds(30))
            #expect(proxyWithNodeToken.exitCode != 0)
            #expect(proxyWithNodeToken.stderr.contains("does not allow joining as Proxy"), "\(proxyWithNodeToken)")

            let noToken = try await TestSupport.run(teleport, try node.arguments(cluster: cluster, token: nil, pin: pin, name: "evil", viaProxy: viaProxy))
            #expect(noToken.exitCode != 0)
            #expect(noToken.stderr.contains("has not joined the cluster yet"), "\(noToken)")

            let audit = try FileManager.default.contentsOfDirectory(atPath: cluster.dataDir.appendingPathComponent("log").path)
                .map { try String(contentsOfFile: cluster.dataDir.appendingPathComponent("log/\($0)").path, encoding: .utf8) }.joined()
            let joins = audit.split(separator: "\n").filter { $0.contains("\"node.join\"") }
            #expect(joins.count == 3, "the wrong-pin attempt never reached the server: \(joins)")
            #expect(joins.allSatisfy { $0.contains("\"success\":false") && $0.contains("T9200W") })
            #expect(!audit.contains(token), "the token never appears in the audit log")
            await cluster.stop()
        }
    }

    @Test("a static token from auth_service.tokens works; joining without a pin warns")
    func staticTokenWithoutPin() async throws {
        let cluster = try ClusterFixture(clusterName: "static.example", extraYAML: "")
        var config = try String(contentsOf: cluster.configURL, encoding: .utf8)
        config = config.replacingOccurrences(
            of: "  listen_addr: 127.0.0.1:\(cluster.authPort)\n",
            with: "  listen_addr: 127.0.0.1:\(cluster.authPort)\n  tokens:\n    - \"node:static-secret-token-42\"\n")
        try TestSupport.write(config, to: cluster.configURL)
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            var node = try JoiningNode()
            defer { try? FileManager.default.removeItem(at: node.directory) }
            node.pid = try TestSupport.spawnDaemon(
                try ClusterFixture.binary("teleport"),
                try node.arguments(cluster: cluster, token: "static-secret-token-42", pin: nil, name: "staticnode"), logPath: node.logURL.path)
            let joined = try await waitForNode(cluster, named: "staticnode")
            if let pid = node.pid { await TestSupport.stopDaemon(pid) }
            #expect(joined, "\(node.log)")
            #expect(node.log.contains("joining without a CA pin"), "\(node.log)")
            let tokens = try await cluster.tctl(["tokens", "ls"])
            #expect(tokens.stdout.contains("never"), "\(tokens)")
            #expect(!tokens.stdout.contains("static-secret-token-42"))
            await cluster.stop()
        }
    }
}
