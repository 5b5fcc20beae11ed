import Foundation

/// Base64url without padding (RFC 4648 §5), as JOSE and PKCE use it.
enum Base64URL {
    /// Encodes `data`.
    static func encode(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes `text`; nil when it is not base64url (padding is tolerated).
    static func decode(_ text: some StringProtocol) -> Data? {
        var base = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base = base.replacingOccurrences(of: "=", with: "")
        guard base.allSatisfy({ $0.isLetter && $0.isASCII || $0.isNumber && $0.isASCII || $0 == "+" || $0 == "/" }) else { return nil }
        while base.count % 4 != 0 { base += "=" }
        return Data(base64Encoded: base)
    }
}
