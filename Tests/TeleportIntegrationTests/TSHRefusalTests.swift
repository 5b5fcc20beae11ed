import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("tsh ssh refused: at once, in words", .serialized)
struct TSHRefusalTests {
    /// Before: 30 s (the server's login timeout), then `SSH channel refused: End of file`.
    @Test("a login the certificate does not allow, a locked login and a locked user fail within seconds and say why (the lock's message, never others' locks)", .timeLimit(.minutes(5)))
    func refusedPromptly() async throws {
        try await SSHAccessTests.withSetup { setup in
            var started = ContinuousClock.now
            let daemon = try await setup.tsh(["ssh", "daemon@db1", "true"])
            var took = ContinuousClock.now - started
            #expect(daemon.exitCode == 255, "\(daemon)")
            #expect(
                daemon.stderr == "ERROR: access denied: your certificate does not allow the login \"daemon\" on node db1; your logins are: root\n",
                "\(daemon)")
            #expect(took < .seconds(20), "took \(took)")  // the old client hung 30 s; 20 s leaves room for a loaded CI machine

            // Others' locks (another user, a node alone) must never be shown to joe.
            #expect(try await setup.cluster.tctl(["lock", "--user=alice", "--message=alice-secret", "--ttl=1h"]).exitCode == 0)
            #expect(try await setup.cluster.tctl(["lock", "--node=web1", "--message=web1-maintenance"]).exitCode == 0)
            let loginLock = try await setup.cluster.tctl(["lock", "--login=root", "--message=root frozen"])
            #expect(loginLock.exitCode == 0, "\(loginLock)")
            let loginLockName = try #require(Self.lockName(loginLock.stdout), "\(loginLock)")
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
            #expect(
                refused.stderr == "ERROR: access denied: the login \"root\" is locked: root frozen (lock \(loginLockName)); "
                    + "ask an administrator (tctl lock ls / tctl rm lock/\(loginLockName))\n", "\(refused)")
            #expect(!refused.stderr.contains("alice") && !refused.stderr.contains("web1"), "\(refused)")
            #expect(took < .seconds(20), "took \(took)")  // the old client hung 30 s; 20 s leaves room for a loaded CI machine

            // The route itself, with joe's certificate: his login's lock only; a lock on a login his
            // certificate does not list, another user's lock and a node's lock are never answered.
            #expect(try await setup.cluster.tctl(["lock", "--login=daemon", "--message=daemon-frozen"]).exitCode == 0)
            let root = try await Self.myLocks(setup, login: "root")
            #expect(root.status == 200 && root.body.contains("root frozen") && root.body.contains(loginLockName), "\(root)")
            for answer in [root, try await Self.myLocks(setup, login: "daemon"), try await Self.myLocks(setup, login: "")] {
                #expect(!answer.body.contains("alice") && !answer.body.contains("web1") && !answer.body.contains("daemon-frozen"), "\(answer)")
            }
            #expect(try await Self.myLocks(setup, login: "daemon").body == "[]")
            let anonymous = try await TestSupport.run(
                "/usr/bin/curl", ["-s", "-k", "https://127.0.0.1:\(setup.cluster.webPort)/webapi/locks/mine?login=root"])
            #expect(anonymous.stdout.contains("access_denied") && !anonymous.stdout.contains("root frozen"), "\(anonymous)")

