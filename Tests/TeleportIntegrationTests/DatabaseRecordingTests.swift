import Foundation
import Testing
import TeleportTestSupport

extension DatabaseAccessPostgresTests {
    /// A database session's statements are a recording: `tsh recordings ls` lists it (login = the
    /// db user, host = the database) and `tsh play --format=text` prints the statements in order.
    static func recordedStatements(_ tsh: TSHRunner, lines: [String]) async throws {
        let query = try #require(lines.first { $0.contains("\"db.session.query\"") && $0.contains("SELECT current_user") })
        let sid = try #require(query.range(of: #""sid":"([0-9a-f-]{36})""#, options: .regularExpression).map {
            String(query[$0].dropFirst(7).dropLast())
        })
        var listed = try await tsh.run(["recordings", "ls"])
        for _ in 0..<60 where !listed.stdout.contains(sid) {
            try await Task.sleep(for: .milliseconds(250))
            listed = try await tsh.run(["recordings", "ls"])
        }
        let row = listed.stdout.split(separator: "\n").first { $0.contains(sid) }.map(String.init) ?? ""
        #expect(row.contains("alice") && row.contains("pg (postgres)"), "\(listed)")
        let played = try await tsh.run(["play", "--format=text", sid])
        #expect(played.exitCode == 0 && played.stdout.contains("SELECT current_user"), "\(played)")
    }
}
