import Crypto
import Foundation
import TeleportAPI
import TeleportCrypto
import TeleportTestSupport
import Testing

/// Issue 12 item 2 and the lockout message, against a real cluster: a user cannot have another
/// user's public key certified (proof of possession; a key stays bound to its first user), every
/// attempt is audited, and a refused login says the same thing, as slowly, whether the user is
/// unknown, known with a wrong password, or locked.
@Suite("key substitution and login refusals", .serialized)
struct KeySubstitutionTests {
    /// Both key pairs of a login, with a request signed by `signer` (the holder of the private
    /// keys; by default these keys).
    struct Keys {
        let ssh: Curve25519.Signing.PrivateKey
        let tls: P256.Signing.PrivateKey

        init(ssh: Curve25519.Signing.PrivateKey = .init(), tls: P256.Signing.PrivateKey = .init()) {
            self.ssh = ssh
            self.tls = tls
        }

        var sshLine: String { SSHPublicKey.ed25519(ssh.publicKey).authorizedKeyLine() }
        var fingerprintHex: String { SSHPublicKey.ed25519(ssh.publicKey).fingerprintHex }

        func request(user: String, password: String, otp: String, proof: AuthAPI.KeyProof?) -> AuthAPI.LoginRequest {
            AuthAPI.LoginRequest(
                user: user, password: password, otpCode: otp, sshPublicKey: sshLine, tlsPublicKeyPEM: tls.publicKey.pemRepresentation,
                ttlSeconds: 3600, keyProof: proof)
        }

        func proof(user: String, purpose: LoginProof.Purpose = .login) throws -> AuthAPI.KeyProof {
            try LoginProof.sign(purpose: purpose, user: user, sshKey: ssh, tlsKey: tls, now: Date())
        }
    }

