public import Crypto
public import Foundation
public import TeleportAPI

/// JSON Web Tokens signed with ES256 (ECDSA P-256 and SHA-256, RFC 7518 §3.4: the signature is
/// the raw 64-byte `r‖s`), and the JSON Web Key Set that verifies them (RFC 7517). Used by the
/// `jwt` CA for the `teleport-jwt-assertion` header of application access.
public struct JWTSigner: Sendable {
    /// The signing key.
    public let privateKey: P256.Signing.PrivateKey

    /// A signer for a PEM (PKCS#8 or SEC1) P-256 private key.
    ///
    /// - Throws: ``TeleportError`` `badParameter` when the PEM is not such a key.
    public init(privateKeyPEM: String) throws {
        do {
            privateKey = try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        } catch {
            throw TeleportError.badParameter("the jwt CA's private key is not an ECDSA P-256 key in PEM form")
        }
    }

    /// A signer for `key`.
    public init(privateKey: P256.Signing.PrivateKey) { self.privateKey = privateKey }

    /// The key id of `publicKey`: base64url of the first 16 bytes of SHA-256 of its X9.63 form.
    public static func keyID(_ publicKey: P256.Signing.PublicKey) -> String {
        base64URL(Data(SHA256.hash(data: publicKey.x963Representation).prefix(16)))
    }

    /// Signs `claims` (a JSON object) as a compact JWS: `header.payload.signature`.
    public func sign(claims: [String: JSONValue]) throws -> String {
        let header: [String: JSONValue] = ["alg": "ES256", "typ": "JWT", "kid": .string(Self.keyID(privateKey.publicKey))]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let signingInput = Self.base64URL(try encoder.encode(header)) + "." + Self.base64URL(try encoder.encode(claims))
        let signature = try privateKey.signature(for: Data(signingInput.utf8))
        return signingInput + "." + Self.base64URL(signature.rawRepresentation)
    }

    /// One JSON Web Key for `publicKey` (`kty` EC, `crv` P-256, `x`, `y`, `alg` ES256, `use` sig, `kid`).
    public static func jwk(_ publicKey: P256.Signing.PublicKey) -> [String: JSONValue] {
        let x963 = publicKey.x963Representation  // 0x04 ‖ X (32) ‖ Y (32)
        return [
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": .string(keyID(publicKey)),
            "x": .string(base64URL(x963.dropFirst().prefix(32))), "y": .string(base64URL(x963.suffix(32))),
        ]
    }

    /// The JWKS document (`{"keys": [...]}`) for the public keys in PEM form; unreadable keys are skipped.
    public static func jwks(publicKeyPEMs: [String]) -> [String: JSONValue] {
        let keys = publicKeyPEMs.compactMap { try? P256.Signing.PublicKey(pemRepresentation: $0) }.map { JSONValue.object(jwk($0)) }
        return ["keys": .array(keys)]
    }

    /// Verifies a compact ES256 JWS against `publicKey` and returns its claims (used by tests and
    /// by the service's own checks; relying parties use their own JWT library).
    ///
    /// - Throws: ``TeleportError`` `accessDenied` when the token is malformed or the signature fails.
    public static func verify(_ token: String, publicKey: P256.Signing.PublicKey) throws -> [String: JSONValue] {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = fromBase64URL(parts[1]), let signature = fromBase64URL(parts[2]),
            let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
            publicKey.isValidSignature(ecdsa, for: Data("\(parts[0]).\(parts[1])".utf8)),
            let claims = try? JSONDecoder().decode([String: JSONValue].self, from: payload)
        else {
            throw TeleportError.accessDenied("the JWT does not verify")
        }
        return claims
    }

    /// Base64url without padding (RFC 7515 §2).
    public static func base64URL<D: DataProtocol>(_ data: D) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes base64url without padding; nil when malformed.
    public static func fromBase64URL<S: StringProtocol>(_ text: S) -> Data? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard)
    }
}
