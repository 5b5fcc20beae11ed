import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Graceful restart by signal (issue 19) with a real daemon and real `tsh`: SIGHUP hands the
/// listening sockets to a new process and drains the old one, SIGUSR2 forks, SIGQUIT drains and
/// stops, SIGTERM stops at once; the pid file follows the serving process (a systemd unit's
/// `ExecReload=/bin/kill -HUP $MAINPID`). Every process is stopped by its PID.
@Suite("graceful restart by signal", .serialized)
struct GracefulRestartIntegrationTests {
    /// The pid the pid file names, once it differs from `old` (at most 60 s).
    static func nextPID(_ cluster: ClusterFixture, after old: pid_t) async throws -> pid_t {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let pid = pidFile(cluster), pid != old { return pid }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the pid file still names \(old) after 60 s:\n\(cluster.log)")
        throw CancellationError()
    }

    static func pidFile(_ cluster: ClusterFixture) -> pid_t? {
        (try? String(contentsOf: cluster.pidFileURL, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// True while `pid` runs (a zombie counts as ended).
    static func running(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    /// Waits (at most `timeout`) for `pid` to end; reaps it when it is this process's child.
    static func ended(_ pid: pid_t, within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        while ContinuousClock.now < deadline {
            _ = waitpid(pid, &status, WNOHANG)
            if !running(pid) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Stops `pid` with SIGTERM (SIGKILL after 10 s).
    static func stop(_ pid: pid_t) async {
        guard running(pid) else { return }
        kill(pid, SIGTERM)
        if await ended(pid, within: .seconds(10)) { return }
        kill(pid, SIGKILL)
        _ = await ended(pid, within: .seconds(5))
    }

    /// A cluster with joe; every process the test started through signals is stopped at the end.
    static func withRestartSetup(_ body: (SessionLifetimeTests.Setup) async throws -> Void) async throws {
        try await SessionLifetimeTests.withSetup { setup in
            do {
                try await body(setup)
            } catch {
                if let pid = pidFile(setup.cluster) { await stop(pid) }
                throw error
            }
            if let pid = pidFile(setup.cluster) { await stop(pid) }
        }
    }

    /// `tsh ssh true` in a loop until `stop` is set; returns (runs, failures).
    final class Loop: @unchecked Sendable {
        private let lock = NSLock()
        private var stopped = false
        private(set) var runs = 0
        private(set) var failures: [String] = []
        var isStopped: Bool { lock.withLock { stopped } }
        func stop() { lock.withLock { stopped = true } }
        func record(_ result: CommandResult) {
            lock.withLock {
                runs += 1
                if result.exitCode != 0 { failures.append("\(result.exitCode): \(result.stderr)") }
            }
        }
        var summary: (runs: Int, failures: [String]) { lock.withLock { (runs, failures) } }
    }

    static func loop(_ setup: SessionLifetimeTests.Setup, _ loop: Loop) async {
        while !loop.isStopped {
            guard let result = try? await setup.tsh(["ssh", "root@testnode", "true"]) else { continue }
            loop.record(result)
        }
    }

    @Test("SIGHUP while sessions and a copy run: they finish intact, new tsh ssh never fails, the pid file and the lock follow")
    func hangupWhileSessionsRun() async throws {
        try await Self.withRestartSetup { setup in
            let cluster = setup.cluster
            let old = try #require(cluster.pid)
            // 32 MiB of random data to copy across the restart.
            let source = cluster.directory.appendingPathComponent("big.bin")
            let copy = cluster.directory.appendingPathComponent("copy.bin")
            let made = try await TestSupport.run("/bin/sh", ["-c", "head -c 33554432 /dev/urandom > \(source.path)"])
            #expect(made.exitCode == 0)
            let loop = Loop()
            async let looping: Void = Self.loop(setup, loop)
            async let sessions: [CommandResult] = withThrowingTaskGroup(of: CommandResult.self) { group in
                for index in 0..<5 {
                    group.addTask { try await setup.tsh(["ssh", "-t", "root@testnode", "sleep 20; echo done-\(index)"]) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            async let copied: CommandResult = setup.tsh(["scp", source.path, "root@testnode:\(copy.path)"])
            // Wait until the node lists the five sessions (open on the old process), then restart as
            // systemd's reload does.
            // (Each lasts 20 s, so that all five are open together even when they start slowly.)
            var listed = try await setup.tsh(["sessions", "ls"])
            let deadline = ContinuousClock.now + .seconds(90)
            while listed.stdout.components(separatedBy: "sleep 20").count - 1 < 5, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                listed = try await setup.tsh(["sessions", "ls"])
            }
            #expect(listed.stdout.components(separatedBy: "sleep 20").count - 1 == 5, "\(listed)")
            let reload = try await TestSupport.run("/bin/kill", ["-HUP", "\(Self.pidFile(cluster) ?? 0)"])
            #expect(reload.exitCode == 0)
            let new = try await Self.nextPID(cluster, after: old)
            #expect(Self.running(old), "the old process must drain, not stop, while sessions are open")
            let results = try await sessions
            #expect(results.count == 5)
            for result in results { #expect(result.exitCode == 0 && result.stdout.contains("done-"), "\(result)") }
            let scp = try await copied
            #expect(scp.exitCode == 0, "\(scp)")
            let sums = try await TestSupport.run("/usr/bin/sha256sum", [source.path, copy.path])
            let digests = sums.stdout.split(separator: "\n").map { $0.split(separator: " ").first.map(String.init) ?? "" }
            #expect(digests.count == 2 && digests[0] == digests[1], "\(sums)")
            // The old process ends once its sessions have; the new one serves.
            #expect(await Self.ended(old, within: .seconds(30)), "the old process did not stop after draining:\n\(cluster.log)")
            try await Task.sleep(for: .milliseconds(500))
            loop.stop()
            await looping
            let summary = loop.summary
            #expect(summary.runs >= 3 && summary.failures.isEmpty, "\(summary.runs) runs, failures: \(summary.failures)")
            #expect(Self.running(new))
            #expect(try await cluster.diag("readyz").status == 200)
            #expect(cluster.log.contains("this one stops accepting and drains"))
            // The lock moved with the data: a second, unrelated daemon is still refused.
            let second = try await TestSupport.run(
                try ClusterFixture.binary("teleport"), ["start", "-c", cluster.configURL.path], timeout: .seconds(30))
            #expect(second.exitCode != 0 && second.stderr.contains("another teleport process is already running with data_dir"), "\(second)")
        }
    }

    @Test("SIGHUP with a broken configuration: the old process keeps serving and logs why; then SIGHUP twice in a row")
    func brokenConfigurationThenTwice() async throws {
        try await Self.withRestartSetup { setup in
            let cluster = setup.cluster
            let old = try #require(cluster.pid)
            let good = try String(contentsOf: cluster.configURL, encoding: .utf8)
            try TestSupport.write(good + "\nnot_a_section: [unclosed\n", to: cluster.configURL)
            kill(old, SIGHUP)
            #expect(
                await TestSupport.eventually(timeout: .seconds(30)) { cluster.log.contains("graceful restart failed") },
                "\(cluster.log)")
            let line = cluster.log.split(separator: "\n").first { $0.contains("graceful restart failed") } ?? ""
            #expect(line.contains("exited with status 1") && line.contains("this process keeps serving"), "\(line)")
            #expect(cluster.log.contains("ERROR: "), "the new process's own one-line error is in the log")
            #expect(Self.pidFile(cluster) == old)
            #expect(try await setup.tsh(["ssh", "root@testnode", "true"]).exitCode == 0)
            #expect(try await cluster.diag("readyz").status == 200)

            // A new process that fails after it wrote the pid file: the old one writes it back.
            let failures = cluster.log.components(separatedBy: "graceful restart failed").count
            let garbage = cluster.directory.appendingPathComponent("not-a-certificate.pem")
            try TestSupport.write("not PEM\n", to: garbage)
            let web = "  web_listen_addr: 127.0.0.1:\(cluster.webPort)\n"
            try TestSupport.write(
                good.replacingOccurrences(
                    of: web, with: web + "  https_keypairs:\n  - key_file: \(garbage.path)\n    cert_file: \(garbage.path)\n"),
                to: cluster.configURL)
            kill(old, SIGHUP)
            #expect(
                await TestSupport.eventually(timeout: .seconds(30)) {
                    cluster.log.components(separatedBy: "graceful restart failed").count > failures
                }, "\(cluster.log)")
            #expect(Self.pidFile(cluster) == old, "the pid file must name the serving process again")
            #expect(cluster.log.contains("exited with status 1 before it was ready; its error is in the log"))
            #expect(!cluster.log.contains("Program crashed"), "\(cluster.log)")
            #expect(try await setup.tsh(["ssh", "root@testnode", "true"]).exitCode == 0)

            // Fixed: two restarts in a row, each through the pid file.
            try TestSupport.write(good, to: cluster.configURL)
            kill(old, SIGHUP)
            let second = try await Self.nextPID(cluster, after: old)
            #expect(await Self.ended(old, within: .seconds(30)))
            kill(second, SIGHUP)
            let third = try await Self.nextPID(cluster, after: second)
            #expect(await Self.ended(second, within: .seconds(30)), "\(cluster.log)")
            #expect(Self.running(third))
            #expect(try await setup.tsh(["ssh", "root@testnode", "echo ok"]).stdout.contains("ok"))
        }
    }

    @Test("SIGUSR1 dumps connections and memory; SIGUSR2 forks a new process and the old one stays; SIGQUIT then stops it")
    func forkThenQuit() async throws {
        try await Self.withRestartSetup { setup in
            let cluster = setup.cluster
            let old = try #require(cluster.pid)
            async let session = setup.tsh(["ssh", "-t", "root@testnode", "sleep 6; echo finished"])
            // Wait until the node lists the session (its connections are open), not for a guess.
            var listed = try await setup.tsh(["sessions", "ls"])
            let deadline = ContinuousClock.now + .seconds(30)
            while !listed.stdout.contains("sleep 6"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                listed = try await setup.tsh(["sessions", "ls"])
            }
            try #require(listed.stdout.contains("sleep 6"), "\(listed)")
            // SIGUSR1: the dump names the open session's connections and the memory.
            kill(old, SIGUSR1)
            #expect(
                await TestSupport.eventually { cluster.log.contains("diagnostics (SIGUSR1): memory: rss") },
                "\(cluster.log)")
            let connections = cluster.log.split(separator: "\n").first { $0.contains("diagnostics (SIGUSR1): open connections:") } ?? ""
            #expect(connections.contains("node SSH=1") && connections.contains("proxy SSH=1"), "\(connections)")
            #expect(Self.running(old), "SIGUSR1 must not stop the daemon")
            kill(old, SIGUSR2)
            let new = try await Self.nextPID(cluster, after: old)
            let beside = try await setup.tsh(["ssh", "root@testnode", "true"])
            #expect(beside.exitCode == 0, "\(beside)\n\(cluster.log.split(separator: "\n").filter { !$0.contains(" debug ") }.suffix(40).joined(separator: "\n"))")
            // Without sessions the old process would drain at once: after SIGUSR2 it stays.
            let result = try await session
            #expect(result.exitCode == 0 && result.stdout.contains("finished"), "\(result)")
            try await Task.sleep(for: .milliseconds(500))
            #expect(Self.running(old), "after SIGUSR2 the old process keeps running")
            kill(old, SIGQUIT)
            #expect(await Self.ended(old, within: .seconds(30)), "\(cluster.log)")
            #expect(Self.running(new))
            let after = try await setup.tsh(["ssh", "root@testnode", "true"])
            #expect(after.exitCode == 0, "\(after)\n\(cluster.log.split(separator: "\n").filter { !$0.contains(" debug ") }.suffix(40).joined(separator: "\n"))")
        }
    }

    @Test("SIGQUIT drains an open session and then exits; /readyz is not ready meanwhile")
    func quitDrains() async throws {
        try await Self.withRestartSetup { setup in
            let cluster = setup.cluster
            let pid = try #require(cluster.pid)
            async let session = setup.tsh(["ssh", "-t", "root@testnode", "sleep 6; echo finished"])
            // Wait until the node lists the session (a terminal session is reported), not for a guess.
            var listed = try await setup.tsh(["sessions", "ls"])
            let deadline = ContinuousClock.now + .seconds(30)
            while !listed.stdout.contains("sleep 6"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                listed = try await setup.tsh(["sessions", "ls"])
            }
            try #require(listed.stdout.contains("sleep 6"), "\(listed)")
            kill(pid, SIGQUIT)
            try await Task.sleep(for: .milliseconds(300))
            #expect(Self.running(pid), "the process must wait for its session")
            #expect(try await cluster.diag("readyz").status != 200)
            let result = try await session
            #expect(result.exitCode == 0 && result.stdout.contains("finished"), "\(result)")
            #expect(await Self.ended(pid, within: .seconds(30)), "\(cluster.log)")
            #expect(!FileManager.default.fileExists(atPath: cluster.pidFileURL.path), "the pid file is removed at exit")
        }
    }

    @Test("SIGTERM closes open sessions at once")
    func terminateIsFast() async throws {
        try await Self.withRestartSetup { setup in
            let cluster = setup.cluster
            let pid = try #require(cluster.pid)
            let started = ContinuousClock.now
            async let session = setup.tsh(["ssh", "root@testnode", "sleep 60; echo finished"])
            try await Task.sleep(for: .milliseconds(1500))
            kill(pid, SIGTERM)
            let result = try await session
            #expect(!result.stdout.contains("finished"))
            #expect(ContinuousClock.now - started < .seconds(20), "the session was not closed at once")
            #expect(await Self.ended(pid, within: .seconds(10)), "\(cluster.log)")
        }
    }
}
