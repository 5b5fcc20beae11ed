import Crypto
import Foundation

/// Proof Key for Code Exchange (RFC 7636), S256 only.
enum PKCE {
    /// A fresh verifier: 32 random bytes, base64url (43 characters).
    static func makeVerifier() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// The S256 challenge of `verifier`: base64url(SHA-256(verifier)).
    static func challenge(for verifier: String) -> String {
        Base64URL.encode(Data(SHA256.hash(data: Data(verifier.utf8))))
    }
}
