import Crypto
import Foundation
import TeleportAPI
import TeleportCrypto
import TeleportTestSupport
import Testing

@Suite("OpenSSH certificates")
struct SSHCertificateTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z

    static func userCertificate(
        subject: SSHPublicKey = .ed25519(Curve25519.Signing.PrivateKey().publicKey),
        ca: Curve25519.Signing.PrivateKey = Curve25519.Signing.PrivateKey(),
        type: SSHCertificate.CertType = .user,
        principals: [String] = ["root", "alice"],
        criticalOptions: [String: String] = [:]
    ) throws -> SSHCertificate {
        try SSHCertificate.sign(
            publicKey: subject, type: type, serial: 42, keyID: "alice", validPrincipals: principals,
            validAfter: start, validBefore: start.addingTimeInterval(3600), criticalOptions: criticalOptions,
            extensions: type == .user ? SSHCertificate.standardUserExtensions : [:], caKey: ca
        )
    }

    @Test(arguments: [
        SSHPublicKey.ed25519(Curve25519.Signing.PrivateKey().publicKey),
        .ecdsaP256(P256.Signing.PrivateKey().publicKey),
    ])
    func signAndParseRoundTrip(subject: SSHPublicKey) throws {
        let ca = Curve25519.Signing.PrivateKey()
        let cert = try Self.userCertificate(
            subject: subject, ca: ca, criticalOptions: ["source-address": "10.0.0.0/8", "force-command": "ls -l"]
        )
        #expect(cert.nonce.count == 32)
        #expect(cert.algorithmName == subject.algorithmName + "-cert-v01@openssh.com")
        #expect(cert.signatureKey == .ed25519(ca.publicKey))

        let parsed = try SSHCertificate(wireBytes: cert.wireBytes)
        #expect(parsed == cert)
        #expect(parsed.publicKey == subject)
        #expect(parsed.serial == 42)
        #expect(parsed.type == .user)
        #expect(parsed.keyID == "alice")
        #expect(parsed.validPrincipals == ["root", "alice"])
        #expect(parsed.validAfter == Self.start)
        #expect(parsed.validBefore == Self.start.addingTimeInterval(3600))
        #expect(parsed.criticalOptions == ["source-address": "10.0.0.0/8", "force-command": "ls -l"])
        #expect(parsed.extensions == SSHCertificate.standardUserExtensions)
        #expect(parsed.reserved.isEmpty)
        #expect(parsed.nonce == cert.nonce)
        #expect(parsed.signature == cert.signature)

        let line = cert.authorizedKeyLine(comment: "alice")
        #expect(line.hasPrefix(cert.algorithmName + " "))
        #expect(try SSHCertificate(authorizedKeyLine: line) == cert)
    }

    @Test func foreverAndEpochConvertToTheWireExtremes() throws {
        let cert = try SSHCertificate.sign(
            publicKey: .ed25519(Curve25519.Signing.PrivateKey().publicKey), type: .host, keyID: "h",
            validPrincipals: ["node.example"], validAfter: Date(timeIntervalSince1970: 0),
            validBefore: SSHCertificate.forever, caKey: Curve25519.Signing.PrivateKey()
        )
        #expect(cert.validAfterSeconds == 0)
        #expect(cert.validBeforeSeconds == .max)
        #expect(try SSHCertificate(wireBytes: cert.wireBytes).validBefore == SSHCertificate.forever)
        #expect(throws: TeleportError.badParameter("")) {
            try SSHCertificate.sign(
                publicKey: cert.publicKey, type: .user, keyID: "x", validPrincipals: ["x"], validAfter: Self.start,
                validBefore: Self.start, caKey: Curve25519.Signing.PrivateKey()
            )
        }
    }

    @Test func optionsAreWrittenSortedWithWrappedValues() throws {
        let cert = try Self.userCertificate(criticalOptions: ["source-address": "127.0.0.1/32", "force-command": "id"])
        let bytes = [UInt8](cert.wireBytes)
        let critical = Self.encodedTuples([("force-command", "id"), ("source-address", "127.0.0.1/32")])
        #expect(Self.contains(bytes, critical))
        // permit-X11-forwarding sorts first: uppercase X is before lowercase letters.
        let extensions = Self.encodedTuples([
            ("permit-X11-forwarding", ""), ("permit-agent-forwarding", ""), ("permit-port-forwarding", ""),
            ("permit-pty", ""), ("permit-user-rc", ""),
        ])
        #expect(Self.contains(bytes, extensions))
    }

    @Test func tamperedCertificateFailsSignatureCheck() throws {
        let cert = try Self.userCertificate(principals: ["root"])
        var bytes = [UInt8](cert.wireBytes)
        let root = Array("root".utf8)
        let index = try #require(Self.firstIndex(of: root, in: bytes))
        bytes[index] = UInt8(ascii: "R")
        let error = try #require(throws: TeleportError.self) { try SSHCertificate(wireBytes: bytes) }
        #expect(error.code == .accessDenied)

        var badSignature = [UInt8](cert.wireBytes)
        badSignature[badSignature.count - 1] ^= 1
        #expect(throws: TeleportError.accessDenied("")) { try SSHCertificate(wireBytes: badSignature) }
    }

    @Test func everyTruncationIsABadParameter() throws {
        let bytes = [UInt8](try Self.userCertificate(criticalOptions: ["force-command": "x"]).wireBytes)
        for length in 0..<bytes.count {
            #expect(throws: TeleportError.badParameter("")) { try SSHCertificate(wireBytes: bytes.prefix(length)) }
        }
        #expect(throws: TeleportError.badParameter("")) { try SSHCertificate(wireBytes: bytes + [0]) }
    }

    @Test func lineWithWrongTypeWordIsRejected() throws {
        let cert = try Self.userCertificate()
        let line = cert.authorizedKeyLine().replacingOccurrences(
            of: "ssh-ed25519-cert-v01@openssh.com", with: "ssh-ed25519")
        #expect(throws: TeleportError.badParameter("")) { try SSHCertificate(authorizedKeyLine: line) }
        // A plain key is not a certificate.
        let key = SSHPublicKey.ed25519(Curve25519.Signing.PrivateKey().publicKey)
        #expect(throws: TeleportError.badParameter("")) {
            try SSHCertificate(authorizedKeyLine: key.authorizedKeyLine())
        }
    }

    @Test(arguments: [
        [("b", ""), ("a", "")],  // unsorted
        [("a", ""), ("a", "")],  // repeated
    ])
    func unsortedOrRepeatedOptionsAreRejected(tuples: [(String, String)]) throws {
        let ca = Curve25519.Signing.PrivateKey()
        let subject = SSHPublicKey.ed25519(Curve25519.Signing.PrivateKey().publicKey)
        var writer = SSHWireWriter()
        writer.writeString("ssh-ed25519-cert-v01@openssh.com")
        writer.writeString([UInt8](repeating: 7, count: 32))
        writer.writeString(Array([UInt8](subject.wireBytes).suffix(32)))
        writer.writeUInt64(1)
        writer.writeUInt32(1)
        writer.writeString("id")
        var principals = SSHWireWriter()
        principals.writeString("root")
        writer.writeString(principals.bytes)
        writer.writeUInt64(0)
        writer.writeUInt64(.max)
        writer.writeString([UInt8]())
        writer.writeString(Self.encodedTuples(tuples))
        writer.writeString([UInt8]())
        writer.writeString(Array(SSHPublicKey.ed25519(ca.publicKey).wireBytes))
        var signature = SSHWireWriter()
        signature.writeString("ssh-ed25519")
        signature.writeString(Array(try ca.signature(for: writer.bytes)))
        writer.writeString(signature.bytes)
        let error = try #require(throws: TeleportError.self) { try SSHCertificate(wireBytes: writer.bytes) }
        #expect(error.code == .badParameter)
        #expect(error.message.contains("not sorted"))
    }

    // MARK: ssh-keygen interop

    @Test(.enabled(if: TestSupport.hasOpenSSHClient), arguments: [SSHCertificate.CertType.user, .host])
    func sshKeygenAcceptsOurCertificate(type: SSHCertificate.CertType) async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "certL")
        defer { try? FileManager.default.removeItem(at: directory) }
        let ca = Curve25519.Signing.PrivateKey()
        let options = type == .user ? ["force-command": "/bin/true", "source-address": "10.1.0.0/16,::1"] : [:]
        let cert = try Self.userCertificate(
            ca: ca, type: type, principals: ["root", "alice", "node.example"], criticalOptions: options
        )
        let file = directory.appendingPathComponent("id-cert.pub")
        try TestSupport.write(cert.authorizedKeyLine(comment: "c") + "\n", to: file)
        let result = try await TestSupport.runChecked(
            TestSupport.sshKeygen, ["-L", "-f", file.path], environment: ["TZ": "UTC"]
        )
        let lines = result.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.contains("Type: ssh-ed25519-cert-v01@openssh.com \(type) certificate"), "\(result)")
        #expect(lines.contains("Public key: ED25519-CERT \(cert.publicKey.fingerprintSHA256)"))
        #expect(
            lines.contains(
                "Signing CA: ED25519 \(SSHPublicKey.ed25519(ca.publicKey).fingerprintSHA256) (using ssh-ed25519)"))
        #expect(lines.contains("Key ID: \"alice\""))
        #expect(lines.contains("Serial: 42"))
        #expect(lines.contains("Valid: from 2027-01-15T08:00:00 to 2027-01-15T09:00:00"), "\(result)")
        let principalsStart = try #require(lines.firstIndex(of: "Principals:"))
        #expect(Array(lines[(principalsStart + 1)...(principalsStart + 3)]) == ["root", "alice", "node.example"])
        if type == .user {
            #expect(lines.contains("force-command /bin/true"), "\(result)")
            #expect(lines.contains("source-address 10.1.0.0/16,::1"), "\(result)")
            #expect(lines.contains("permit-X11-forwarding"))
            #expect(lines.contains("permit-user-rc"))
        } else {
            #expect(lines.contains("Critical Options: (none)"))
            #expect(lines.contains("Extensions: (none)"))
        }
    }

    @Test(.enabled(if: TestSupport.hasOpenSSHClient))
    func sshKeygenPrintsForeverValidity() async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "certF")
        defer { try? FileManager.default.removeItem(at: directory) }
        let cert = try SSHCertificate.sign(
            publicKey: .ecdsaP256(P256.Signing.PrivateKey().publicKey), type: .user, keyID: "forever",
            validPrincipals: ["x"], validAfter: Date(timeIntervalSince1970: 0), validBefore: SSHCertificate.forever,
            caKey: Curve25519.Signing.PrivateKey()
        )
        let file = directory.appendingPathComponent("id-cert.pub")
        try TestSupport.write(cert.authorizedKeyLine() + "\n", to: file)
        let result = try await TestSupport.runChecked(TestSupport.sshKeygen, ["-L", "-f", file.path])
        #expect(result.stdout.contains("Type: ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate"), "\(result)")
        #expect(result.stdout.contains("Valid: forever"), "\(result)")
    }

    @Test(
        .enabled(if: TestSupport.hasOpenSSHClient),
        arguments: [("ed25519", "ed25519"), ("ecdsa", "ecdsa"), ("ed25519", "ecdsa"), ("ecdsa", "ed25519")]
    )
    func certificateFromSSHKeygenParsesAndVerifies(caType: String, subjectType: String) async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "certS")
        defer { try? FileManager.default.removeItem(at: directory) }
        let caFile = directory.appendingPathComponent("ca").path
        let userFile = directory.appendingPathComponent("user").path
        try await TestSupport.runChecked(
            TestSupport.sshKeygen, ["-q", "-t", caType, "-b", "256", "-N", "", "-f", caFile])
        try await TestSupport.runChecked(
            TestSupport.sshKeygen, ["-q", "-t", subjectType, "-b", "256", "-N", "", "-f", userFile]
        )
        try await TestSupport.runChecked(
            TestSupport.sshKeygen, ["-q", "-s", caFile, "-I", "id", "-n", "a,b", userFile + ".pub"])

        let cert = try SSHCertificate(
            authorizedKeyLine: try TestSupport.read(URL(fileURLWithPath: userFile + "-cert.pub")))
        #expect(cert.keyID == "id")
        #expect(cert.validPrincipals == ["a", "b"])
        #expect(cert.type == .user)
        #expect(cert.serial == 0)
        #expect(cert.validAfterSeconds == 0)
        #expect(cert.validBeforeSeconds == .max)
        #expect(cert.validBefore == SSHCertificate.forever)
        #expect(cert.criticalOptions.isEmpty)
        #expect(cert.extensions == SSHCertificate.standardUserExtensions)
        #expect(cert.nonce.count == 32)
        #expect(
            cert.publicKey
                == (try SSHPublicKey(
                    authorizedKeyLine: try TestSupport.read(URL(fileURLWithPath: userFile + ".pub")))))
        #expect(
            cert.signatureKey
                == (try SSHPublicKey(authorizedKeyLine: try TestSupport.read(URL(fileURLWithPath: caFile + ".pub"))))
        )
    }

    @Test(.enabled(if: TestSupport.hasOpenSSHClient))
    func sshKeygenHostCertificateWithOptionsParses() async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "certH")
        defer { try? FileManager.default.removeItem(at: directory) }
        let caFile = directory.appendingPathComponent("ca").path
        let userFile = directory.appendingPathComponent("user").path
        try await TestSupport.runChecked(TestSupport.sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-f", caFile])
        try await TestSupport.runChecked(
            TestSupport.sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-f", userFile])
        try await TestSupport.runChecked(
            TestSupport.sshKeygen,
            [
                "-q", "-s", caFile, "-I", "opts", "-n", "root", "-z", "99", "-V", "20270101000000:20270102000000",
                "-O", "clear", "-O", "force-command=uptime", "-O", "source-address=192.168.0.0/24", "-O", "permit-pty",
                userFile + ".pub",
            ],
            environment: ["TZ": "UTC"]
        )
        let cert = try SSHCertificate(
            authorizedKeyLine: try TestSupport.read(URL(fileURLWithPath: userFile + "-cert.pub")))
        #expect(cert.serial == 99)
        #expect(cert.criticalOptions == ["force-command": "uptime", "source-address": "192.168.0.0/24"])
        #expect(cert.extensions == ["permit-pty": ""])
        #expect(cert.validAfter == Date(timeIntervalSince1970: 1_798_761_600))
        #expect(cert.validBefore == Date(timeIntervalSince1970: 1_798_848_000))
    }

    // MARK: helpers

    static func encodedTuples(_ tuples: [(String, String)]) -> [UInt8] {
        var writer = SSHWireWriter()
        for (name, value) in tuples {
            writer.writeString(name)
            if value.isEmpty {
                writer.writeString([UInt8]())
            } else {
                var inner = SSHWireWriter()
                inner.writeString(value)
                writer.writeString(inner.bytes)
            }
        }
        return writer.bytes
    }

    static func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        return (0...(haystack.count - needle.count)).first { Array(haystack[$0..<($0 + needle.count)]) == needle }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        firstIndex(of: needle, in: haystack) != nil
    }
}
