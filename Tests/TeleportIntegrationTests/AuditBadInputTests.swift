import Foundation
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
}
