import Crypto
import Foundation
import TeleportClient
import TeleportCrypto
import Testing

@Suite("tsh ssh: a refusal in words")
struct SSHRefusalTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func certificate(logins: [String], validFor: TimeInterval = 3600) throws -> SSHCertificate {
        try SSHCertificate.sign(
            publicKey: .ed25519(Curve25519.Signing.PrivateKey().publicKey), type: .user, keyID: "joe", validPrincipals: logins,
            validAfter: now.addingTimeInterval(-60), validBefore: now.addingTimeInterval(validFor),
            extensions: SSHCertificate.standardUserExtensions, caKey: Curve25519.Signing.PrivateKey())
    }

    @Test func loginNotInTheCertificate() throws {
        let message = SSHRefusal.message(login: "daemon", what: "node luna", certificate: try Self.certificate(logins: ["root"]), now: Self.now)
        #expect(message == "access denied: your certificate does not allow the login \"daemon\" on node luna; your logins are: root")
    }

    @Test func expiredCertificate() throws {
        let message = SSHRefusal.message(
            login: "root", what: "node luna", certificate: try Self.certificate(logins: ["root"], validFor: -5), now: Self.now)
        #expect(message == "access denied: your certificate expired at 2027-01-15T07:59:55Z: run tsh login to get a new one")
    }

    @Test func allowedLoginRefusedNamesLocksAndExplain() throws {
        let message = SSHRefusal.message(login: "root", what: "node luna", certificate: try Self.certificate(logins: ["root"]), now: Self.now)
        #expect(message.hasPrefix("access denied: node luna refused the login \"root\" for joe: the user or the login may be locked"))
        #expect(message.hasSuffix("tctl access explain --user=joe --node=luna --login=root"))
    }

    @Test func noCertificate() {
        #expect(SSHRefusal.message(login: "root", what: "the proxy p", certificate: nil, now: Self.now).contains("tsh login"))
    }
}
