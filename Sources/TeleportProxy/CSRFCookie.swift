import Hummingbird
import TeleportCrypto

/// Double-submit CSRF protection for the proxy's HTML forms: the form page sets a random cookie
/// (`__Host-` prefixed: Secure, no Domain, Path=/; HttpOnly; SameSite=Strict) and puts the same
/// value in a hidden field; a submission is accepted only when both are present and equal. Another
/// site can make a browser send the cookie (SameSite aside) but cannot read it to fill the field.
enum CSRFCookie {
    /// The cookie's name.
    static let name = "__Host-csrf"
    /// The form field holding the same value.
    static let field = "csrf_token"

    /// A new token: 32 random bytes, hex.
    static func randomToken(using generator: inout some RandomNumberGenerator) -> String {
        let digits = Array("0123456789abcdef")
        var text = ""
        for _ in 0..<32 {
            let byte = UInt8.random(in: 0...255, using: &generator)
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return text
    }

    /// A new token from the system's secure generator.
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return randomToken(using: &generator)
    }

    /// The `Set-Cookie` value that stores `token`.
    static func setCookie(_ token: String) -> String {
        "\(name)=\(token); Secure; HttpOnly; SameSite=Strict; Path=/"
    }

    /// The `Set-Cookie` value that removes the cookie (after the form has done its job).
    static let clearCookie = "\(name)=; Max-Age=0; Secure; HttpOnly; SameSite=Strict; Path=/"

    /// The cookie's value in `request`, if sent.
    static func value(in request: Request) -> String? {
        request.cookies[name]?.value
    }

    /// True when both values are present, non-empty and equal (compared in constant time).
    static func verify(cookie: String?, field: String?) -> Bool {
        guard let cookie, let field, !cookie.isEmpty, !field.isEmpty else { return false }
        return ConstantTime.equal(cookie, field)
    }
}
