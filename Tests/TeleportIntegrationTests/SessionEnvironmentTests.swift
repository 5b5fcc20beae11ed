import Foundation
import TeleportTestSupport
import Testing

/// What a session's processes learn from the node's environment: their real terminal
/// (`SSH_TTY`, as sshd sets it) and the session `teleport status` describes.
@Suite("session environment", .serialized)
struct SessionEnvironmentTests {
    @Test("SSH_TTY names the session's real terminal; teleport status shows the cluster, node, session, user and login")
    func terminalAndStatus() async throws {
        try await SessionLifetimeTests.withSetup { setup in
            let terminal = try await setup.tsh(["ssh", "-t", "root@testnode", "echo \"tty=$(tty) ssh_tty=$SSH_TTY\""])
            #expect(terminal.exitCode == 0, "\(terminal)")
            let words = terminal.stdout.split(whereSeparator: { $0.isWhitespace })
            let tty = words.first { $0.hasPrefix("tty=") }.map { String($0.dropFirst(4)) }
            let sshTTY = words.first { $0.hasPrefix("ssh_tty=") }.map { String($0.dropFirst(8)) }
            #expect(tty?.hasPrefix("/dev/pts/") == true && tty == sshTTY, "\(terminal.stdout.debugDescription)")

            let teleport = try ClusterFixture.binary("teleport")
            let status = try await setup.tsh(["ssh", "root@testnode", "\(teleport) status; echo sid=$SSH_SESSION_ID"])
            #expect(status.exitCode == 0, "\(status)")
            let sid = try #require(status.stdout.split(separator: "\n").first { $0.hasPrefix("sid=") }.map { String($0.dropFirst(4)) })
            #expect(sid.count == 36, "\(status.stdout)")
            for line in [
                "Cluster Name: lifetime.example", "Node        : testnode", "Session ID  : \(sid)", "User        : joe", "Login       : root",
            ] {
                #expect(status.stdout.contains(line + "\n"), "missing \(line.debugDescription) in \(status.stdout)")
            }
            #expect(!status.stdout.contains(": -\n"), "a field is unset: \(status.stdout)")

            // Outside a session it says so, in one line.
            let outside = try await TestSupport.run(teleport, ["status"], environment: ["TELEPORT_SESSION": "", "SSH_SESSION_ID": ""])
            #expect(outside.exitCode == 1 && outside.stderr.contains("only works inside a Teleport SSH session"), "\(outside)")
        }
    }
}
