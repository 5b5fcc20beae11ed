public import Foundation

/// URL rules for single sign-on, pure and shared by the connectors' validation, the auth service
/// and the proxy: a provider or redirect URL must be `https://`, or `http://` to a loopback host
/// only; `tsh`'s own callback must be `http://127.0.0.1:PORT/...` or `http://localhost:PORT/...`;
/// the web flow's return address must be a path on the same origin.
public enum ConnectorURL {
    /// Whether `host` is a loopback name or address (`localhost`, `127.x.x.x`, `::1`).
    public static func isLoopback(host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let lower = bare.lowercased()
        if lower == "localhost" || lower == "::1" { return true }
        let parts = lower.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// Checks a provider or redirect URL: absolute, `https`, or `http` to a loopback host; no user
    /// info and no fragment. `field` names the setting in the error.
    ///
    /// - Throws: `badParameter` naming the field and the rule.
    @discardableResult
    public static func checkSecure(_ text: String, field: String) throws -> URL {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty, let url = components.url
        else {
            throw TeleportError.badParameter("\(field): \"\(text)\" is not an absolute URL (e.g. https://idp.example.com)")
        }
        guard components.user == nil, components.password == nil, components.fragment == nil else {
            throw TeleportError.badParameter("\(field): \"\(text)\" must not carry user info or a fragment")
        }
        switch scheme {
        case "https": return url
        case "http" where isLoopback(host: host): return url
        case "http":
            throw TeleportError.badParameter("\(field): \"\(text)\" must use https (plain http is allowed only to a loopback host)")
        default:
            throw TeleportError.badParameter("\(field): \"\(text)\" must be an https:// URL")
        }
    }

    /// Checks `tsh`'s callback address (`client_redirect_url`): `http://127.0.0.1:PORT/...` or
    /// `http://localhost:PORT/...` with an explicit port.
    /// - Throws: `badParameter` naming the address and the rule.
    ///
    /// `maxBytes`: 2 KiB for the address tsh sends; the redirect that carries the sealed result back
    /// is larger (certificates), up to 64 KiB.
    public static func checkClientRedirect(_ text: String, maxBytes: Int = 2048) throws -> URLComponents {
        let rule = "client_redirect_url must be http://127.0.0.1:PORT/... or http://localhost:PORT/... (tsh's own one-time listener)"
        guard text.utf8.count <= maxBytes, let components = URLComponents(string: text), components.scheme == "http",
            let host = components.host, host == "127.0.0.1" || host == "localhost", let port = components.port, port > 0,
            components.user == nil, components.password == nil, components.fragment == nil
        else {
            throw TeleportError.badParameter("\(rule), not \"\(text.prefix(200))\"")
        }
        return components
    }

    /// Checks the web flow's return address: a path on this origin (`/web`, `/web/nodes?x=1`),
    /// never a scheme, a host (`//evil`), a backslash or control characters.
    ///
    /// - Throws: `badParameter` naming the rule.
    public static func checkWebRedirect(_ text: String) throws -> String {
        let refusal = TeleportError.badParameter(
            "redirect_url must be a path on this proxy such as /web, not \"\(text.prefix(200))\"")
        guard text.hasPrefix("/"), !text.hasPrefix("//"), !text.hasPrefix("/\\"), text.utf8.count <= 2048 else { throw refusal }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f || $0 == "\\" }) else { throw refusal }
        guard let components = URLComponents(string: text), components.scheme == nil, components.host == nil else { throw refusal }
        return text
    }
}
