import Crypto
import Foundation
import TeleportAPI
import TeleportCrypto
import Testing

@Suite("JWT: ES256 signing and the JWKS")
struct JWTSignerTests {
    @Test func signsAndVerifies() throws {
        let key = P256.Signing.PrivateKey()
        let token = try JWTSigner(privateKeyPEM: key.pemRepresentation).sign(claims: ["username": "alice", "exp": 2_000_000_000])
        let parts = token.split(separator: ".")
        #expect(parts.count == 3)
        let header = try JSONDecoder().decode([String: String].self, from: try #require(JWTSigner.fromBase64URL(parts[0])))
        #expect(header["alg"] == "ES256" && header["kid"] == JWTSigner.keyID(key.publicKey))
        let claims = try JWTSigner.verify(token, publicKey: key.publicKey)
        #expect(claims["username"] == "alice")
        // Another key, a changed payload or signature: refused.
        #expect(throws: TeleportError.self) { try JWTSigner.verify(token, publicKey: P256.Signing.PrivateKey().publicKey) }
        let forgedPayload = JWTSigner.base64URL(Data(#"{"username":"root"}"#.utf8))
        #expect(throws: TeleportError.self) { try JWTSigner.verify("\(parts[0]).\(forgedPayload).\(parts[2])", publicKey: key.publicKey) }
        #expect(throws: TeleportError.self) { try JWTSigner.verify("\(parts[0]).\(parts[1])", publicKey: key.publicKey) }
    }

    @Test func jwksCarriesTheCoordinates() throws {
        let key = P256.Signing.PrivateKey()
        let jwks = JWTSigner.jwks(publicKeyPEMs: [key.publicKey.pemRepresentation, "garbage"])
        guard case .array(let keys) = jwks["keys"], keys.count == 1, case .object(let jwk) = keys[0],
            case .string(let x) = jwk["x"], case .string(let y) = jwk["y"]
        else {
            Issue.record("unexpected JWKS \(jwks)")
            return
        }
        let raw = try #require(JWTSigner.fromBase64URL(x)) + (try #require(JWTSigner.fromBase64URL(y)))
        #expect(try P256.Signing.PublicKey(rawRepresentation: raw).rawRepresentation == key.publicKey.rawRepresentation)
        #expect(jwk["crv"] == "P-256" && jwk["alg"] == "ES256" && jwk["kty"] == "EC")
    }
}
