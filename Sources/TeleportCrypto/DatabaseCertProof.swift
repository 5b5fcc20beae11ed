public import Crypto
public import Foundation
public import TeleportAPI

/// Proof of possession for `POST /v1/certs/db`: the requester signs one canonical message with the
/// P-256 key it asks the database CA to certify. The message binds the purpose, the usage (server
/// or client), the names (hosts or the database user), the public key and a timestamp, so a public
/// key alone (not a secret) cannot be certified, and a proof for one name is useless for another.
public enum DatabaseCertProof {
    /// The first line of the message.
    public static let purpose = "teleport sign db v1"

    /// The canonical message: one `name=value` line per field, in this order.
    public static func message(
        usage: AuthAPI.SignDatabaseRequest.Usage, hosts: [String], user: String?, publicKey: P256.Signing.PublicKey, timestamp: Int64
    ) -> Data {
        let text = [
            purpose,
            "usage=\(usage.rawValue)",
            "hosts=\(hosts.joined(separator: ","))",
            "user=\(user ?? "")",
            "public_key=\(publicKey.derRepresentation.base64EncodedString())",
            "timestamp=\(timestamp)",
        ].joined(separator: "\n") + "\n"
        return Data(text.utf8)
    }

    /// Signs a request's fields with `key` at `now`.
    public static func sign(
        usage: AuthAPI.SignDatabaseRequest.Usage, hosts: [String], user: String?, key: P256.Signing.PrivateKey, now: Date
    ) throws -> AuthAPI.DatabaseKeyProof {
        let timestamp = Int64(now.timeIntervalSince1970.rounded(.down))
        let signature = try key.signature(
            for: message(usage: usage, hosts: hosts, user: user, publicKey: key.publicKey, timestamp: timestamp))
        return AuthAPI.DatabaseKeyProof(timestamp: timestamp, signature: signature.derRepresentation.base64EncodedString())
    }

    /// Verifies a request's proof at `now`.
    ///
    /// - Throws: ``TeleportError`` `badParameter` without a proof, `accessDenied` for a timestamp
    ///   more than ``LoginProof/maxClockSkew`` away or a signature that does not verify.
    public static func verify(_ request: AuthAPI.SignDatabaseRequest, publicKey: P256.Signing.PublicKey, now: Date) throws {
        guard let proof = request.keyProof else {
            throw TeleportError.badParameter(
                "the request has no key_proof (a signature with the key to certify): use a tctl of this cluster's version")
        }
        let skew = abs(now.timeIntervalSince1970 - TimeInterval(proof.timestamp))
        guard skew <= LoginProof.maxClockSkew else {
            throw TeleportError.accessDenied(
                "the request's proof of key possession is dated \(Int(skew))s away from the auth server's clock (at most 5 minutes): check the client's clock")
        }
        let signed = message(
            usage: request.usage, hosts: request.hosts, user: request.user, publicKey: publicKey, timestamp: proof.timestamp)
        guard let der = Data(base64Encoded: proof.signature), let signature = try? P256.Signing.ECDSASignature(derRepresentation: der),
            publicKey.isValidSignature(signature, for: signed)
        else {
            throw TeleportError.accessDenied(
                "the request is not signed with the private key of its public_key: a client may only ask to certify a key it holds")
        }
    }
}
