import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// `audit_sessions_uri: s3://BUCKET/PREFIX?endpoint=...&region=...` against a local S3-compatible
/// server (moto's, ``S3TestServer``; not AWS), which checks our Signature V4 against the keys it
/// issued: a recording is uploaded to the bucket and `tsh play`ed from it; wrong credentials leave
/// the recording on its host and it arrives once they are fixed. (The client's own failures, an
/// unreachable endpoint and a bucket that does not exist: `S3ClientTests`.)
@Suite("session recordings in S3", .serialized, .timeLimit(.minutes(6)), .enabled(if: S3TestServer.missing == nil, "moto's S3 server is not installed"))
struct RecordingS3Tests {
    /// The whole path: a session on the node, its recording refused by S3 (wrong secret in the
    /// shared credentials file) and kept on the node, then uploaded once the file is fixed, stored
    /// in the bucket and played with `tsh play`.
    @Test func aRecordingGoesToS3AndPlaysBack() async throws {
        try await S3TestServer.with { s3 in
            let storage = """
                  storage:
                    audit_sessions_uri: "s3://\(s3.bucket)/records?endpoint=\(s3.endpoint)&region=us-east-1"
                """
            try await withCluster(try ClusterFixture(clusterName: "s3.example", teleportSection: storage)) { cluster in
                let credentials = cluster.directory.appendingPathComponent("aws-credentials")
                func writeCredentials(secret: String) throws {
                    try TestSupport.write("[default]\naws_access_key_id = \(s3.accessKeyID)\naws_secret_access_key = \(secret)\n", to: credentials)
                }
                try writeCredentials(secret: "not-the-secret")
                try await cluster.start(environment: [
                    "AWS_SHARED_CREDENTIALS_FILE": credentials.path, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "default",
                ])
                #expect(try await cluster.tctl(["users", "add", "joe", "root"]).exitCode == 0)
                let identity = cluster.directory.appendingPathComponent("joe.id").path
                #expect(try await cluster.tctl(["auth", "sign", "--user=joe", "--out=\(identity)"]).exitCode == 0)
                let tsh = try ClusterFixture.binary("tsh")
                let tshArguments = ["-i", identity, "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure"]
                let session = try TSHTerminal(
                    tsh, tshArguments + ["ssh", "-t", "root@testnode"], environment: ProcessInfo.processInfo.environment.merging(["TERM": "xterm"]) { $1 })
                try await session.expect("# ")
                session.sendLine("echo s3-recorded-$((40+2))")
                try await session.expect("s3-recorded-42")
                session.sendLine("exit")
                #expect(try await session.wait() == 0)

                // S3 refuses the signature: the upload fails with one line and the recording stays on the node.
                let refused = try await HACluster.eventually(within: .seconds(60)) { cluster.log.contains("SignatureDoesNotMatch") }
                let line = cluster.log.split(separator: "\n").first { $0.contains("SignatureDoesNotMatch") }.map(String.init) ?? ""
                #expect(refused && line.contains("AWS_ACCESS_KEY_ID"), "\(cluster.log.suffix(3000))")
                print("S3 recordings: the upload with the wrong secret failed: \(line.suffix(400))")
                func pending() -> [String] {
                    let files = FileManager.default.enumerator(atPath: cluster.dataDir.path)?.compactMap { $0 as? String } ?? []
                    return files.filter { $0.hasSuffix(".done") }
                }
                #expect(pending().count == 1, "\(pending())")
                #expect(try await s3.objectKeys().isEmpty)
                let listed = try await TestSupport.run(tsh, tshArguments + ["recordings", "ls", "--format=json"])
                #expect(!listed.stdout.contains("\"sid\""), "\(listed)")

                // Fixed credentials (read for every request): the next retry stores it.
                try writeCredentials(secret: s3.secretAccessKey)
                var sid: String?
                let uploaded = try await HACluster.eventually(within: .seconds(90)) {
                    let listed = try await TestSupport.run(tsh, tshArguments + ["recordings", "ls", "--format=json"])
                    let list = (try? ResourceCodec.jsonDecoder().decode([[String: JSONValue]].self, from: Data(listed.stdout.utf8))) ?? []
                    if case .string(let found)? = list.first?["sid"] { sid = found }
                    return sid != nil
                }
                #expect(uploaded, "\(cluster.log.suffix(3000))")
                let id = try #require(sid)
                #expect(pending().isEmpty, "\(pending())")
                let keys = try await s3.objectKeys()
                #expect(keys.contains("records/\(id).events.gz") && keys.contains("records/\(id).chunks.gz"), "\(keys)")
                // Nothing of it in the local sessions directory.
                let local = cluster.dataDir.appendingPathComponent("log/sessions/default/\(id).events.gz").path
                #expect(!FileManager.default.fileExists(atPath: local))
                let played = try await TestSupport.run(tsh, tshArguments + ["play", "--format=text", id])
                #expect(played.exitCode == 0 && played.stdout.contains("s3-recorded-42"), "\(played)")
            }
        }
    }
}
