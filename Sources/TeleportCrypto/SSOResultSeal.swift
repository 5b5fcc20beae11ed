public import Crypto
public import Foundation
public import TeleportAPI

/// Seals a single sign-on login's result for `tsh`: AES-256-GCM with the 32-byte key `tsh` put in
/// its callback address (`secret=`, base64url), the login request's state as authenticated data.
/// The sealed text (base64url of nonce ‖ ciphertext ‖ tag) travels in the browser's redirect to
/// `tsh`'s loopback listener; without the key it reveals and allows nothing.
public enum SSOResultSeal {
    /// The query parameter of `tsh`'s callback that carries the key (removed before the redirect).
    public static let secretParameter = "secret"
    /// The query parameter of the redirect that carries the sealed result.
    public static let responseParameter = "response"
    /// The query parameter that carries the state (the authenticated data), beside the result.
    public static let stateParameter = "state"

    /// A fresh key, as `tsh` puts it in its callback address.
    public static func makeSecret() -> String {
        base64url(SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) })
    }

    /// The key in `secret`.
    ///
    /// - Throws: `badParameter` when it is not 32 bytes of base64url.
    public static func key(from secret: String) throws -> SymmetricKey {
        guard let bytes = decode(secret), bytes.count == 32 else {
            throw TeleportError.badParameter("the callback's secret must be 32 bytes of base64url (tsh makes it)")
        }
        return SymmetricKey(data: bytes)
    }

    /// Seals `plaintext` for the holder of `secret`, bound to `state`.
    public static func seal(_ plaintext: Data, secret: String, state: String) throws -> String {
        let box = try AES.GCM.seal(plaintext, using: try key(from: secret), authenticating: Data(state.utf8))
        guard let combined = box.combined else { throw TeleportError.internalError("AES-GCM gave no combined form") }
        return base64url(combined)
    }

    /// Opens a sealed result.
    ///
    /// - Throws: `accessDenied` when it was not sealed with this key and state (forged, altered, or
    ///   meant for another login).
    public static func open(_ sealed: String, secret: String, state: String) throws -> Data {
        let refusal = TeleportError.accessDenied("the login result in the callback is not for this login (it does not decrypt with this tsh's secret)")
        guard let combined = decode(sealed), let box = try? AES.GCM.SealedBox(combined: combined) else { throw refusal }
        do {
            return try AES.GCM.open(box, using: try key(from: secret), authenticating: Data(state.utf8))
        } catch {
            throw refusal
        }
    }

    static func base64url(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> Data? {
        guard text.utf8.count <= 1 << 20 else { return nil }
        var base = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base.count % 4 != 0 { base += "=" }
        return Data(base64Encoded: base)
    }
}
