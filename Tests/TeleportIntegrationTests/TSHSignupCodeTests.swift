import Foundation
import TeleportTestSupport
import Testing

@Suite("tsh login right after signup", .serialized)
struct TSHSignupCodeTests {
    /// Before: `invalid user name, password or one-time code`, the same words as a wrong password.
    @Test("the signup's own code says it was used (only with the right password); the next code logs in", .timeLimit(.minutes(3)))
    func signupCodeIsUsed() async throws {
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        try await withCluster(try ClusterFixture(clusterName: "signup.example")) { cluster in
            var codes = try await TSHLoginTests.signUp(cluster)
            let proxy = "127.0.0.1:\(cluster.webPort)"
            let arguments = ["--proxy=\(proxy)", "--user=joe", "--insecure"]
            // The code the signup form took, again.
            let used = try TestTOTP.code(base32: codes.secret, time: Double(codes.lastStep * 30) + 1)
            let reused = try await TSHLoginTests.login(tsh, arguments, password: TSHLoginTests.password, code: used)
            #expect(reused.status != 0, "\(reused.transcript)")
            #expect(reused.transcript.contains("this one-time code was already used; wait for the next one"), "\(reused.transcript)")
            // With a wrong password the same code says nothing about the code.
            let wrong = try await TSHLoginTests.login(tsh, arguments, password: "not the password", code: used)
            #expect(wrong.transcript.contains("invalid user name, password or one-time code"), "\(wrong.transcript)")
            #expect(!wrong.transcript.contains("already used"), "\(wrong.transcript)")
            let next = try await TSHLoginTests.login(tsh, arguments, password: TSHLoginTests.password, code: try await codes.next())
            #expect(next.status == 0, "\(next.transcript)")
        }
    }
}