            #expect(try await setup.cluster.tctl(["rm", "lock/\(loginLockName)"]).exitCode == 0)
            let locked = try await setup.cluster.tctl(["lock", "--user=joe", "--message=incident 42", "--ttl=1h"])
            #expect(locked.exitCode == 0, "\(locked)")
            let userLockName = try #require(Self.lockName(locked.stdout), "\(locked)")
            for _ in 0..<50 where !refused.stderr.contains("incident 42") || refused.stderr.contains("root frozen") {
                try await Task.sleep(for: .milliseconds(100))
                refused = try await setup.tsh(["ssh", "root@db1", "echo should-not-run"])
            }
            started = ContinuousClock.now
            refused = try await setup.tsh(["ssh", "root@db1", "echo should-not-run"])
            took = ContinuousClock.now - started
            #expect(refused.exitCode == 255 && !refused.stdout.contains("should-not-run"), "\(refused)")
            #expect(refused.stderr.hasPrefix("ERROR: access denied: user joe is locked: incident 42 (lock \(userLockName), until "), "\(refused)")
            #expect(refused.stderr.hasSuffix("); ask an administrator (tctl lock ls / tctl rm lock/\(userLockName))\n"), "\(refused)")
            #expect(!refused.stderr.contains("alice") && !refused.stderr.contains("web1") && !refused.stderr.contains("root frozen"), "\(refused)")
            #expect(!refused.stderr.contains("End of file"), "\(refused)")
            #expect(took < .seconds(20), "took \(took)")  // the old client hung 30 s; 20 s leaves room for a loaded CI machine

