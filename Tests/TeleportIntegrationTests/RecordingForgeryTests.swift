import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// Issue 12, item 3: a node's certificate may upload only recordings of sessions that node ran,
/// never replaces a stored recording, and readers come from the session's own audit events.
@Suite("recording uploads: no overwrite, no forgery", .serialized)
struct RecordingForgeryTests {
    /// A recording's JSON lines, gzip-compressed by `gzip -n`.
    static func gzipRecording(_ cluster: ClusterFixture, _ lines: [String]) async throws -> Data {
        let plain = cluster.directory.appendingPathComponent("forged-\(UUID().uuidString)")
        try TestSupport.write(lines.joined(separator: "\n") + "\n", to: plain)
        let zipped = try await TestSupport.run("/bin/sh", ["-c", "gzip -n '\(plain.path)'"])
        try #require(zipped.exitCode == 0, "\(zipped)")
        return try Data(contentsOf: URL(fileURLWithPath: plain.path + ".gz"))
    }

    static func recording(sid: String, user: String, serverID: String, output: String) -> [String] {
        [
            #"{"login":"root","server_hostname":"elsewhere","server_id":"\#(serverID)","sid":"\#(sid)","size":"80:24","start":"2026-01-01T00:00:00Z","user":"\#(user)"}"#,
            #"{"ms":5,"o":"\#(Data(output.utf8).base64EncodedString())"}"#,
            #"{"end":true,"ms":10}"#,
        ]
    }

    @Test("a node's re-upload with another server and user, an overwrite and a forged session are refused and audited; the original stays its owner's", .timeLimit(.minutes(3)))
    func forgedUploadsAreRefused() async throws {
        try await withCluster(try ClusterFixture(clusterName: "forge.example")) { cluster in
            try await cluster.start()
            let tsh = try ClusterFixture.binary("tsh")
            func identity(_ name: String) async throws -> [String] {
                #expect(try await cluster.tctl(["users", "add", name, "root"]).exitCode == 0)
                let path = cluster.directory.appendingPathComponent("\(name).id").path
                #expect(try await cluster.tctl(["auth", "sign", "--user=\(name)", "--out=\(path)"]).exitCode == 0)
                return ["-i", path, "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure"]
            }
            let joe = try await identity("joe")
            let mallory = try await identity("mallory")
            let session = try TSHTerminal(
                tsh, joe + ["ssh", "-t", "root@testnode"], environment: ProcessInfo.processInfo.environment.merging(["TERM": "xterm"]) { $1 })
            try await session.expect("# ")
            session.sendLine("echo original-$((6*7)); exit")
            #expect(try await session.wait() == 0)
            var sid = ""
            for _ in 0..<150 where sid.isEmpty {
                let listed = try await TestSupport.run(tsh, joe + ["recordings", "ls", "--format=json"])
                let list = (try? ResourceCodec.jsonDecoder().decode([[String: JSONValue]].self, from: Data(listed.stdout.utf8))) ?? []
                if case .string(let found)? = list.first?["sid"] { sid = found } else { try await Task.sleep(for: .milliseconds(200)) }
            }
            try #require(!sid.isEmpty, "the recording was not uploaded")
            let stored = cluster.dataDir.appendingPathComponent("log/sessions/default/\(sid).events.gz")
            let original = try Data(contentsOf: stored)
            let nodeUUID = try HostTakeoverTests.hostUUID(cluster)
            func upload(_ sid: String, _ body: Data) async throws -> (status: Int, body: String) {
                try await HostTakeoverTests.authAPI(cluster, "POST", "/v1/sessions/\(sid)/recording", body: body, identity: "node")
            }

            // The node that ran the session re-uploads it naming another server and another user.
            let otherServer = try await upload(
                sid, try await Self.gzipRecording(cluster, Self.recording(sid: sid, user: "mallory", serverID: UUID().uuidString.lowercased(), output: "FORGED")))
            #expect(otherServer.status == 403 && otherServer.body.contains("a host uploads only its own sessions"), "\(otherServer)")
            // Its own server id, another user: the session's start event says whose it is.
            let otherUser = try await upload(sid, try await Self.gzipRecording(cluster, Self.recording(sid: sid, user: "mallory", serverID: nodeUUID, output: "FORGED")))
            #expect(otherUser.status == 403 && otherUser.body.contains("start event names joe@root"), "\(otherUser)")
            // Everything right but the content: a stored recording is never replaced.
            let overwrite = try await upload(sid, try await Self.gzipRecording(cluster, Self.recording(sid: sid, user: "joe", serverID: nodeUUID, output: "FORGED")))
            #expect(overwrite.status == 409 && overwrite.body.contains("already stored"), "\(overwrite)")
            // A session that never ran.
            let invented = UUID().uuidString.lowercased()
            let forged = try await upload(invented, try await Self.gzipRecording(cluster, Self.recording(sid: invented, user: "mallory", serverID: nodeUUID, output: "FORGED")))
            #expect(forged.status == 404 && forged.body.contains("no session.start"), "\(forged)")
            // The same bytes again (a retry whose answer was lost) are fine.
            let retry = try await upload(sid, original)
            #expect(retry.status == 200, "\(retry)")

            #expect(try Data(contentsOf: stored) == original, "the stored recording is unchanged")
            let played = try await TestSupport.run(tsh, joe + ["play", "--format=text", sid])
            #expect(played.stdout.contains("original-42") && !played.stdout.contains("FORGED"), "\(played)")
            let mallorys = try await TestSupport.run(tsh, mallory + ["recordings", "ls", "--format=json"])
            #expect(mallorys.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "\(mallorys)")
            let denied = try await TestSupport.run(tsh, mallory + ["play", "--format=text", sid])
            #expect(denied.exitCode != 0 && !denied.stdout.contains("original-42"), "\(denied)")
            let listed = try await TestSupport.run(tsh, joe + ["recordings", "ls", "--format=json"])
            #expect(!listed.stdout.contains(invented), "\(listed)")

            let failures = try await AuditEventsTests.events(cluster, ["--type=session.upload"]).filter { $0["code"] == .string("T2005E") }
            for (failedSID, reason) in [(sid, "a host uploads only its own sessions"), (sid, "start event names"), (sid, "already stored"), (invented, "no session.start")] {
                #expect(
                    failures.contains {
                        $0["sid"] == .string(failedSID) && $0["server_id"] == .string(nodeUUID)
                            && ($0["error"].flatMap { if case .string(let text) = $0 { text } else { nil } } ?? "").contains(reason)
                    }, "\(reason): \(failures)")
            }
            await cluster.stop()
        }
    }
}
