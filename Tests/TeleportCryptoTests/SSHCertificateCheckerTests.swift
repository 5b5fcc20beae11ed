import Crypto
import Foundation
import TeleportAPI
import TeleportCrypto
import Testing

@Suite("SSH certificate checker")
struct SSHCertificateCheckerTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)
    let ca = Curve25519.Signing.PrivateKey()
    let subjectKey = Curve25519.Signing.PrivateKey()
    var caKey: SSHPublicKey { .ed25519(ca.publicKey) }
    var subject: SSHPublicKey { .ed25519(subjectKey.publicKey) }

    func certificate(
        type: SSHCertificate.CertType = .user,
        principals: [String] = ["root", "alice"],
        criticalOptions: [String: String] = [:],
        signer: Curve25519.Signing.PrivateKey? = nil
    ) throws -> SSHCertificate {
        try SSHCertificate.sign(
            publicKey: subject, type: type, serial: 7, keyID: "alice", validPrincipals: principals,
            validAfter: Self.start, validBefore: Self.start.addingTimeInterval(3600),
            criticalOptions: criticalOptions, extensions: [SSHCertificate.permitPTY: ""], caKey: signer ?? ca
        )
    }

    func check(
        _ cert: SSHCertificate,
        at date: Date = start.addingTimeInterval(60),
        trusted: [SSHPublicKey]? = nil,
        type: SSHCertificate.CertType = .user,
        login: String? = "root",
        clientAddress: String? = "127.0.0.1"
    ) throws -> SSHCertificateChecker.CheckedCertificate {
        let checker = SSHCertificateChecker(clock: ManualClock(date))
        return try checker.check(
            cert, trustedCAs: trusted ?? [caKey], expectedType: type, login: login, clientAddress: clientAddress
        )
    }

    /// Runs `body`, requires an accessDenied error and returns its message.
    func refusal(_ body: () throws -> Void) throws -> String {
        let error = try #require(throws: TeleportError.self) { try body() }
        #expect(error.code == .accessDenied)
        #expect(!error.message.contains("\n"))
        return error.message
    }

    @Test func validCertificateIsAccepted() throws {
        let cert = try certificate(criticalOptions: [
            "force-command": "uptime", "source-address": "10.0.0.0/8,127.0.0.1",
        ])
        let checked = try check(cert)
        #expect(checked.keyID == "alice")
        #expect(checked.serial == 7)
        #expect(checked.principals == ["root", "alice"])
        #expect(checked.extensions == [SSHCertificate.permitPTY: ""])
        #expect(checked.forceCommand == "uptime")
        #expect(checked.sourceAddresses?.count == 2)
        #expect(checked.validBefore == Self.start.addingTimeInterval(3600))
        #expect(checked.signatureKey == caKey)

        let plain = try check(try certificate(), login: nil, clientAddress: nil)
        #expect(plain.forceCommand == nil)
        #expect(plain.sourceAddresses == nil)
        let host = try check(try certificate(type: .host, principals: ["node1"]), type: .host, login: "node1")
        #expect(host.principals == ["node1"])
    }

    @Test func validityWindowBoundaries() throws {
        let cert = try certificate()
        _ = try check(cert, at: Self.start)
        _ = try check(cert, at: Self.start.addingTimeInterval(3599.9))
        let early = try refusal { _ = try check(cert, at: Self.start.addingTimeInterval(-1)) }
        #expect(early.contains("not valid yet"))
        let late = try refusal { _ = try check(cert, at: Self.start.addingTimeInterval(3600)) }
        #expect(late.contains("expired"))
    }

    @Test func untrustedCAIsRefused() throws {
        let other = SSHPublicKey.ed25519(Curve25519.Signing.PrivateKey().publicKey)
        let message = try refusal { _ = try check(try certificate(), trusted: [other]) }
        #expect(message.contains("not a trusted user CA"))
        let none = try refusal { _ = try check(try certificate(), trusted: []) }
        #expect(none == message)
        let otherCA = try refusal { _ = try check(try certificate(signer: Curve25519.Signing.PrivateKey())) }
        #expect(otherCA.contains("not a trusted user CA"))
    }

    @Test func selfSignedCertificateIsRefusedEvenIfItsKeyIsTrusted() throws {
        let cert = try certificate(signer: subjectKey)
        let message = try refusal { _ = try check(cert, trusted: [caKey, subject]) }
        #expect(message.contains("self-signed"))
    }

    @Test(arguments: [(SSHCertificate.CertType.host, SSHCertificate.CertType.user), (.user, .host)])
    func wrongTypeIsRefused(actual: SSHCertificate.CertType, expected: SSHCertificate.CertType) throws {
        let cert = try certificate(type: actual)
        let message = try refusal { _ = try check(cert, type: expected) }
        #expect(message.contains("is a \(actual) certificate where a \(expected) certificate is required"))
    }

    @Test func emptyPrincipalsAreNeverAnyPrincipal() throws {
        let cert = try certificate(principals: [])
        let message = try refusal { _ = try check(cert) }
        #expect(message.contains("lists no principals"))
        let withoutLogin = try refusal { _ = try check(cert, login: nil) }
        #expect(withoutLogin == message)
    }

    @Test(arguments: ["bob", "Root", "", "root "])
    func loginNotAmongPrincipalsIsRefused(login: String) throws {
        let message = try refusal { _ = try check(try certificate(), login: login) }
        #expect(message.contains("not valid for principal"))
    }

    @Test(arguments: ["permit-pty", "verify-required", "no-touch-required", "x-unknown@example.com"])
    func unknownCriticalOptionIsRefused(option: String) throws {
        let message = try refusal { _ = try check(try certificate(criticalOptions: [option: ""])) }
        #expect(message.contains("unsupported critical option \"\(option)\""))
    }

    @Test(arguments: [
        ("10.0.0.0/8", "192.168.1.1"),
        ("127.0.0.2/32", "127.0.0.1"),
        ("2001:db8::/32", "2001:db9::1"),
        ("::1", "127.0.0.1"),
    ])
    func sourceAddressMismatchIsRefused(list: String, client: String) throws {
        let cert = try certificate(criticalOptions: ["source-address": list])
        let message = try refusal { _ = try check(cert, clientAddress: client) }
        #expect(message.contains("does not allow connections from \"\(client)\""))
    }

    @Test func sourceAddressWithoutClientAddressIsRefused() throws {
        let cert = try certificate(criticalOptions: ["source-address": "0.0.0.0/0,::/0"])
        let message = try refusal { _ = try check(cert, clientAddress: nil) }
        #expect(message.contains("client address is unknown"))
        _ = try check(cert, clientAddress: "203.0.113.9")
        _ = try check(cert, clientAddress: "2001:db8::1")
    }

    @Test(arguments: ["", "10.0.0.0/8,", "10.0.0.1/8", "10.0.0.0/33", "example.com", "10.0.0.0/8, 127.0.0.1"])
    func malformedSourceAddressIsRefused(list: String) throws {
        let cert = try certificate(criticalOptions: ["source-address": list])
        let message = try refusal { _ = try check(cert, clientAddress: "10.0.0.1") }
        #expect(message.contains("malformed source-address"))
    }

    @Test func certificateTextCannotForgeLogLines() throws {
        let cert = try SSHCertificate.sign(
            publicKey: subject, type: .user, keyID: "mallory\nAccepted root", validPrincipals: ["x"],
            validAfter: Self.start, validBefore: Self.start.addingTimeInterval(3600),
            criticalOptions: ["evil\noption": ""], caKey: ca
        )
        let principal = try refusal { _ = try check(cert, login: "root") }
        #expect(principal.contains(#""mallory\nAccepted root""#))
        let option = try refusal { _ = try check(cert, login: "x") }
        #expect(option.contains(#""evil\noption""#))
    }

    @Test func everyRefusalHasItsOwnMessage() throws {
        var messages: [String] = []
        let cases: [() throws -> Void] = [
            { _ = try check(try certificate(), trusted: []) },
            { _ = try check(try certificate(signer: subjectKey), trusted: [subject]) },
            { _ = try check(try certificate(type: .host)) },
            { _ = try check(try certificate(principals: [])) },
            { _ = try check(try certificate(), login: "bob") },
            { _ = try check(try certificate(), at: Self.start.addingTimeInterval(-10)) },
            { _ = try check(try certificate(), at: Self.start.addingTimeInterval(7200)) },
            { _ = try check(try certificate(criticalOptions: ["no-such-option": ""])) },
            { _ = try check(try certificate(criticalOptions: ["source-address": "10.0.0.0/8"])) },
            { _ = try check(try certificate(criticalOptions: ["source-address": "10.0.0.0/8"]), clientAddress: nil) },
            { _ = try check(try certificate(criticalOptions: ["source-address": "bogus"])) },
        ]
        for body in cases {
            // Strip the common "certificate "alice" (serial 7)" prefix before comparing.
            messages.append(try refusal(body).replacingOccurrences(of: "certificate \"alice\" (serial 7) ", with: ""))
        }
        #expect(Set(messages).count == cases.count, "\(messages)")
    }
}
