import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// Login rules: a used code is not accepted twice, five failures lock the account for 30 minutes
/// (visible in `tctl users ls`, lifted by a reset), the certificate TTL is capped at 12 hours,
/// and every attempt is in the audit log without the password.
@Suite("login policy", .serialized)
struct LoginPolicyTests {
    @Test(.timeLimit(.minutes(3)))
    func replayLockoutAndTTL() async throws {
        try await withCluster(try ClusterFixture(clusterName: "policy.example")) { cluster in
            try await cluster.start()
            let web = WebDriver(cluster: cluster)
            let link = try await SignupHelper.addUser(cluster, name: "ann", logins: "ann")
            let password = "a long enough password 42"
            let (secret, enrolled) = try await SignupHelper.enrol(web, link, password: password)
            let enrolTime = enrolled.timeIntervalSince1970

            let keys = try LoginKeys()
            // The enrolment used the current step: the same code is refused (replay).
            let replay = try await web.login(keys.request(user: "ann", password: password, otp: try TestTOTP.code(base32: secret, time: enrolTime)))
            #expect(replay.status == 403, "a code is good once: \(replay)")

            // A TTL above the maximum is capped at 12 hours.
            var long = keys.request(user: "ann", password: password, otp: try TestTOTP.code(base32: secret, time: enrolTime + 30))
            long.ttlSeconds = 48 * 3600
            let capped = try await web.login(long)
            #expect(capped.status == 200, "\(capped)")
            let certs = try ResourceCodec.jsonDecoder().decode(AuthAPI.LoginResponse.self, from: Data(capped.body.utf8))
            #expect(certs.validBefore.timeIntervalSinceNow <= 12 * 3600 + 5)
            #expect(certs.validBefore.timeIntervalSinceNow > 11 * 3600)

            // Five wrong passwords lock the account; then even the right password is refused.
            for attempt in 0..<5 {
                let wrong = try await web.login(keys.request(user: "ann", password: "wrong password \(attempt)", otp: "000000"))
                #expect(wrong.status == 403)
            }
            let locked = try await web.login(
                keys.request(user: "ann", password: password, otp: try TestTOTP.code(base32: secret, time: enrolTime + 60)))
            #expect(locked.status == 403)
            // The reply does not reveal the lock (an unknown user gets the same); admins see it.
            #expect(locked.body.contains("the account is locked after too many failed logins"), "\(locked.body)")
            #expect(!locked.body.contains("locked until"), "\(locked.body)")
            let users = try await cluster.tctl(["users", "ls"])
            #expect(users.stdout.contains("locked until"), "\(users)")

            // A reset unlocks: the user sets a new password and TOTP.
            let reset = try await SignupHelper.resetUser(cluster, name: "ann")
            let newPassword = "another long password 43"
            try await web.complete(reset, password: newPassword, expecting: "Your password has been reset")
            let after = try await cluster.tctl(["users", "ls"])
            #expect(!after.stdout.contains("locked until"), "\(after)")

            let audit = try SignupHelper.auditLog(cluster)
            let logins = audit.split(separator: "\n").filter { $0.contains("\"user.login\"") }
            #expect(logins.count >= 8, "every attempt is audited: \(logins.count)")
            #expect(logins.contains { $0.contains("\"success\":true") && $0.contains("T1000I") })
            #expect(logins.contains { $0.contains("\"success\":false") && $0.contains("T1000W") && $0.contains("invalid password") })
            #expect(audit.contains("\"user.locked\""))
            #expect(!audit.contains(password) && !audit.contains(newPassword), "no password in the audit log")
            await cluster.stop()
        }
    }

    @Test("a role's max_session_ttl caps the login certificate (the shortest of the user's roles)", .timeLimit(.minutes(2)))
    func roleCapsTTL() async throws {
        try await withCluster(try ClusterFixture(clusterName: "rolettl.example")) { cluster in
            try await cluster.start()
            let role = cluster.directory.appendingPathComponent("short.yaml")
            try TestSupport.write("kind: role\nversion: v7\nmetadata:\n  name: short\nspec:\n  options:\n    max_session_ttl: 1h\n", to: role)
            #expect(try await cluster.tctl(["create", role.path]).exitCode == 0)
            let web = WebDriver(cluster: cluster)
            let link = try await SignupHelper.addUser(cluster, name: "ben", logins: "ben")
            #expect(try await cluster.tctl(["users", "update", "ben", "--set-roles", "access,short"]).exitCode == 0)
            let password = "a long enough password 44"
            let (secret, enrolled) = try await SignupHelper.enrol(web, link, password: password)
            let enrolTime = enrolled.timeIntervalSince1970
            var request = try LoginKeys().request(user: "ben", password: password, otp: try TestTOTP.code(base32: secret, time: enrolTime + 30))
            request.ttlSeconds = 8 * 3600
            let reply = try await web.login(request)
            #expect(reply.status == 200, "\(reply)")
            let certs = try ResourceCodec.jsonDecoder().decode(AuthAPI.LoginResponse.self, from: Data(reply.body.utf8))
            #expect(certs.validBefore.timeIntervalSinceNow <= 3600 + 5, "capped by the short role: \(certs.validBefore)")
            #expect(certs.validBefore.timeIntervalSinceNow > 3500)
            await cluster.stop()
        }
    }
}
