import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Graceful restart with a node behind a reverse tunnel (its own process): SIGHUP to the
/// auth/proxy process while a session on the tunnelled node is open and a loop of new `tsh ssh
/// root@tunnelnode true` runs. The draining process tells the node's agent it drains
/// (`draining@teleport`), the agent dials the new process and keeps the old tunnel for the open
/// session, and the new proxy waits a few seconds for a missing tunnel while it is young: the
/// session survives and no `tsh ssh` of the loop fails.
@Suite("graceful restart with a tunnelled node", .serialized)
struct GracefulRestartTunnelTests {
    typealias Restart = GracefulRestartIntegrationTests

    @Test(.enabled(if: SSHDFixture.available, "needs root and openssh-client"), .timeLimit(.minutes(5)))
    func hangupWithATunnelledNode() async throws {
        try await Restart.withRestartSetup { setup in
            let cluster = setup.cluster
            let old = try #require(cluster.pid)
            let added = try await cluster.tctl(["nodes", "add", "--ttl=10m"])
            let token = try #require(added.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") }?.split(separator: " ").last)
            let pin = try #require(CARotationClusterTests.pin(added.stdout))
            let node = try ReverseTunnelNodeTests.TunnelledNode(cluster: cluster, token: String(token), pin: pin)
            try node.start()
            do {
                var reached = try await setup.tsh(["ssh", "root@tunnelnode", "true"])
                let deadline = ContinuousClock.now + .seconds(90)
                while reached.exitCode != 0, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(300))
                    reached = try await setup.tsh(["ssh", "root@tunnelnode", "true"])
                }
                try #require(reached.exitCode == 0, "\(reached)\n\(node.log.suffix(3000))")
                let loop = Restart.Loop()
                let looping = Task {
                    while !loop.isStopped {
                        guard let result = try? await setup.tsh(["ssh", "root@tunnelnode", "true"]) else { continue }
                        loop.record(result)
                    }
                }
                let session = Task { try await setup.tsh(["ssh", "-t", "root@tunnelnode", "sleep 20; echo survived"]) }
                var listed = try await setup.tsh(["sessions", "ls"])
                let listedBy = ContinuousClock.now + .seconds(60)
                while !listed.stdout.contains("sleep 20"), ContinuousClock.now < listedBy {
                    try await Task.sleep(for: .milliseconds(200))
                    listed = try await setup.tsh(["sessions", "ls"])
                }
                #expect(listed.stdout.contains("sleep 20"), "\(listed)")
                let reload = try await TestSupport.run("/bin/kill", ["-HUP", "\(Restart.pidFile(cluster) ?? 0)"])
                #expect(reload.exitCode == 0)
                let new = try await Restart.nextPID(cluster, after: old)
                let ended = try await session.value
                #expect(ended.exitCode == 0 && ended.stdout.contains("survived"), "\(ended)")
                #expect(await Restart.ended(old, within: .seconds(60)), "the old process did not stop after draining")
                // Some rounds once only the new process serves.
                try await Task.sleep(for: .seconds(10))
                loop.stop()
                await looping.value
                let summary = loop.summary
                print("graceful restart with a tunnelled node: \(summary.failures.count) of \(summary.runs) tsh ssh failed across SIGHUP")
                #expect(summary.runs >= 5 && summary.failures.isEmpty, "\(summary.runs) runs, \(summary.failures.count) failures: \(summary.failures.prefix(3))")
                #expect(Restart.running(new))
                if !summary.failures.isEmpty || !Restart.running(new) {
                    Issue.record("cluster log:\n\(cluster.log.split(separator: "\n").filter { !$0.contains(" debug ") }.suffix(60).joined(separator: "\n"))")
                }
                // The way it worked: the old process told the agent it drains, and the agent moved.
                #expect(cluster.log.contains("draining: told 1 reverse tunnel agent(s)"), "\(cluster.log.suffix(3000))")
                #expect(node.log.contains("drains (a graceful restart); dialling its new process"), "\(node.log.suffix(3000))")
            } catch {
                Issue.record("cluster log:\n\(cluster.log.split(separator: "\n").filter { !$0.contains("DEBU") && !$0.contains(" debug ") }.suffix(40).joined(separator: "\n"))")
                Issue.record("node log:\n\(node.log.split(separator: "\n").filter { !$0.contains("DEBU") }.suffix(30).joined(separator: "\n"))")
                await node.stop()
                throw error
            }
            await node.stop()
        }
    }

    /// SIGHUP to the tunnelled node's own process: its new process's agent dials the proxy (whose
    /// registry routes new channels to the newest tunnel and keeps the old one for its session),
    /// and the old process retires its agent (no redial; its tunnel closes when the session ends).
    @Test(.enabled(if: SSHDFixture.available, "needs root and openssh-client"), .timeLimit(.minutes(5)))
    func hangupOfTheTunnelledNode() async throws {
        try await Restart.withRestartSetup { setup in
            let cluster = setup.cluster
            let added = try await cluster.tctl(["nodes", "add", "--ttl=10m"])
            let token = try #require(added.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") }?.split(separator: " ").last)
            let pin = try #require(CARotationClusterTests.pin(added.stdout))
            let node = try ReverseTunnelNodeTests.TunnelledNode(cluster: cluster, token: String(token), pin: pin)
            let pidFile = node.directory.appendingPathComponent("node.pid")
            try node.start(arguments: ["--pid-file", pidFile.path])
            func pidFromFile() -> pid_t? {
                (try? String(contentsOf: pidFile, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            }
            var newNode: pid_t?
            do {
                let old = try #require(node.pid)
                var reached = try await setup.tsh(["ssh", "root@tunnelnode", "true"])
                let deadline = ContinuousClock.now + .seconds(90)
                while reached.exitCode != 0, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(300))
                    reached = try await setup.tsh(["ssh", "root@tunnelnode", "true"])
                }
                try #require(reached.exitCode == 0, "\(reached)\n\(node.log.suffix(3000))")
                let loop = Restart.Loop()
                let looping = Task {
                    while !loop.isStopped {
                        guard let result = try? await setup.tsh(["ssh", "root@tunnelnode", "true"]) else { continue }
                        loop.record(result)
                    }
                }
                let session = Task { try await setup.tsh(["ssh", "-t", "root@tunnelnode", "sleep 20; echo survived"]) }
                var listed = try await setup.tsh(["sessions", "ls"])
                let listedBy = ContinuousClock.now + .seconds(60)
                while !listed.stdout.contains("sleep 20"), ContinuousClock.now < listedBy {
                    try await Task.sleep(for: .milliseconds(200))
                    listed = try await setup.tsh(["sessions", "ls"])
                }
                #expect(listed.stdout.contains("sleep 20"), "\(listed)")
                #expect(kill(old, SIGHUP) == 0)
                let movedBy = ContinuousClock.now + .seconds(60)
                while newNode == nil, ContinuousClock.now < movedBy {
                    if let pid = pidFromFile(), pid != old { newNode = pid }
                    try await Task.sleep(for: .milliseconds(50))
                }
                let new = try #require(newNode, "the node's pid file still names \(old):\n\(node.log.suffix(3000))")
                let ended = try await session.value
                #expect(ended.exitCode == 0 && ended.stdout.contains("survived"), "\(ended)")
                let oldEnded = await Restart.ended(old, within: .seconds(60))
                #expect(oldEnded, "the old node process did not stop after draining")
                // Reaped: never signal that pid again (it may be reused).
                if oldEnded { node.pid = nil }
                try await Task.sleep(for: .seconds(10))
                loop.stop()
                await looping.value
                let summary = loop.summary
                print("graceful restart of a tunnelled node: \(summary.failures.count) of \(summary.runs) tsh ssh failed across SIGHUP")
                #expect(summary.runs >= 5 && summary.failures.isEmpty, "\(summary.runs) runs, \(summary.failures.count) failures: \(summary.failures.prefix(3))")
                #expect(Restart.running(new))
                #expect(node.log.contains("its reverse tunnels close once their sessions end"), "\(node.log.suffix(3000))")
                if !summary.failures.isEmpty {
                    Issue.record("node log:\n\(node.log.split(separator: "\n").filter { !$0.contains(" debug ") }.suffix(60).joined(separator: "\n"))")
                }
            } catch {
                Issue.record("node log:\n\(node.log.split(separator: "\n").filter { !$0.contains(" debug ") }.suffix(40).joined(separator: "\n"))")
                if let newNode { await Restart.stop(newNode) }
                await node.stop()
                throw error
            }
            if let newNode { await Restart.stop(newNode) }
            await node.stop()
        }
    }
}
