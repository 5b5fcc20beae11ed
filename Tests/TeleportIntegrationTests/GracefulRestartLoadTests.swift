import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 19's fault test at its figures: SIGHUP (as `systemctl reload` sends it, through the pid
/// file) while 20 interactive sessions (`tsh ssh -t`, each printing numbered lines across the
/// restart) and a `tsh scp` of 1 GiB run. Every session's output arrives whole and in order, the
/// copy's SHA-256 equals the source's, and a loop of new `tsh ssh true` has zero failures; the old
/// process drains and then ends, the new one serves.
@Suite("graceful restart under load", .serialized)
struct GracefulRestartLoadTests {
    typealias Restart = GracefulRestartIntegrationTests

    static let sessions = 20
    static let lines = 150

    /// The lines session `index` prints (one every 0.4 s: a minute, across the restart).
    static func expected(_ index: Int) -> [String] { (1...lines).map { "s\(index)-line-\($0)" } }

    @Test(.timeLimit(.minutes(12)))
    func hangupDuringTwentySessionsAndAGigabyteCopy() async throws {
        try await Restart.withRestartSetup { setup in
            let cluster = setup.cluster
            let old = try #require(cluster.pid)
            let source = cluster.directory.appendingPathComponent("gigabyte.bin")
            let copy = cluster.directory.appendingPathComponent("gigabyte-copy.bin")
            defer {
                try? FileManager.default.removeItem(at: source)
                try? FileManager.default.removeItem(at: copy)
            }
            let made = try await TestSupport.run(
                "/bin/sh", ["-c", "head -c 1073741824 /dev/urandom > \(source.path)"], timeout: .seconds(300))
            try #require(made.exitCode == 0, "\(made)")
            let tsh = try setup.tshArguments

            let loop = Restart.Loop()
            async let looping: Void = Restart.loop(setup, loop)
            async let sessions: [(Int, CommandResult)] = withThrowingTaskGroup(of: (Int, CommandResult).self) { group in
                for index in 0..<Self.sessions {
                    group.addTask {
                        let script = "for i in $(seq 1 \(Self.lines)); do echo s\(index)-line-$i; sleep 0.4; done"
                        return (index, try await TestSupport.run(tsh[0], Array(tsh.dropFirst()) + ["ssh", "-t", "root@testnode", script], timeout: .seconds(600)))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            // All 20 open on the old process.
            var listed = try await setup.tsh(["sessions", "ls"])
            let deadline = ContinuousClock.now + .seconds(120)
            while listed.stdout.components(separatedBy: "seq 1 \(Self.lines)").count - 1 < Self.sessions, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                listed = try await setup.tsh(["sessions", "ls"])
            }
            #expect(listed.stdout.components(separatedBy: "seq 1 \(Self.lines)").count - 1 == Self.sessions, "\(listed)")
            // The copy under way (some bytes written, far from all), then the reload.
            async let copied: CommandResult = TestSupport.run(
                tsh[0], Array(tsh.dropFirst()) + ["scp", source.path, "root@testnode:\(copy.path)"], timeout: .seconds(900))
            let copyDeadline = ContinuousClock.now + .seconds(120)
            var written = 0
            while written < 8 << 20, ContinuousClock.now < copyDeadline {
                try await Task.sleep(for: .milliseconds(100))
                written = ((try? FileManager.default.attributesOfItem(atPath: copy.path))?[.size] as? Int) ?? 0
            }
            #expect(written >= 8 << 20 && written < 1 << 30, "the copy did not start, or ended before the restart: \(written) bytes")
            let reload = try await TestSupport.run("/bin/kill", ["-HUP", "\(Restart.pidFile(cluster) ?? 0)"])
            #expect(reload.exitCode == 0)
            let new = try await Restart.nextPID(cluster, after: old)
            #expect(Restart.running(old), "the old process must drain, not stop, while sessions are open")

            // Every session's lines, whole and in order.
            let results = try await sessions
            #expect(results.count == Self.sessions)
            for (index, result) in results {
                let lines = result.stdout.replacingOccurrences(of: "\r", with: "").split(separator: "\n").map(String.init)
                // The session's own numbered lines, each whole, once and in order. Anything else its
                // terminal showed (a shell's diagnostic under load: with -t, stderr shares the pty) is
                // printed, not judged; a torn or repeated numbered line still fails.
                let numbered = lines.filter { $0.contains("-line-") }
                let other = lines.filter { !$0.contains("-line-") }
                if !other.isEmpty { print("session \(index): other lines on its terminal: \(other.prefix(5))") }
                let expected = Self.expected(index)
                #expect(
                    result.exitCode == 0 && numbered == expected,
                    "session \(index): exit \(result.exitCode), \(numbered.count) numbered lines; unexpected: \(numbered.filter { !expected.contains($0) }.prefix(5)); missing: \(expected.filter { !numbered.contains($0) }.prefix(5)); repeated: \(Dictionary(grouping: numbered, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted().prefix(5)); stderr: \(result.stderr)"
                )
            }
            // The copy, byte for byte.
            let scp = try await copied
            #expect(scp.exitCode == 0, "\(scp)")
            let sums = try await TestSupport.run("/usr/bin/sha256sum", [source.path, copy.path], timeout: .seconds(300))
            let digests = sums.stdout.split(separator: "\n").map { $0.split(separator: " ").first.map(String.init) ?? "" }
            #expect(digests.count == 2 && digests[0] == digests[1], "\(sums)")

            #expect(await Restart.ended(old, within: .seconds(60)), "the old process did not stop after draining")
            loop.stop()
            await looping
            let summary = loop.summary
            #expect(summary.runs >= 5 && summary.failures.isEmpty, "\(summary.runs) runs, failures: \(summary.failures.prefix(5))")
            #expect(Restart.running(new))
            #expect(try await cluster.diag("readyz").status == 200)
        }
    }
}
