import Crypto
import Foundation
import TeleportAPI
import _CryptoExtras

/// A provider's signing keys (`jwks_uri`, RFC 7517): RSA (RS256) and P-256 (ES256) keys; other
/// key types and encryption keys are skipped.
struct JSONWebKeySet: Sendable {
    /// One verification key.
    enum Key: Sendable {
        /// An RSA key of 2048 bits or more.
        case rsa(_RSA.Signing.PublicKey)
        /// A P-256 key.
        case p256(P256.Signing.PublicKey)

        /// The JWS algorithm this key verifies.
        var algorithm: String {
            switch self {
            case .rsa: "RS256"
            case .p256: "ES256"
            }
        }
    }

    /// Keys with their `kid` (nil when the document gave none).
    var keys: [(kid: String?, key: Key)]

    /// Parses a JWKS document.
    ///
    /// - Throws: `badParameter` when it is not a JWKS (a key that cannot be used is skipped).
    init(json data: Data) throws {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let list = object["keys"] as? [[String: Any]] else {
            throw TeleportError.badParameter("the provider's JWKS is not a JSON object with a \"keys\" list")
        }
        var keys: [(kid: String?, key: Key)] = []
        for entry in list {
            if let use = entry["use"] as? String, use != "sig" { continue }
            let kid = entry["kid"] as? String
            switch entry["kty"] as? String {
            case "RSA":
                if let alg = entry["alg"] as? String, alg != "RS256" { continue }
                guard let n = (entry["n"] as? String).flatMap(Base64URL.decode), let e = (entry["e"] as? String).flatMap(Base64URL.decode),
                    let key = try? _RSA.Signing.PublicKey(n: n, e: e)
                else { continue }
                keys.append((kid, .rsa(key)))
            case "EC":
                guard entry["crv"] as? String == "P-256", let x = (entry["x"] as? String).flatMap(Base64URL.decode),
                    let y = (entry["y"] as? String).flatMap(Base64URL.decode), x.count == 32, y.count == 32,
                    let key = try? P256.Signing.PublicKey(rawRepresentation: x + y)
                else { continue }
                keys.append((kid, .p256(key)))
            default:
                continue
            }
        }
        self.keys = keys
    }

    /// The keys that may have signed a token with `kid` and `algorithm`: the key with that id, or,
    /// when the token names none, every key of the algorithm's type.
    func candidates(kid: String?, algorithm: String) -> [Key] {
        keys.filter { entry in
            entry.key.algorithm == algorithm && (kid == nil || entry.kid == kid)
        }.map(\.key)
    }
}
