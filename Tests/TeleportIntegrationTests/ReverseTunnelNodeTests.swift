import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A node with no listening port, configured with `teleport.proxy_server`: it keeps a reverse
/// tunnel to the proxy (mutual TLS with its host certificate, SSH inside), and users reach it
/// through the proxy exactly as a direct node — `tsh ssh`, `tsh scp`, OpenSSH via `tsh config` —
/// also after the proxy was killed and restarted; `tctl rm node/UUID` closes its tunnel.
@Suite("a node behind a reverse tunnel", .serialized)
struct ReverseTunnelNodeTests {
    /// The tunnelled node's process.
    final class TunnelledNode {
        let directory: URL
        let config: URL
        var pid: pid_t?
        var log: String { (try? String(contentsOf: directory.appendingPathComponent("node.log"), encoding: .utf8)) ?? "" }

        init(cluster: ClusterFixture, token: String, pin: String) throws {
            directory = try TestSupport.makeTemporaryDirectory(prefix: "tunnel-node")
            config = directory.appendingPathComponent("teleport.yaml")
            try TestSupport.write(
                """
                version: v3
                teleport:
                  nodename: tunnelnode
                  data_dir: \(directory.appendingPathComponent("data").path)
                  auth_token: \(token)
                  ca_pin: \(pin)
                  auth_servers: [127.0.0.1:\(cluster.authPort)]
                  proxy_server: 127.0.0.1:\(cluster.webPort)
                  log:
                    severity: DEBUG
                auth_service:
                  enabled: false
                proxy_service:
                  enabled: false
                ssh_service:
                  enabled: true
                  labels:
                    where: behind-nat
                """, to: config)
        }

        func start(arguments: [String] = []) throws {
            pid = try TestSupport.spawnDaemon(
                try ClusterFixture.binary("teleport"), ["start", "-c", config.path] + arguments,
                logPath: directory.appendingPathComponent("node.log").path)
        }

        func stop() async {
            if let pid { await TestSupport.stopDaemon(pid) }
            pid = nil
            try? FileManager.default.removeItem(at: directory)
        }
    }

    func sha256(_ path: String) async throws -> String {
        String(try await TestSupport.run("/usr/bin/sha256sum", [path]).stdout.prefix(64))
    }

