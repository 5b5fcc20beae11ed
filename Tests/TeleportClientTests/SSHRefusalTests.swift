import Crypto
import Foundation
import TeleportAPI
import TeleportClient
import TeleportCrypto
import TeleportSSHClient
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

    @Test func aRefusalOfAValidCertificateMayBeALock() throws {
        let certificate = try Self.certificate(logins: ["root"])
        #expect(SSHRefusal.mayBeLocked(login: "root", certificate: certificate, now: Self.now))
        #expect(!SSHRefusal.mayBeLocked(login: "daemon", certificate: certificate, now: Self.now))
        #expect(!SSHRefusal.mayBeLocked(login: "root", certificate: try Self.certificate(logins: ["root"], validFor: -5), now: Self.now))
        #expect(!SSHRefusal.mayBeLocked(login: "root", certificate: nil, now: Self.now))
    }

    @Test func aUserLockSaysItsMessageNameAndEnd() {
        let lock = WebAPI.MyLock(name: "l1", user: "joe", login: nil, message: "incident 42", expires: Self.now)
        #expect(
            SSHRefusal.lockMessage([lock], user: "joe")
                == "access denied: user joe is locked: incident 42 (lock l1, until 2027-01-15T08:00:00Z); "
                + "ask an administrator (tctl lock ls / tctl rm lock/l1)")
    }

    @Test func aLoginLockAndNoLock() {
        let lock = WebAPI.MyLock(name: "l2", user: nil, login: "root", message: nil, expires: nil)
        #expect(
            SSHRefusal.lockMessage([lock], user: "joe")
                == "access denied: the login \"root\" is locked (lock l2); ask an administrator (tctl lock ls / tctl rm lock/l2)")
        #expect(SSHRefusal.lockMessage([], user: "joe") == nil)
    }

    @Test func aLockMessageCannotDriveTheTerminal() throws {
        let lock = WebAPI.MyLock(name: "l3", user: "joe", login: nil, message: "bye\u{1B}]0;owned\u{07}\nfake prompt", expires: nil)
        let message = try #require(SSHRefusal.lockMessage([lock], user: "joe"))
        #expect(!message.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F })
        #expect(message.contains("bye"))
    }

    @Test func noCertificate() {
        #expect(SSHRefusal.message(login: "root", what: "the proxy p", certificate: nil, now: Self.now).contains("tsh login"))
    }
}