    /// The auth API with the admin identity (curl with mutual TLS): status and body.
    static func admin(_ cluster: ClusterFixture, _ path: String, body: Data? = nil) async throws -> (status: Int, body: String) {
        let keys = cluster.dataDir.appendingPathComponent("keys")
        var arguments = [
            "-s", "-w", "\n%{http_code}", "--cert", keys.appendingPathComponent("admin.crt").path, "--key",
            keys.appendingPathComponent("admin.key").path, "--cacert", keys.appendingPathComponent("ca.crt").path,
        ]
        if let body {
            let bodyURL = cluster.directory.appendingPathComponent("request-\(UUID().uuidString).json")
            try body.write(to: bodyURL)
            arguments += ["-H", "Content-Type: application/json", "--data-binary", "@\(bodyURL.path)"]
        }
        arguments.append("https://127.0.0.1:\(cluster.authPort)\(path)")
        let result = try await TestSupport.run("/usr/bin/curl", arguments)
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    /// The user a key is certified for in the auth service's registry (what nodes and proxies use).
    static func owner(_ cluster: ClusterFixture, _ keys: Keys) async throws -> String? {
        let reply = try await admin(cluster, "/v1/usercerts/\(keys.fingerprintHex)")
        guard reply.status == 200 else { return nil }
        let lookup = try ResourceCodec.jsonDecoder().decode(AuthAPI.UserCertLookup.self, from: Data(reply.body.utf8))
        return try SSHCertificate(authorizedKeyLine: lookup.certificate).keyID
    }

    @Test("Bob cannot have Alice's public key certified; Alice keeps her key; every attempt is audited", .timeLimit(.minutes(3)))
    func keySubstitution() async throws {
        try await withCluster(try ClusterFixture(clusterName: "keysub.example")) { cluster in
            try await cluster.start()
            let aliceWeb = WebDriver(cluster: cluster)
            let bobWeb = WebDriver(cluster: cluster)
            let aliceLink = try await SignupHelper.addUser(cluster, name: "alice", logins: "alice")
            let bobLink = try await SignupHelper.addUser(cluster, name: "bob", logins: "bob")
            let alicePassword = "alice's long enough password"
            let bobPassword = "bob's long enough password!"
            let (aliceSecret, aliceEnrolled) = try await SignupHelper.enrol(aliceWeb, aliceLink, password: alicePassword)
            let (bobSecret, bobEnrolled) = try await SignupHelper.enrol(bobWeb, bobLink, password: bobPassword)
            func bobCode(_ steps: Double) throws -> String {
                try TestTOTP.code(base32: bobSecret, time: bobEnrolled.timeIntervalSince1970 + 30 * steps)
            }

            // Alice logs in with her keys.
            let alice = Keys()
            let first = try await aliceWeb.login(
                alice.request(user: "alice", password: alicePassword, otp: try TestTOTP.code(base32: aliceSecret, time: aliceEnrolled.timeIntervalSince1970 + 30), proof: try alice.proof(user: "alice")))
            #expect(first.status == 200, "\(first)")
            #expect(try await Self.owner(cluster, alice) == "alice")

            // The attack: Bob, with his own password and code, sends Alice's public keys.
            // Without a proof (an old client, or one that cannot sign):
            let unsigned = try await bobWeb.login(alice.request(user: "bob", password: bobPassword, otp: try bobCode(1), proof: nil))
            #expect(unsigned.status == 400, "\(unsigned)")
            #expect(unsigned.body.contains("key_proof"), "\(unsigned.body)")
            // With a proof made by his own keys:
            let bobsKeys = Keys()
            let forged = try await bobWeb.login(
                alice.request(user: "bob", password: bobPassword, otp: try bobCode(1), proof: try bobsKeys.proof(user: "bob")))
            #expect(forged.status == 403, "\(forged)")
            #expect(forged.body.contains("not signed with the private key"), "\(forged.body)")
            // Replaying Alice's own proof (it names alice, not bob):
            let replayed = try await bobWeb.login(
                alice.request(user: "bob", password: bobPassword, otp: try bobCode(1), proof: try alice.proof(user: "alice")))
            #expect(replayed.status == 403, "\(replayed)")
            // Even holding Alice's private key (a shared or stolen key), Bob cannot rebind it.
            let shared = try await bobWeb.login(
                alice.request(user: "bob", password: bobPassword, otp: try bobCode(1), proof: try alice.proof(user: "bob")))
            #expect(shared.status == 403, "\(shared)")
            #expect(shared.body.contains("another user"), "\(shared.body)")

            // tctl auth sign's route (admin) is held to the same rules.
            let unsignedSign = try await Self.admin(
                cluster, "/v1/certs/user",
                body: try ResourceCodec.json(
                    AuthAPI.SignUserRequest(
                        user: "bob", sshPublicKey: alice.sshLine, tlsPublicKeyPEM: alice.tls.publicKey.pemRepresentation, ttlSeconds: 3600)))
            #expect(unsignedSign.status == 400, "\(unsignedSign)")
            let sharedSign = try await Self.admin(
                cluster, "/v1/certs/user",
                body: try ResourceCodec.json(
                    AuthAPI.SignUserRequest(
                        user: "bob", sshPublicKey: alice.sshLine, tlsPublicKeyPEM: alice.tls.publicKey.pemRepresentation, ttlSeconds: 3600,
                        keyProof: try alice.proof(user: "bob", purpose: .signUser))))
            #expect(sharedSign.status == 403, "\(sharedSign)")
            // tctl itself signs its fresh keys, and works.
            let identity = cluster.directory.appendingPathComponent("bob.id").path
            let signed = try await cluster.tctl(["auth", "sign", "--user=bob", "--out=\(identity)"])
            #expect(signed.exitCode == 0, "\(signed)")

            // Alice keeps her key: the registry still binds it to her, and it is certified for her
            // again (her next login's code is a step away; the admin route takes the same path).
            #expect(try await Self.owner(cluster, alice) == "alice")
            let again = try await Self.admin(
                cluster, "/v1/certs/user",
                body: try ResourceCodec.json(
                    AuthAPI.SignUserRequest(
                        user: "alice", sshPublicKey: alice.sshLine, tlsPublicKeyPEM: alice.tls.publicKey.pemRepresentation, ttlSeconds: 3600,
                        keyProof: try alice.proof(user: "alice", purpose: .signUser))))
            #expect(again.status == 200, "\(again)")
            #expect(try await Self.owner(cluster, alice) == "alice")
            // Bob logs in with keys of his own (his code was never spent by the refused attempts).
            // (The code of the current step: on a loaded machine the step after enrolment may be past.)
            let current = try TestTOTP.code(base32: bobSecret, time: max(bobEnrolled.timeIntervalSince1970 + 30, Date().timeIntervalSince1970))
            let own = try await bobWeb.login(
                bobsKeys.request(user: "bob", password: bobPassword, otp: current, proof: try bobsKeys.proof(user: "bob")))
            #expect(own.status == 200, "\(own)")
            #expect(try await Self.owner(cluster, bobsKeys) == "bob")

            let audit = try SignupHelper.auditLog(cluster).split(separator: "\n")
            let bobFailures = audit.filter { $0.contains("\"user.login\"") && $0.contains("\"success\":false") && $0.contains("\"user\":\"bob\"") }
            #expect(bobFailures.count >= 4, "every attempt is audited: \(bobFailures)")
            #expect(bobFailures.contains { $0.contains("key_proof") })
            #expect(bobFailures.contains { $0.contains("not signed with the private key") })
            #expect(bobFailures.contains { $0.contains("another user") })
            let signFailures = audit.filter { $0.contains("\"cert.create\"") && $0.contains("TC000W") && $0.contains("\"identity\":\"bob\"") }
            #expect(signFailures.count == 2, "\(signFailures)")
            await cluster.stop()
        }
    }

    @Test("a locked account, a wrong password and an unknown user get the same reply, as slowly", .timeLimit(.minutes(3)))
    func lockoutMessage() async throws {
        try await withCluster(try ClusterFixture(clusterName: "lockmsg.example")) { cluster in
            try await cluster.start()
            let web = WebDriver(cluster: cluster)
            let link = try await SignupHelper.addUser(cluster, name: "carl", logins: "carl")
            let password = "carl's long enough password"
            let (secret, enrolled) = try await SignupHelper.enrol(web, link, password: password)
            let keys = Keys()
            func attempt(_ user: String, _ password: String) async throws -> (reply: WebReply, seconds: Double) {
                let code = try TestTOTP.code(base32: secret, time: enrolled.timeIntervalSince1970 + 30)
                let request = keys.request(user: user, password: password, otp: code, proof: try keys.proof(user: user))
                let start = ContinuousClock.now
                let reply = try await web.login(request)
                let elapsed = ContinuousClock.now - start
                return (reply, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            }

            let wrong = try await attempt("carl", "wrong password 0")
            let unknown = try await attempt("nobody-here", "wrong password 0")
            #expect(wrong.reply.status == 403 && unknown.reply.status == 403)
            #expect(wrong.reply.body == unknown.reply.body, "\(wrong.reply.body) vs \(unknown.reply.body)")
            for index in 1..<5 { _ = try await attempt("carl", "wrong password \(index)") }
            // Locked now: the right password is refused with the very same reply as an unknown user.
            let locked = try await attempt("carl", password)
            #expect(locked.reply.status == 403)
            #expect(locked.reply.body == unknown.reply.body, "\(locked.reply.body) vs \(unknown.reply.body)")
            #expect(!locked.reply.body.contains("until"), "the reply does not reveal the lock: \(locked.reply.body)")
            #expect(try await cluster.tctl(["users", "ls"]).stdout.contains("locked until"), "administrators still see the lock")

            // Timing class: a locked account costs a bcrypt check like an unknown user does (before
            // the fix it answered without one, several times faster). The medians of five each,
            // interleaved (a loaded machine makes single attempts noisy).
            var lockedTimes: [Double] = []
            var unknownTimes: [Double] = []
            for _ in 0..<5 {
                lockedTimes.append(try await attempt("carl", password).seconds)
                unknownTimes.append(try await attempt("nobody-here", password).seconds)
            }
            let medianLocked = lockedTimes.sorted()[2]
            let medianUnknown = unknownTimes.sorted()[2]
            #expect(medianLocked >= medianUnknown * 0.4, "locked \(lockedTimes) vs unknown \(unknownTimes)")

            let audit = try SignupHelper.auditLog(cluster)
            #expect(audit.contains("account locked until"), "the audit log keeps the cause")
            #expect(audit.contains("unknown user"))
            await cluster.stop()
        }
    }
}
