import Crypto
import Foundation
import TeleportAPI
import TeleportCrypto
import Testing

/// Proof of possession for certificate requests: a proof verifies only for the keys that made it,
/// the user and purpose it names, and a time within five minutes.
@Suite("login proof")
struct LoginProofTests {
    let ssh = Curve25519.Signing.PrivateKey()
    let tls = P256.Signing.PrivateKey()
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    var sshPublic: SSHPublicKey { .ed25519(ssh.publicKey) }

    func proof(user: String = "alice", purpose: LoginProof.Purpose = .login, at time: Date? = nil) throws -> AuthAPI.KeyProof {
        try LoginProof.sign(purpose: purpose, user: user, sshKey: ssh, tlsKey: tls, now: time ?? now)
    }

    func verify(
        _ proof: AuthAPI.KeyProof?, user: String = "alice", purpose: LoginProof.Purpose = .login, ssh: SSHPublicKey? = nil,
        tls: P256.Signing.PublicKey? = nil, at time: Date? = nil
    ) throws {
        try LoginProof.verify(
            proof, purpose: purpose, user: user, sshPublicKey: ssh ?? sshPublic, tlsPublicKey: tls ?? self.tls.publicKey, now: time ?? now)
    }

    @Test("a proof made with both keys verifies, also 5 minutes either side")
    func valid() throws {
        try verify(try proof())
        try verify(try proof(at: now.addingTimeInterval(-300)))
        try verify(try proof(at: now.addingTimeInterval(300)))
    }

    @Test("someone else's public key: a proof made with other keys is refused, naming the key")
    func substitutedKeys() throws {
        let other = Curve25519.Signing.PrivateKey()
        let otherTLS = P256.Signing.PrivateKey()
        // Bob's proof (his own keys) presented with Alice's public keys.
        let bobs = try LoginProof.sign(purpose: .login, user: "bob", sshKey: other, tlsKey: otherTLS, now: now)
        let error = try #require(throws: TeleportError.self) { try verify(bobs, user: "bob") }
        #expect(error.code == .accessDenied)
        #expect(error.message.contains("ssh_public_key"), "\(error.message)")
        // The message names both public keys: presenting another TLS key breaks the proof.
        #expect(throws: TeleportError.self) { try verify(try proof(), tls: otherTLS.publicKey) }
        // A right SSH signature with a TLS signature made by another key is refused, naming it.
        var mixed = try proof()
        let message = LoginProof.message(
            purpose: .login, user: "alice", sshPublicKey: sshPublic, tlsPublicKey: tls.publicKey, timestamp: mixed.timestamp)
        mixed.tlsSignature = try otherTLS.signature(for: message).derRepresentation.base64EncodedString()
        let tlsError = try #require(throws: TeleportError.self) { try verify(mixed) }
        #expect(tlsError.message.contains("tls_public_key"), "\(tlsError.message)")
    }

    @Test("a proof is bound to its user, its purpose and its time")
    func bound() throws {
        let alices = try proof(user: "alice")
        #expect(throws: TeleportError.self) { try verify(alices, user: "bob") }
        #expect(throws: TeleportError.self) { try verify(alices, purpose: .signUser) }
        let stale = try #require(throws: TeleportError.self) { try verify(alices, at: now.addingTimeInterval(301)) }
        #expect(stale.message.contains("clock"), "\(stale.message)")
        #expect(throws: TeleportError.self) { try verify(alices, at: now.addingTimeInterval(-301)) }
    }

    @Test("a missing or malformed proof is refused with a message naming the fix")
    func missingOrMalformed() throws {
        let missing = try #require(throws: TeleportError.self) { try verify(nil) }
        #expect(missing.code == .badParameter)
        #expect(missing.message.contains("key_proof"), "\(missing.message)")
        var garbled = try proof()
        garbled.sshSignature = "not base64!"
        #expect(throws: TeleportError.self) { try verify(garbled) }
        garbled = try proof()
        garbled.tlsSignature = Data([1, 2, 3]).base64EncodedString()
        #expect(throws: TeleportError.self) { try verify(garbled) }
    }
}
