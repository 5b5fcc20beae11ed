import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Presence and token lifetime: expired and revoked tokens, a killed node leaving the list within
/// the TTL, and two hosts claiming one name both listed by their IDs.
@Suite("node presence and tokens", .serialized)
struct NodePresenceTests {
    func token(_ cluster: ClusterFixture, ttl: String) async throws -> String {
        let added = try await cluster.tctl(["nodes", "add", "--ttl=\(ttl)"])
        #expect(added.exitCode == 0, "\(added)")
        let line = try #require(added.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") })
        return String(try #require(line.split(separator: " ").last))
    }

    func startNode(_ cluster: ClusterFixture, token: String?, name: String, directory: URL, extra: [String] = []) throws -> pid_t {
        var arguments = [
            "start", "--roles=node", "--auth-server=127.0.0.1:\(cluster.authPort)", "--data-dir",
            directory.appendingPathComponent("data").path, "--nodename", name, "--listen-ip", "127.0.0.1",
        ]
        arguments.insert(contentsOf: try TestSupport.nodeListenConfig(), at: 1)
        if let token { arguments.append("--token=\(token)") }
        arguments += extra
        return try TestSupport.spawnDaemon(try ClusterFixture.binary("teleport"), arguments, logPath: directory.appendingPathComponent("log").path)
    }

    @Test("two nodes join with a token; tctl nodes ls shows all three with static and command labels", .timeLimit(.minutes(2)))
    func threeNodesWithLabels() async throws {
        try await withCluster(try ClusterFixture(clusterName: "labels.example")) { cluster in
            try await cluster.start()
            let token = try await token(cluster, ttl: "10m")
            var pids: [pid_t] = []
            var directories: [URL] = []
            defer { for directory in directories { try? FileManager.default.removeItem(at: directory) } }
            for name in ["alpha", "beta"] {
                let directory = try TestSupport.makeTemporaryDirectory(prefix: name)
                directories.append(directory)
                pids.append(try startNode(cluster, token: token, name: name, directory: directory, extra: ["--labels", #"env=\#(name),kernel=[1m:"uname -s"]"#]))
            }
            var nodes: [[String: Any]] = []
            for _ in 0..<150 {
                let listed = try await cluster.tctl(["nodes", "ls", "--format", "json"])
                nodes = (try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]) ?? []
                let withKernel = nodes.filter { (($0["spec"] as? [String: Any])?["cmd_labels"] as? [String: Any])?["kernel"] != nil }
                if nodes.count == 3 && withKernel.count == 2 { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            let names = nodes.compactMap { ($0["spec"] as? [String: Any])?["hostname"] as? String }.sorted()
            #expect(names == ["alpha", "beta", "testnode"], "\(nodes)")
            let text = try await cluster.tctl(["nodes", "ls", "--verbose"])
            #expect(text.stdout.contains("env=alpha") && text.stdout.contains("env=beta") && text.stdout.contains("kernel=Linux"), "\(text)")
            for pid in pids { await TestSupport.stopDaemon(pid) }
            await cluster.stop()
        }
    }

    @Test("an expired token and a revoked token are refused with the documented message")
    func expiredAndRevokedTokens() async throws {
        try await withCluster(try ClusterFixture(clusterName: "tokens.example")) { cluster in
            try await cluster.start()
            let teleport = try ClusterFixture.binary("teleport")
            let directory = try TestSupport.makeTemporaryDirectory(prefix: "tok")
            defer { try? FileManager.default.removeItem(at: directory) }
            func join(_ token: String) async throws -> CommandResult {
                try await TestSupport.run(
                    teleport,
                    ["start"] + (try TestSupport.nodeListenConfig()) + ["--roles=node", "--auth-server=127.0.0.1:\(cluster.authPort)", "--token=\(token)",
                     "--data-dir", directory.appendingPathComponent("data-\(UUID().uuidString)").path, "--nodename", "late"],
                    timeout: .seconds(30))
            }
            let shortLived = try await token(cluster, ttl: "1s")
            try await Task.sleep(for: .seconds(2))
            let expired = try await join(shortLived)
            #expect(expired.exitCode != 0)
            #expect(expired.stderr.contains("the join token is not valid (unknown, expired or revoked)"), "\(expired)")

            let revoked = try await token(cluster, ttl: "10m")
            let removed = try await cluster.tctl(["tokens", "rm", revoked])
            #expect(removed.exitCode == 0, "\(removed)")
            let refused = try await join(revoked)
            #expect(refused.exitCode != 0)
            #expect(refused.stderr.contains("the join token is not valid"), "\(refused)")
            await cluster.stop()
        }
    }

    @Test("a killed node leaves the list within the TTL; two hosts with one name are both listed by ID", .timeLimit(.minutes(3)))
    func presence() async throws {
        try await withCluster(try ClusterFixture(clusterName: "presence.example")) { cluster in
            try await cluster.start()
            let value = try await token(cluster, ttl: "10m")
            let first = try TestSupport.makeTemporaryDirectory(prefix: "dup1")
            let second = try TestSupport.makeTemporaryDirectory(prefix: "dup2")
            defer {
                try? FileManager.default.removeItem(at: first)
                try? FileManager.default.removeItem(at: second)
            }
            let one = try startNode(cluster, token: value, name: "twin", directory: first)
            let two = try startNode(cluster, token: value, name: "twin", directory: second)
            var rows: [Substring] = []
            for _ in 0..<100 {
                rows = try await cluster.tctl(["nodes", "ls"]).stdout.split(separator: "\n").filter { $0.hasPrefix("twin ") }
                if rows.count == 2 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(rows.count == 2, "both hosts named twin are listed: \(rows)")
            #expect(Set(rows.map { $0.split(separator: " ", omittingEmptySubsequences: true)[1] }).count == 2, "with different IDs")

            // SIGKILL: no goodbye; the record expires with its TTL (30 s).
            kill(one, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(one, &status, 0)
            let killedAt = ContinuousClock.now
            var remaining = rows.count
            while remaining > 1, ContinuousClock.now - killedAt < .seconds(50) {
                try await Task.sleep(for: .seconds(1))
                remaining = try await cluster.tctl(["nodes", "ls"]).stdout.split(separator: "\n").filter { $0.hasPrefix("twin ") }.count
            }
            await TestSupport.stopDaemon(two)
            #expect(remaining == 1, "the killed node left the list within the TTL")
            #expect(ContinuousClock.now - killedAt < .seconds(45))
            await cluster.stop()
        }
    }

    @Test("a node removed with tctl rm loses its identity and must join again", .timeLimit(.minutes(2)))
    func removedNodeMustRejoin() async throws {
        try await withCluster(try ClusterFixture(clusterName: "remove.example")) { cluster in
            try await cluster.start()
            let value = try await token(cluster, ttl: "10m")
            let directory = try TestSupport.makeTemporaryDirectory(prefix: "removed")
            defer { try? FileManager.default.removeItem(at: directory) }
            let pid = try startNode(cluster, token: value, name: "gone", directory: directory)
            var id: String?
            for _ in 0..<100 where id == nil {
                id = try await cluster.tctl(["nodes", "ls"]).stdout.split(separator: "\n").first { $0.hasPrefix("gone ") }
                    .map { String($0.split(separator: " ", omittingEmptySubsequences: true)[1]) }
                try await Task.sleep(for: .milliseconds(100))
            }
            let nodeID = try #require(id)
            #expect(try await cluster.tctl(["rm", "node/\(nodeID)"]).exitCode == 0)

            // Its next heartbeat (within 10 s) is refused; the daemon stops and forgets its identity.
            var status: Int32 = 0
            var exited = false
            let deadline = ContinuousClock.now + .seconds(30)
            while !exited, ContinuousClock.now < deadline {
                exited = waitpid(pid, &status, WNOHANG) == pid
                if !exited { try await Task.sleep(for: .milliseconds(200)) }
            }
            if !exited { await TestSupport.stopDaemon(pid) }
            #expect(exited, "the removed node stops")
            let log = (try? String(contentsOf: directory.appendingPathComponent("log"), encoding: .utf8)) ?? ""
            #expect(log.contains("removed from the cluster"), "\(log)")
            #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("data/keys/node.crt").path))

            let again = try await TestSupport.run(
                try ClusterFixture.binary("teleport"),
                ["start"] + (try TestSupport.nodeListenConfig()) + ["--roles=node", "--auth-server=127.0.0.1:\(cluster.authPort)", "--data-dir",
                 directory.appendingPathComponent("data").path, "--nodename", "gone"], timeout: .seconds(30))
            #expect(again.exitCode != 0)
            #expect(again.stderr.contains("has not joined the cluster yet"), "\(again)")
            #expect(!(try await cluster.tctl(["nodes", "ls"]).stdout.contains("gone ")))
            await cluster.stop()
        }
    }

    @Test("an unreachable auth server is retried with backoff and a clear line, never a tight loop", .timeLimit(.minutes(1)))
    func unreachableAuthIsRetried() async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "unreachable")
        defer { try? FileManager.default.removeItem(at: directory) }
        let closedPort = try TestSupport.freeLoopbackPort()
        let pid = try TestSupport.spawnDaemon(
            try ClusterFixture.binary("teleport"),
            ["start"] + (try TestSupport.nodeListenConfig()) + ["--roles=node", "--auth-server=127.0.0.1:\(closedPort)", "--token=0123456789abcdef0123456789abcdef",
             "--data-dir", directory.appendingPathComponent("data").path, "--nodename", "lonely"],
            logPath: directory.appendingPathComponent("log").path)
        try await Task.sleep(for: .seconds(4))
        var status: Int32 = 0
        let stillRunning = waitpid(pid, &status, WNOHANG) == 0
        await TestSupport.stopDaemon(pid)
        #expect(stillRunning, "the node keeps trying")
        let log = (try? String(contentsOf: directory.appendingPathComponent("log"), encoding: .utf8)) ?? ""
        let retries = log.split(separator: "\n").filter { $0.contains("cannot join yet; retrying in") }
        #expect((2...4).contains(retries.count), "backoff 1 s, 2 s, ...: \(retries.count) lines in 4 s\n\(log)")
        #expect(log.contains("cannot reach the auth service at 127.0.0.1:\(closedPort)"))
    }
}
