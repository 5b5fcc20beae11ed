public import Crypto
public import Foundation
public import TeleportAPI

/// Proof of possession for a certificate request: the client signs one canonical message with the
/// SSH private key (Ed25519) and with the TLS private key (P-256) it asks the auth service to
/// certify. The message binds the purpose, the user name, both public keys and a timestamp, so a
/// caller who knows only someone else's public key (public keys are not secret) cannot have it
/// certified under their own name, and a proof made for one user cannot be replayed for another.
///
/// The auth service verifies the proof before it checks the password or issues anything (see
/// docs/threat_model.md, "Key substitution at login").
public enum LoginProof {
    /// What a proof is for; part of the signed message, so a proof for one purpose is useless for
    /// the other.
    public enum Purpose: String, Sendable {
        /// `tsh login` (`POST /webapi/ssh/certs`, `POST /v1/login`).
        case login = "teleport login v1"
        /// `tctl auth sign --user` (`POST /v1/certs/user`).
        case signUser = "teleport sign user v1"
        /// The proxy's web terminal: a key the proxy made for a web session's user
        /// (`POST /v1/websessions/certs`).
        case webSession = "teleport web session v1"
        /// `tsh login --auth=NAME` (single sign-on): the user is not known yet, so the proof names
        /// the connector (`POST /webapi/{oidc,github}/login/console`, `POST /v1/sso/requests`).
        case ssoLogin = "teleport sso login v1"
    }

    /// How far the proof's timestamp may be from the server's clock, in seconds.
    public static let maxClockSkew: TimeInterval = 5 * 60

    /// The canonical message: one `name=value` line per field, in this order. Public keys are
    /// written without comments (the SSH key as `algorithm base64`, the TLS key as base64 DER
    /// SubjectPublicKeyInfo), so that formatting differences do not change it.
    public static func message(
        purpose: Purpose, user: String, sshPublicKey: SSHPublicKey, tlsPublicKey: P256.Signing.PublicKey, timestamp: Int64
    ) -> Data {
        let text = [
            purpose.rawValue,
            "user=\(user)",
            "ssh_public_key=\(sshPublicKey.authorizedKeyLine())",
            "tls_public_key=\(tlsPublicKey.derRepresentation.base64EncodedString())",
            "timestamp=\(timestamp)",
        ].joined(separator: "\n") + "\n"
        return Data(text.utf8)
    }

    /// Signs for `user` with both private keys at `now`.
    public static func sign(
        purpose: Purpose, user: String, sshKey: Curve25519.Signing.PrivateKey, tlsKey: P256.Signing.PrivateKey, now: Date
    ) throws -> AuthAPI.KeyProof {
        let timestamp = Int64(now.timeIntervalSince1970.rounded(.down))
        let message = message(
            purpose: purpose, user: user, sshPublicKey: .ed25519(sshKey.publicKey), tlsPublicKey: tlsKey.publicKey, timestamp: timestamp)
        let sshBlob = SSHPublicKey.signatureBlob(ed25519: try sshKey.signature(for: message))
        let tlsSignature = try tlsKey.signature(for: message).derRepresentation
        return AuthAPI.KeyProof(
            timestamp: timestamp, sshSignature: Data(sshBlob).base64EncodedString(), tlsSignature: tlsSignature.base64EncodedString())
    }

    /// Verifies `proof` for `user` and these public keys at `now`.
    ///
    /// - Throws: ``TeleportError`` naming the cause: `badParameter` when there is no proof (an
    ///   older client), `accessDenied` for a timestamp more than ``maxClockSkew`` from `now` or a
    ///   signature that is malformed or does not verify with the key it claims to prove.
    public static func verify(
        _ proof: AuthAPI.KeyProof?, purpose: Purpose, user: String, sshPublicKey: SSHPublicKey, tlsPublicKey: P256.Signing.PublicKey,
        now: Date
    ) throws {
        guard let proof else {
            throw TeleportError.badParameter(
                "the request has no key_proof (a signature with the keys to certify): use a tsh or tctl of this cluster's version")
        }
        let timestamp = proof.timestamp
        let skew = abs(now.timeIntervalSince1970 - TimeInterval(timestamp))
        guard skew <= Self.maxClockSkew else {
            throw TeleportError.accessDenied(
                "the request's proof of key possession is dated \(Int(skew))s away from the auth server's clock (at most 5 minutes): check the client's clock")
        }
        let message = Self.message(
            purpose: purpose, user: user, sshPublicKey: sshPublicKey, tlsPublicKey: tlsPublicKey, timestamp: timestamp)
        guard let sshBlob = Data(base64Encoded: proof.sshSignature), sshPublicKey.isValidSignature(sshBlob, for: message) else {
            throw TeleportError.accessDenied(
                "the request is not signed with the private key of its ssh_public_key: a client may only ask to certify a key it holds")
        }
        guard let der = Data(base64Encoded: proof.tlsSignature), let signature = try? P256.Signing.ECDSASignature(derRepresentation: der),
            tlsPublicKey.isValidSignature(signature, for: message)
        else {
            throw TeleportError.accessDenied(
                "the request is not signed with the private key of its tls_public_key: a client may only ask to certify a key it holds")
        }
    }
}
