import Foundation
import TeleportAPI

/// The parts of an OpenID provider's discovery document the login uses.
struct OIDCDiscovery: Sendable, Equatable {
    var issuer: String
    var authorizationEndpoint: String
    var tokenEndpoint: String
    var jwksURI: String
    var userinfoEndpoint: String?
    /// `token_endpoint_auth_methods_supported` (the spec's default: `client_secret_basic`).
    var tokenAuthMethods: [String]

    /// The document's URL for `issuer` (`ISSUER/.well-known/openid-configuration`).
    static func url(issuer: String) -> String {
        var base = issuer
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/.well-known/openid-configuration"
    }

    /// Parses the document and checks it: `issuer` must equal `expectedIssuer` exactly, and each
    /// endpoint must be https (or http to loopback).
    static func parse(_ data: Data, expectedIssuer: String, connector: String) throws -> OIDCDiscovery {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TeleportError.badParameter("oidc \(connector): the provider's discovery document is not a JSON object")
        }
        let issuer = object["issuer"] as? String ?? ""
        guard issuer == expectedIssuer else {
            throw TeleportError.badParameter(
                "oidc \(connector): the discovery document names the issuer \"\(issuer.prefix(200))\", but issuer_url is \"\(expectedIssuer)\"; they must be equal (fix issuer_url)")
        }
        func endpoint(_ key: String, required: Bool = true) throws -> String? {
            guard let value = object[key] as? String, !value.isEmpty else {
                if required { throw TeleportError.badParameter("oidc \(connector): the discovery document has no \(key)") }
                return nil
            }
            try ConnectorURL.checkSecure(value, field: "oidc \(connector): the discovery document's \(key)")
            return value
        }
        let methods = object["token_endpoint_auth_methods_supported"] as? [String] ?? ["client_secret_basic"]
        return OIDCDiscovery(
            issuer: issuer, authorizationEndpoint: try endpoint("authorization_endpoint") ?? "", tokenEndpoint: try endpoint("token_endpoint") ?? "",
            jwksURI: try endpoint("jwks_uri") ?? "", userinfoEndpoint: try endpoint("userinfo_endpoint", required: false), tokenAuthMethods: methods)
    }

    /// How the client authenticates at the token endpoint: `client_secret_basic` when offered,
    /// else `client_secret_post`.
    var usesBasicAuth: Bool { tokenAuthMethods.contains("client_secret_basic") || !tokenAuthMethods.contains("client_secret_post") }
}

/// `application/x-www-form-urlencoded` bodies and query strings.
enum FormEncoding {
    static let allowed: CharacterSet = {
        var set = CharacterSet.alphanumerics
        set.insert(charactersIn: "-._~")
        return set
    }()

    /// Percent-encodes one value.
    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// `a=1&b=2`.
    static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
    }

    /// `base` with `pairs` added to its query.
    static func append(_ pairs: [(String, String)], to base: String) -> String {
        base + (base.contains("?") ? "&" : "?") + encode(pairs)
    }
}
