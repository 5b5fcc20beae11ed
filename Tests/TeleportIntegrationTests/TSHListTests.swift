import Foundation
import TeleportTestSupport
import Testing

/// `tsh ls` and `tsh known-hosts` against a cluster with a second, joined node, using an identity
/// file from `tctl auth sign` (`tsh -i`).
@Suite("tsh ls and known-hosts", .serialized)
struct TSHListTests {
    @Test(.timeLimit(.minutes(3)))
    func listFilterFormatsAndHostKeys() async throws {
        try await withCluster(try ClusterFixture(clusterName: "ls.example")) { cluster in
            try await cluster.start()
            #expect(try await cluster.tctl(["users", "add", "joe", "joe,root"]).exitCode == 0)
            let identity = cluster.directory.appendingPathComponent("joe.id").path
            #expect(try await cluster.tctl(["auth", "sign", "--user=joe", "--out=\(identity)"]).exitCode == 0)

            // A second node joins with labels env=prod,role=db.
            let added = try await cluster.tctl(["nodes", "add", "--ttl=5m"])
            let token = try #require(added.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") }?.split(separator: " ").last)
            let nodeDir = try TestSupport.makeTemporaryDirectory(prefix: "lsnode")
            defer { try? FileManager.default.removeItem(at: nodeDir) }
            let node = try TestSupport.spawnDaemon(
                try ClusterFixture.binary("teleport"),
                ["start"] + (try TestSupport.nodeListenConfig()) + [
                    "--roles=node", "--auth-server=127.0.0.1:\(cluster.authPort)", "--token=\(token)",
                    "--data-dir", nodeDir.appendingPathComponent("data").path, "--nodename", "db1", "--labels", "env=prod,role=db",
                    "--listen-ip", "127.0.0.1",
                ], logPath: nodeDir.appendingPathComponent("node.log").path)
            do {
                let tsh = try ClusterFixture.binary("tsh")
                func run(_ arguments: [String]) async throws -> CommandResult {
                    try await TestSupport.run(tsh, ["-i", identity, "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure"] + arguments)
                }
                var listed = try await run(["ls"])
                for _ in 0..<50 where !listed.stdout.contains("db1") {
                    try await Task.sleep(for: .milliseconds(100))
                    listed = try await run(["ls"])
                }
                #expect(listed.exitCode == 0, "\(listed)")
                #expect(listed.stdout.hasPrefix("Node Name"))
                #expect(listed.stdout.contains("testnode") && listed.stdout.contains("db1"), "\(listed)")

                let filtered = try await run(["ls", "env=prod,role=db"])
                #expect(filtered.stdout.contains("db1") && !filtered.stdout.contains("testnode"), "\(filtered)")
                let none = try await run(["ls", "env=prod,role=web"])
                #expect(!none.stdout.contains("db1"))
                let names = try await run(["ls", "--format", "names"])
                #expect(names.stdout.split(separator: "\n").sorted() == ["db1", "testnode"], "\(names)")
                let json = try await run(["ls", "--format", "json", "role=db"])
                let decoded = try #require(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
                #expect(decoded.count == 1)
                let verbose = try await run(["ls", "-v"])
                #expect(verbose.stdout.contains("Node ID"))
                let badFormat = try await run(["ls", "--format", "xml"])
                #expect(badFormat.exitCode != 0 && badFormat.stderr.contains("--format=xml is not known"))

                // known-hosts: db1's line carries exactly the key in its data dir.
                let lines = try await run(["known-hosts", "db1"])
                #expect(lines.exitCode == 0, "\(lines)")
                let line = try #require(lines.stdout.split(separator: "\n").first)
                #expect(line.hasPrefix("db1,db1.ls.example,"))
                let publicKey = try await TestSupport.run(
                    TestSupport.sshKeygen, ["-y", "-f", nodeDir.appendingPathComponent("data/keys/ssh_host_ed25519_key").path])
                let keyText = publicKey.stdout.split(separator: " ").prefix(2).joined(separator: " ")
                #expect(line.hasSuffix(keyText), "\(line) vs \(keyText)")
                let all = try await run(["known-hosts"])
                #expect(all.stdout.contains("@cert-authority *.ls.example,ls.example ssh-ed25519 "))

                // Without a user certificate (or a web session cookie) the proxy refuses to list: 401.
                let anonymous = try await TestSupport.run(
                    "/usr/bin/curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(cluster.webPort)/webapi/nodes"])
                #expect(anonymous.stdout == "401")
            } catch {
                await TestSupport.stopDaemon(node)
                throw error
            }
            await TestSupport.stopDaemon(node)
            await cluster.stop()
        }
    }
}