            // tsh scp says the same.
            let copy = setup.cluster.directory.appendingPathComponent("copied").path
            started = ContinuousClock.now
            let scp = try await setup.tsh(["scp", "root@db1:/etc/hostname", copy])
            took = ContinuousClock.now - started
            #expect(scp.exitCode != 0, "\(scp)")
            #expect(scp.stderr.contains("access denied: user joe is locked: incident 42 (lock \(userLockName), until "), "\(scp)")
            #expect(took < .seconds(20), "took \(took)")  // the old client hung 30 s; 20 s leaves room for a loaded CI machine
        }
    }

    /// Issue 13 item 10 with the real binaries: before, `the request to the proxy at ... failed:
    /// sslError([... SSLV3_ALERT_CERTIFICATE_EXPIRED ...])`.
    @Test("an expired identity file: tsh ls and tsh ssh name the file, when it expired and how to get a new one", .timeLimit(.minutes(5)))
    func expiredIdentityFile() async throws {
        try await SSHAccessTests.withSetup { setup in
            let path = setup.cluster.directory.appendingPathComponent("short.id").path
            let signed = try await setup.cluster.tctl(["auth", "sign", "--user=joe", "--ttl=3s", "--out=\(path)"])
            #expect(signed.exitCode == 0, "\(signed)")
            let tsh = try ClusterFixture.binary("tsh")
            let base = ["-i", path, "--proxy=127.0.0.1:\(setup.cluster.webPort)", "--insecure"]
            var listed = try await TestSupport.run(tsh, base + ["ls"])
            let deadline = ContinuousClock.now + .seconds(30)
            while !listed.stderr.contains("expired at"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(500))
                listed = try await TestSupport.run(tsh, base + ["ls"])
            }
            let fix = "get a new one with tctl auth sign --user=joe --out=\(path) on the auth server, or tsh login --out=\(path)"
            #expect(listed.exitCode != 0 && listed.stderr.contains("the certificate in \(path) expired at "), "\(listed)")
            #expect(listed.stderr.contains(fix) && !listed.stderr.contains("sslError"), "\(listed)")
            let ssh = try await TestSupport.run(tsh, base + ["ssh", "root@db1", "echo should-not-run"])
            #expect(ssh.exitCode != 0 && !ssh.stdout.contains("should-not-run"), "\(ssh)")
            #expect(ssh.stderr.contains("the certificate in \(path) expired at ") && !ssh.stderr.contains("sslError"), "\(ssh)")
        }
    }

    /// `GET /webapi/locks/mine?login=LOGIN` with joe's TLS certificate and key (from his identity file).
    static func myLocks(_ setup: SSHAccessTests.Setup, login: String) async throws -> (status: Int, body: String) {
        let identity = try String(contentsOfFile: setup.identity, encoding: .utf8)
        func block(_ label: String) throws -> String {
            let begin = try #require(identity.range(of: "-----BEGIN \(label)-----"))
            let end = try #require(identity.range(of: "-----END \(label)-----", range: begin.upperBound..<identity.endIndex))
            return String(identity[begin.lowerBound..<end.upperBound]) + "\n"
        }
        let key = setup.cluster.directory.appendingPathComponent("joe-tls.key")
        let certificate = setup.cluster.directory.appendingPathComponent("joe-tls.crt")
        try TestSupport.write(try block("PRIVATE KEY"), to: key)
        try TestSupport.write(try block("CERTIFICATE"), to: certificate)
        let result = try await TestSupport.run(
            "/usr/bin/curl",
            [
                "-s", "-k", "--cert", certificate.path, "--key", key.path, "-w", "\n%{http_code}",
                "https://127.0.0.1:\(setup.cluster.webPort)/webapi/locks/mine?login=\(login)",
            ])
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    /// The name in `tctl lock`'s `Created a lock with name "NAME".`.
    static func lockName(_ output: String) -> String? {
        let parts = output.split(separator: "\"")
        return parts.count >= 2 ? String(parts[1]) : nil
    }

    /// `| head -1` on every command that prints more than one line, against a running cluster.
    @Test("tsh and tctl commands that print many lines, into a pipe whose reader is gone", .timeLimit(.minutes(5)))
    func brokenPipeWithACluster() async throws {
        try await SSHAccessTests.withSetup { setup in
            let tsh = ["-i", setup.identity, "--proxy=127.0.0.1:\(setup.cluster.webPort)", "--insecure"]
            let tctl = ["-c", setup.cluster.configURL.path]
            // A recorded session, for the recordings list and tsh play.
            _ = try await setup.tsh(["ssh", "-t", "root@db1", "seq 1 200"])
            let recordings = try await RecordingTests.waitForRecording(setup)
            let sid = recordings.compactMap { entry -> String? in if case .string(let sid)? = entry["sid"] { return sid } else { return nil } }.first
            var runs: [(String, [String])] = [
                ("tsh", tsh + ["ls"]), ("tsh", tsh + ["ls", "--format", "names"]), ("tsh", tsh + ["status"]),
                ("tsh", tsh + ["ssh", "root@db1", "seq 1 20000"]), ("tsh", tsh + ["ssh", "root@env=test", "seq 1 2000"]),
                ("tsh", tsh + ["known-hosts"]), ("tsh", tsh + ["config"]), ("tsh", tsh + ["recordings", "ls"]),
                ("tsh", tsh + ["sessions", "ls"]), ("tsh", ["--help"]), ("tsh", ["ssh", "--help"]),
                ("tctl", tctl + ["get", "all"]), ("tctl", tctl + ["get", "roles", "--format", "text"]), ("tctl", tctl + ["nodes", "ls"]),
                ("tctl", tctl + ["status"]), ("tctl", tctl + ["auth", "export"]), ("tctl", tctl + ["users", "ls"]),
                ("tctl", tctl + ["tokens", "ls"]), ("tctl", tctl + ["events", "ls"]), ("tctl", tctl + ["events", "ls", "--format=json"]),
                ("tctl", tctl + ["access", "explain", "--user=joe", "--login=root", "--node=db1"]), ("tctl", tctl + ["nodes", "add"]),
                ("teleport", ["configure"]), ("teleport", ["--help"]),
            ]
            if let sid { runs += [("tsh", tsh + ["play", "--format=text", sid]), ("tsh", tsh + ["play", "--format=json", sid])] }
            #expect(sid != nil, "no recording to play: \(recordings)")
            for (program, arguments) in runs {
                let ending = try await BrokenPipe.run(try ClusterFixture.binary(program), arguments)
                #expect(BrokenPipe.isQuiet(ending), "\(program) \(arguments.joined(separator: " ")): \(ending)")
            }
        }
    }
}
