import Crypto
import Foundation
import TeleportAPI
import TeleportCrypto
import TeleportTestSupport
import Testing

@Suite("SSH public keys")
struct SSHPublicKeyTests {
    static let keys: [SSHPublicKey] = [
        .ed25519(Curve25519.Signing.PrivateKey().publicKey),
        .ecdsaP256(P256.Signing.PrivateKey().publicKey),
    ]

    @Test(arguments: keys)
    func wireAndLineRoundTrip(key: SSHPublicKey) throws {
        #expect(try SSHPublicKey(wireBytes: key.wireBytes) == key)
        let line = key.authorizedKeyLine(comment: "alice@example com")
        #expect(line.hasPrefix(key.algorithmName + " AAAA"))
        #expect(line.hasSuffix(" alice@example com"))
        #expect(try SSHPublicKey(authorizedKeyLine: line) == key)
        #expect(try SSHPublicKey(authorizedKeyLine: key.authorizedKeyLine() + "\n") == key)
    }

    @Test func ed25519BlobLayout() throws {
        let key = Curve25519.Signing.PrivateKey().publicKey
        let blob = [UInt8](SSHPublicKey.ed25519(key).wireBytes)
        #expect(blob.count == 4 + 11 + 4 + 32)
        #expect(Array(blob[4..<15]) == Array("ssh-ed25519".utf8))
        #expect(Array(blob.suffix(32)) == Array(key.rawRepresentation))
    }

    @Test(arguments: [
        "ssh-ed25519",
        "ssh-ed25519 !!!notbase64",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ",
        "ecdsa-sha2-nistp256 AAAAC3NzaC1lZDI1NTE5AAAAIB5Z2lHa2T0G7xOyl6LwtHm6ZTQj/8kJm/tDUrqUwGUw",
    ])
    func malformedLinesAreRejected(line: String) {
        #expect(throws: TeleportError.badParameter("")) { try SSHPublicKey(authorizedKeyLine: line) }
    }

    @Test func unsupportedAndTruncatedBlobsAreRejected() throws {
        var rsa = SSHWireWriter()
        rsa.writeString("ssh-rsa")
        rsa.writeString([1, 0, 1])
        #expect(throws: TeleportError.badParameter("")) { try SSHPublicKey(wireBytes: rsa.bytes) }

        let blob = [UInt8](Self.keys[1].wireBytes)
        for length in 0..<blob.count {
            #expect(throws: TeleportError.badParameter("")) { try SSHPublicKey(wireBytes: blob.prefix(length)) }
        }
        #expect(throws: TeleportError.badParameter("")) { try SSHPublicKey(wireBytes: blob + [0]) }
    }

    @Test(.enabled(if: TestSupport.hasOpenSSHClient), arguments: keys)
    func fingerprintMatchesSSHKeygen(key: SSHPublicKey) async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "fp")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("key.pub")
        try TestSupport.write(key.authorizedKeyLine(comment: "fp-test") + "\n", to: file)
        let result = try await TestSupport.runChecked(TestSupport.sshKeygen, ["-l", "-f", file.path])
        // "256 SHA256:... fp-test (ED25519)"
        let fields = result.stdout.split(separator: " ")
        try #require(fields.count >= 2, "\(result)")
        #expect(String(fields[1]) == key.fingerprintSHA256)
        #expect(!key.fingerprintSHA256.hasSuffix("="))
    }

    @Test(.enabled(if: TestSupport.hasOpenSSHClient), arguments: ["ed25519", "ecdsa"])
    func keyFromSSHKeygenParsesWithSameFingerprint(type: String) async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "fp2")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("id")
        try await TestSupport.runChecked(
            TestSupport.sshKeygen, ["-q", "-t", type, "-b", "256", "-N", "", "-C", "c", "-f", file.path]
        )
        let line = try TestSupport.read(directory.appendingPathComponent("id.pub"))
        let key = try SSHPublicKey(authorizedKeyLine: line)
        let result = try await TestSupport.runChecked(TestSupport.sshKeygen, ["-l", "-f", file.path + ".pub"])
        #expect(result.stdout.split(separator: " ").dropFirst().first.map(String.init) == key.fingerprintSHA256)
        #expect(key.authorizedKeyLine(comment: "c") == line.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func ed25519SignatureVerification() throws {
        let privateKey = Curve25519.Signing.PrivateKey()
        let key = SSHPublicKey.ed25519(privateKey.publicKey)
        let data = Data("signed data".utf8)
        var blob = SSHWireWriter()
        blob.writeString("ssh-ed25519")
        blob.writeString(Array(try privateKey.signature(for: data)))
        #expect(key.isValidSignature(blob.bytes, for: data))
        #expect(!key.isValidSignature(blob.bytes, for: Data("other data".utf8)))
        #expect(throws: TeleportError.accessDenied("")) { try key.verifySignature(blob.bytes, for: Data("x".utf8)) }

        var wrongName = SSHWireWriter()
        wrongName.writeString("ecdsa-sha2-nistp256")
        wrongName.writeString(Array(try privateKey.signature(for: data)))
        #expect(!key.isValidSignature(wrongName.bytes, for: data))
        #expect(throws: TeleportError.badParameter("")) { try key.verifySignature(wrongName.bytes, for: data) }
        #expect(!key.isValidSignature(blob.bytes.dropLast(), for: data))
        #expect(
            !SSHPublicKey.ed25519(Curve25519.Signing.PrivateKey().publicKey).isValidSignature(blob.bytes, for: data))
    }

    @Test func ecdsaSignatureVerification() throws {
        let privateKey = P256.Signing.PrivateKey()
        let key = SSHPublicKey.ecdsaP256(privateKey.publicKey)
        let data = Data("signed data".utf8)
        for _ in 0..<16 {  // r and s sometimes need a leading zero byte, sometimes are shorter
            let raw = Array(try privateKey.signature(for: data).rawRepresentation)
            var inner = SSHWireWriter()
            inner.writeUnsignedMPInt(raw.prefix(32))
            inner.writeUnsignedMPInt(raw.suffix(32))
            var blob = SSHWireWriter()
            blob.writeString("ecdsa-sha2-nistp256")
            blob.writeString(inner.bytes)
            #expect(key.isValidSignature(blob.bytes, for: data))
            #expect(!key.isValidSignature(blob.bytes, for: Data("tampered".utf8)))
        }
    }
}
