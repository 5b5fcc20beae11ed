import Crypto
import Foundation
import TeleportAPI
import TeleportCrypto
import TeleportTestSupport
import Testing

@Suite("OpenSSH private key files")
struct SSHOpenSSHPrivateKeyTests {
    static let keys: [OpenSSHPrivateKey] = [
        OpenSSHPrivateKey(.ed25519(Curve25519.Signing.PrivateKey()), comment: "alice@example"),
        OpenSSHPrivateKey(.ecdsaP256(P256.Signing.PrivateKey()), comment: ""),
        // A 136-byte private section: a multiple of 8, so no padding at all.
        OpenSSHPrivateKey(.ed25519(Curve25519.Signing.PrivateKey()), comment: "12345"),
    ]

    @Test(arguments: keys)
    func roundTrip(key: OpenSSHPrivateKey) throws {
        let pem = key.pemRepresentation()
        #expect(pem.hasPrefix("-----BEGIN OPENSSH PRIVATE KEY-----\n"))
        #expect(pem.hasSuffix("-----END OPENSSH PRIVATE KEY-----\n"))
        #expect(pem.split(separator: "\n").allSatisfy { $0.count <= 70 || $0.hasPrefix("-----") })
        let decoded = try OpenSSHPrivateKey(pemRepresentation: pem)
        #expect(decoded.publicKey == key.publicKey)
        #expect(decoded.comment == key.comment)
        #expect(decoded.pemRepresentation(checkInt: 7) == key.pemRepresentation(checkInt: 7))
    }

    @Test(.enabled(if: TestSupport.hasOpenSSHClient), arguments: keys)
    func sshKeygenReadsOurKey(key: OpenSSHPrivateKey) async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "priv")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("id")
        try TestSupport.write(key.pemRepresentation(), to: file)
        let result = try await TestSupport.runChecked(TestSupport.sshKeygen, ["-y", "-f", file.path])
        let printed = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(printed == key.publicKey.authorizedKeyLine(comment: key.comment))
    }

    @Test(.enabled(if: TestSupport.hasOpenSSHClient), arguments: ["ed25519", "ecdsa"])
    func keyFromSSHKeygenDecodesAndReencodesIdentically(type: String) async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "keygen")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("id")
        try await TestSupport.runChecked(
            TestSupport.sshKeygen, ["-q", "-t", type, "-b", "256", "-N", "", "-C", "bob@host", "-f", file.path]
        )
        let pem = try TestSupport.read(file)
        let key = try OpenSSHPrivateKey(pemRepresentation: pem)
        let publicLine = try TestSupport.read(directory.appendingPathComponent("id.pub"))
        #expect(key.publicKey == (try SSHPublicKey(authorizedKeyLine: publicLine)))
        #expect(key.comment == "bob@host")

        // Our encoder writes the very same file when given the same check value.
        #expect(key.pemRepresentation(checkInt: try Self.checkInt(ofPEM: pem)) == pem)
    }

    @Test(.enabled(if: TestSupport.hasOpenSSHClient))
    func encryptedKeyIsRejectedClearly() async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "enc")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("id")
        try await TestSupport.runChecked(
            TestSupport.sshKeygen, ["-q", "-t", "ed25519", "-N", "secret passphrase", "-a", "2", "-f", file.path]
        )
        let error = try #require(throws: TeleportError.self) {
            try OpenSSHPrivateKey(pemRepresentation: try TestSupport.read(file))
        }
        #expect(error.code == .badParameter)
        #expect(error.message.contains("encrypted"))
    }

    @Test func signingWithDecodedKeyMatchesPublicKey() throws {
        let original = OpenSSHPrivateKey(.ed25519(Curve25519.Signing.PrivateKey()))
        let decoded = try OpenSSHPrivateKey(pemRepresentation: original.pemRepresentation())
        guard case .ed25519(let privateKey) = decoded.key, case .ed25519(let publicKey) = original.publicKey else {
            Issue.record("expected Ed25519")
            return
        }
        let signature = try privateKey.signature(for: Data("x".utf8))
        #expect(publicKey.isValidSignature(signature, for: Data("x".utf8)))
    }

    @Test func corruptFilesAreRejected() throws {
        let key = OpenSSHPrivateKey(.ed25519(Curve25519.Signing.PrivateKey()), comment: "c")
        let binary = [UInt8](key.binaryRepresentation(checkInt: 0x0102_0304))
        for length in 0..<binary.count {
            #expect(throws: TeleportError.badParameter("")) {
                try OpenSSHPrivateKey(binaryRepresentation: binary.prefix(length))
            }
        }
        // Offsets of the two check values: magic 15, "none" 8, "none" 8, "" 4, count 4, public
        // key string 4 + 51, private section length 4.
        let checkOffset = 15 + 8 + 8 + 4 + 4 + 4 + 51 + 4
        #expect(Array(binary[checkOffset..<(checkOffset + 8)]) == [1, 2, 3, 4, 1, 2, 3, 4])
        var mismatched = binary
        mismatched[checkOffset + 7] = 5
        #expect(throws: TeleportError.badParameter("")) { try OpenSSHPrivateKey(binaryRepresentation: mismatched) }
        var badPadding = binary
        badPadding[badPadding.count - 1] ^= 0xff
        #expect(throws: TeleportError.badParameter("")) { try OpenSSHPrivateKey(binaryRepresentation: badPadding) }
        #expect(throws: TeleportError.badParameter("")) { try OpenSSHPrivateKey(pemRepresentation: "not a key") }
        #expect(throws: TeleportError.badParameter("")) {
            try OpenSSHPrivateKey(
                pemRepresentation: "-----BEGIN OPENSSH PRIVATE KEY-----\n%%%\n-----END OPENSSH PRIVATE KEY-----\n")
        }
    }

    @Test func privateKeyNotMatchingPublicKeyIsRejected() throws {
        let first = OpenSSHPrivateKey(.ed25519(Curve25519.Signing.PrivateKey()))
        let second = OpenSSHPrivateKey(.ed25519(Curve25519.Signing.PrivateKey()))
        var binary = [UInt8](first.binaryRepresentation(checkInt: 1))
        let otherBlob = [UInt8](second.publicKey.wireBytes)
        // Replace the public key in the header (it starts after magic, ciphers, KDF and count).
        let start = 15 + 8 + 8 + 4 + 4 + 4
        binary.replaceSubrange(start..<(start + otherBlob.count), with: otherBlob)
        #expect(throws: TeleportError.badParameter("")) { try OpenSSHPrivateKey(binaryRepresentation: binary) }
    }

    /// Reads the check value out of a PEM file made by ssh-keygen.
    static func checkInt(ofPEM pem: String) throws -> UInt32 {
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        var reader = SSHWireReader(try #require(Data(base64Encoded: body)))
        _ = try reader.readRaw(count: 15)
        _ = try reader.readString()
        _ = try reader.readString()
        _ = try reader.readString()
        _ = try reader.readUInt32()
        _ = try reader.readString()
        var section = SSHWireReader(try reader.readString())
        return try section.readUInt32()
    }
}
