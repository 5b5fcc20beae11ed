import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("tsh ssh refused: at once, in words", .serialized)
struct TSHRefusalTests {
    /// Before: 30 s (the server's login timeout), then `SSH channel refused: End of file`.
    @Test("a login the certificate does not allow, and a locked user, fail within seconds and say why", .timeLimit(.minutes(5)))
    func refusedPromptly() async throws {
        try await SSHAccessTests.withSetup { setup in
            var started = ContinuousClock.now
            let daemon = try await setup.tsh(["ssh", "daemon@db1", "true"])
            var took = ContinuousClock.now - started
            #expect(daemon.exitCode == 255, "\(daemon)")
            #expect(
                daemon.stderr == "ERROR: access denied: your certificate does not allow the login \"daemon\" on node db1; your logins are: root\n",
                "\(daemon)")
            #expect(took < .seconds(10), "took \(took)")

            let locked = try await setup.cluster.tctl(["lock", "--user=joe", "--message=incident 42", "--ttl=1h"])
            #expect(locked.exitCode == 0, "\(locked)")
            // The lock reaches the proxy through its feed: wait until a session is refused.
            var refused = try await setup.tsh(["ssh", "root@db1", "echo should-not-run"])
            for _ in 0..<50 where refused.exitCode == 0 {
                try await Task.sleep(for: .milliseconds(100))
                refused = try await setup.tsh(["ssh", "root@db1", "echo should-not-run"])
            }
            started = ContinuousClock.now
            refused = try await setup.tsh(["ssh", "root@db1", "echo should-not-run"])
            took = ContinuousClock.now - started
            #expect(refused.exitCode == 255 && !refused.stdout.contains("should-not-run"), "\(refused)")
            #expect(refused.stderr.contains("access denied:") && refused.stderr.contains("may be locked"), "\(refused)")
            #expect(!refused.stderr.contains("End of file"), "\(refused)")
            #expect(took < .seconds(10), "took \(took)")
        }
    }

    /// `| head -1` on the commands that print many lines, against a running cluster.
    @Test("tctl get all, tctl nodes ls, tsh ls and tsh status into a pipe whose reader is gone", .timeLimit(.minutes(5)))
    func brokenPipeWithACluster() async throws {
        try await SSHAccessTests.withSetup { setup in
            let tsh = ["-i", setup.identity, "--proxy=127.0.0.1:\(setup.cluster.webPort)", "--insecure"]
            let runs: [(String, [String])] = [
                ("tsh", tsh + ["ls"]), ("tsh", tsh + ["status"]), ("tsh", tsh + ["ssh", "root@db1", "seq 1 20000"]),
                ("tctl", ["-c", setup.cluster.configURL.path, "get", "all"]), ("tctl", ["-c", setup.cluster.configURL.path, "nodes", "ls"]),
            ]
            for (program, arguments) in runs {
                let ending = try await BrokenPipe.run(try ClusterFixture.binary(program), arguments)
                #expect(BrokenPipe.isQuiet(ending), "\(program) \(arguments.joined(separator: " ")): \(ending)")
            }
        }
    }
}