    /// Polls `tsh ssh root@tunnelnode CMD` until it exits 0 or `limit` passes.
    func reachable(_ tsh: TSHRunner, within limit: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let result = try await tsh.run(["--insecure", "ssh", "root@tunnelnode", "true"], timeout: .seconds(20))
            if result.exitCode == 0 { return true }
            try await Task.sleep(for: .milliseconds(300))
        }
        return false
    }

    @Test(.enabled(if: SSHDFixture.available, "needs root and openssh-client"), .timeLimit(.minutes(6)))
    func tunnelledNode() async throws {
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        try await withCluster(try ClusterFixture(clusterName: "tunnel.example")) { cluster in
            var codes = try await TSHLoginTests.signUp(cluster)
            let login = try await TSHLoginTests.login(
                tsh, ["--proxy=127.0.0.1:\(cluster.webPort)", "--user=joe", "--insecure"], password: TSHLoginTests.password,
                code: try await codes.next())
            try #require(login.status == 0, "\(login.transcript)")

            let added = try await cluster.tctl(["nodes", "add", "--ttl=10m"])
            let token = try #require(added.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") }?.split(separator: " ").last)
            let pin = try #require(added.stdout.range(of: #"sha256:[0-9a-f]{64}"#, options: .regularExpression).map { String(added.stdout[$0]) })
            let node = try TunnelledNode(cluster: cluster, token: String(token), pin: pin)
            try node.start()
            do {
                try await exercise(tsh, cluster: cluster, node: node)
            } catch {
                await node.stop()
                throw error
            }
            await node.stop()
            await cluster.stop()
        }
    }

    func exercise(_ tsh: TSHRunner, cluster: ClusterFixture, node: TunnelledNode) async throws {

            // Registered as tunnelled, with no address of its own.
            var listing = ""
            for _ in 0..<150 where !listing.contains("tunnelnode") {
                listing = try await cluster.tctl(["nodes", "ls"]).stdout
                if !listing.contains("tunnelnode") { try await Task.sleep(for: .milliseconds(200)) }
            }
            let row = try #require(listing.split(separator: "\n").first { $0.contains("tunnelnode") }, "\(listing)\n\(node.log)")
            #expect(row.contains("⟵ Tunnel"), "\(listing)")
            let uuid = String(try #require(row.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first))
            let ls = try await tsh.run(["--insecure", "ls"])
            #expect(ls.stdout.split(separator: "\n").contains { $0.contains("tunnelnode") && $0.contains("⟵ Tunnel") }, "\(ls)")
            #expect(node.log.contains("binds no port"), "\(node.log)")

            // tsh ssh: exit codes travel back.
            #expect(try await reachable(tsh, within: .seconds(90)), "\(node.log)\n\(cluster.log.suffix(3000))")
            #expect(cluster.log.contains("reverse tunnel established"), "the proxy saw no tunnel")
            #expect(!node.log.contains("SSH service is listening"), "a tunnelled node without listen_addr binds no port")
            let exit7 = try await tsh.run(["--insecure", "ssh", "root@tunnelnode", "echo over-the-tunnel; exit 7"])
            #expect(exit7.exitCode == 7 && exit7.stdout == "over-the-tunnel\n", "\(exit7)")
            // The session's environment names both ends, as on a direct node (scripts read them).
            let env = try await tsh.run(["--insecure", "ssh", "root@tunnelnode", "echo \"$SSH_CONNECTION|$SSH_CLIENT\""])
            let ends = env.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|", omittingEmptySubsequences: false)
            #expect(ends.count == 2 && ends.allSatisfy { $0.split(separator: " ").count >= 3 }, "\(env)")

            // tsh scp, 10 MB both ways, with checksums (EOF maps through the tunnel).
            let work = try TestSupport.makeTemporaryDirectory(prefix: "tunnel-work")
            defer { try? FileManager.default.removeItem(at: work) }
            let big = work.appendingPathComponent("big.bin").path
            _ = try await TestSupport.run("/bin/sh", ["-c", "head -c 10485760 /dev/urandom > \(big)"])
            let remote = work.appendingPathComponent("remote")
            try FileManager.default.createDirectory(at: remote, withIntermediateDirectories: true)
            let up = try await tsh.run(["--insecure", "scp", big, "root@tunnelnode:\(remote.path)/"], timeout: .seconds(120))
            #expect(up.exitCode == 0, "\(up)")
            let original = try await sha256(big)
            #expect(try await sha256(remote.appendingPathComponent("big.bin").path) == original)
            let back = work.appendingPathComponent("back.bin").path
            let down = try await tsh.run(["--insecure", "scp", "root@tunnelnode:\(remote.path)/big.bin", back], timeout: .seconds(120))
            #expect(down.exitCode == 0, "\(down)")
            #expect(try await sha256(back) == original)

            // OpenSSH through the block tsh config prints (ProxyCommand: the proxy's dialer).
            let printed = try await tsh.run(["--insecure", "config"])
            let sshConfig = work.appendingPathComponent("ssh_config")
            try TestSupport.write(printed.stdout + "Host *\n    BatchMode yes\n    LogLevel ERROR\n", to: sshConfig)
            let openSSH = try await TestSupport.run(
                TestSupport.ssh, ["-F", sshConfig.path, "root@tunnelnode.tunnel.example", "echo via-openssh; exit 6"], environment: tsh.environment)
            #expect(openSSH.exitCode == 6 && openSSH.stdout == "via-openssh\n", "\(openSSH)")

            // The proxy (with auth, one process here) is killed and restarted: the node's agent
            // redials with backoff and the node is reachable again within 60 s.
            let proxyPID = try #require(cluster.pid)
            kill(proxyPID, SIGKILL)
            var status: Int32 = 0
            waitpid(proxyPID, &status, 0)
            try await cluster.start()
            #expect(try await reachable(tsh, within: .seconds(60)), "\(node.log.suffix(4000))")

            // tctl rm node/UUID: the proxy closes the tunnel; the node is unreachable.
            let removed = try await cluster.tctl(["rm", "node/\(uuid)"])
            #expect(removed.exitCode == 0, "\(removed)")
            var gone = false
            for _ in 0..<60 where !gone {
                let attempt = try await tsh.run(["--insecure", "ssh", "root@tunnelnode", "true"], timeout: .seconds(20))
                gone = attempt.exitCode != 0
                if !gone { try await Task.sleep(for: .milliseconds(500)) }
            }
            #expect(gone, "the removed node stayed reachable")
    }
}
