import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import TeleportAPI
import TeleportTestSupport
import Testing

/// Bad input to the audit and recording APIs, sent with curl and the cluster's own identities
/// (the administrator's from data_dir/keys): odd session ids, a corrupt upload, an oversized event.
@Suite("audit API bad input", .serialized)
struct AuditBadInputTests {
    @Test("session ids are checked before use; a corrupt recording is kept aside and reported; a huge event is cut and marked")
    func badInput() async throws {
        try await withCluster(try ClusterFixture(clusterName: "badaudit.example")) { cluster in
            try await cluster.start()
            let keys = cluster.dataDir.appendingPathComponent("keys").path
            func curl(_ method: String, _ path: String, data: String? = nil) async throws -> CommandResult {
                var arguments = [
                    "-s", "-X", method, "--cacert", "\(keys)/ca.crt", "--cert", "\(keys)/admin.crt", "--key", "\(keys)/admin.key",
                    "--resolve", "\(AuthAPI.serverName):\(cluster.authPort):127.0.0.1", "https://\(AuthAPI.serverName):\(cluster.authPort)/v1/\(path)",
                ]
                if let data { arguments += ["--data-binary", data] }
                return try await TestSupport.run("/usr/bin/curl", arguments)
            }
            for bad in ["..%2F..%2Fetc%2Fpasswd", "6F1C5F8E-7D0A-4C3B-9E11-000000000001", "%7B6f1c5f8e-7d0a-4c3b-9e11-000000000001%7D", "abc%00def"] {
                let read = try await curl("GET", "sessions/\(bad)/recording")
                #expect(read.stdout.contains("is not a session id") || read.stdout.contains("not_found") || read.stdout.contains("\"code\""), "\(bad): \(read)")
                #expect(!read.stdout.contains("root:"), "\(bad)")
                let upload = try await curl("POST", "sessions/\(bad)/recording", data: "x")
                #expect(upload.stdout.contains("is not a session id"), "\(bad): \(upload)")
            }

            // A corrupt upload: refused, kept aside, audited; nothing is served for it.
            let sid = "6f1c5f8e-7d0a-4c3b-9e11-00000000abcd"
            let garbage = cluster.directory.appendingPathComponent("garbage.gz")
            try Data([0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02, 0x03]).write(to: garbage)
            let corrupt = try await curl("POST", "sessions/\(sid)/recording", data: "@\(garbage.path)")
            #expect(corrupt.stdout.contains("corrupt or truncated") && corrupt.stdout.contains("kept aside"), "\(corrupt)")
            let aside = cluster.dataDir.appendingPathComponent("log/sessions/default/corrupt")
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: aside.path)) ?? []).contains { $0.hasPrefix(sid) })
            let served = try await curl("GET", "sessions/\(sid)/recording")
            #expect(served.stdout.contains("no recording"), "\(served)")
            let failures = try await AuditEventsTests.events(cluster, ["--type=session.upload"])
            #expect(failures.contains { $0["code"] == .string("T2005E") && $0["sid"] == .string(sid) }, "\(failures)")

            // An event over 64 KiB: stored with its long fields cut and marked truncated.
            let huge = String(repeating: "a", count: 100_000)
            let event = "[{\"event\":\"exec\",\"code\":\"T3002I\",\"uid\":\"\(UUID().uuidString.lowercased())\",\"time\":\"\(RFC3339.format(Date()))\",\"command\":\"\(huge)\"}]"
            let posted = try await curl("POST", "events", data: event)
            #expect(posted.stdout.contains("ok"), "\(posted.stdout.prefix(300))")
            let stored = try await AuditEventsTests.events(cluster, ["--type=exec"])
            let cut = try #require(stored.last)
            #expect(cut["truncated"] == .bool(true))
            if case .string(let command)? = cut["command"] { #expect(command.utf8.count < 2000) }
            let malformed = try await curl("POST", "events", data: "[{\"event\":\"exec; rm\",\"code\":\"T3002I\",\"uid\":\"x\",\"time\":\"\(RFC3339.format(Date()))\"}]")
            #expect(malformed.stdout.contains("bad_parameter") || malformed.stdout.contains("needs an event name"), "\(malformed)")
            #expect(try await cluster.tctl(["audit", "verify"]).exitCode == 0, "the chain holds through all of it")
            await cluster.stop()
        }
    }

    @Test(
        "a full audit disk: new sessions are refused with a clear error (fail closed), nothing half-written, all resumes when space returns",
        .enabled(if: getuid() == 0, "needs root to mount a small tmpfs"), .timeLimit(.minutes(4)))
    func fullDisk() async throws {
        let cluster = try ClusterFixture(clusterName: "full.example")
        let logDir = cluster.dataDir.appendingPathComponent("log")
        try FileManager.default.createDirectory(at: logDir, withIntermediateDirectories: true)
        let mounted = try await TestSupport.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m,mode=0750", "tmpfs", logDir.path])
        try #require(mounted.exitCode == 0, "\(mounted)")
        defer {
            _ = Glibc.system("umount -l '\(logDir.path)' 2>/dev/null")
            try? FileManager.default.removeItem(at: cluster.directory)
        }
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            #expect(try await cluster.tctl(["users", "add", "joe", "root"]).exitCode == 0)
            let identity = cluster.directory.appendingPathComponent("joe.id").path
            #expect(try await cluster.tctl(["auth", "sign", "--user=joe", "--out=\(identity)"]).exitCode == 0)
            let tsh = try ClusterFixture.binary("tsh")
            func ssh() async throws -> CommandResult {
                try await TestSupport.run(tsh, ["-i", identity, "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure", "ssh", "root@testnode", "echo ran"])
            }
            #expect(try await ssh().stdout == "ran\n")

            let filler = logDir.appendingPathComponent("filler").path
            _ = try await TestSupport.run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=4k"])
            var refused: CommandResult?
            var attempts: [String] = []
            for _ in 0..<40 {
                let attempt = try await ssh()
                attempts.append("exit \(attempt.exitCode): \(attempt.stdout) \(attempt.stderr)")
                if attempt.exitCode != 0, attempt.stderr.contains("audit log") {
                    refused = attempt
                    break
                }
                try await Task.sleep(for: .milliseconds(300))
            }
            let refusal = try #require(refused, "sessions kept starting with the audit log full: \(attempts)")
            #expect(refusal.stderr.contains("cannot reach its audit log") && refusal.stderr.contains("fail closed"), "\(refusal)")
            #expect(!refusal.stdout.contains("ran"))
            // A refused write is rolled back (nothing half-written), which frees its blocks again:
            // fill them before asking the auth service to audit something of its own.
            _ = try await TestSupport.run("/bin/dd", ["if=/dev/zero", "of=\(filler)-2", "bs=512"])
            let adminRefused = try await cluster.tctl(["tokens", "add", "--type=node"])
            #expect(adminRefused.exitCode != 0 && adminRefused.stderr.contains("audit log cannot be written"), "\(adminRefused)")
            #expect(await TestSupport.eventually { cluster.log.contains("ALERT: the auth service cannot write its audit log") })

            try FileManager.default.removeItem(atPath: filler)
            try? FileManager.default.removeItem(atPath: filler + "-2")
            var back = false
            for _ in 0..<60 where !back {
                back = try await ssh().stdout == "ran\n"
                if !back { try await Task.sleep(for: .milliseconds(500)) }
            }
            #expect(back, "sessions start again once the audit log can be written")
            let verified = try await cluster.tctl(["audit", "verify"])
            #expect(verified.exitCode == 0, "no half-written line: \(verified)")
            await cluster.stop()
        }
    }
}
