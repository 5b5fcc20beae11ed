import Crypto
import Foundation
import Synchronization
import TeleportAPI
import _CryptoExtras

@testable import TeleportAuthServer

/// Signs JWTs for the verifier tests and plays an OpenID provider and a GitHub stand-in for the
/// in-process flow tests, as an ``SSOHTTPClient`` (the real provider tests run Authlib on loopback).
final class TestIdentityProvider: SSOHTTPClient {
    /// One RSA key for the whole test process (2048-bit generation is slow).
    static let rsaKey: _RSA.Signing.PrivateKey = {
        guard let key = try? _RSA.Signing.PrivateKey(keySize: .bits2048) else { fatalError("RSA key generation failed") }
        return key
    }()
    static let otherRSAKey: _RSA.Signing.PrivateKey = {
        guard let key = try? _RSA.Signing.PrivateKey(keySize: .bits2048) else { fatalError("RSA key generation failed") }
        return key
    }()

    static func b64(_ data: some DataProtocol) -> String { Base64URL.encode(data) }

    /// A compact JWS over `claims` with `header`, signed by `key` (nil: unsigned).
    enum Signer {
        case rsa(_RSA.Signing.PrivateKey)
        case p256(P256.Signing.PrivateKey)
        case hmac(Data)
        case none
    }

    static func token(header: [String: Any], claims: [String: Any], signer: Signer) -> String {
        let headerData = (try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data()
        let claimData = (try? JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])) ?? Data()
        let input = b64(headerData) + "." + b64(claimData)
        let signature: Data
        switch signer {
        case .rsa(let key):
            signature = (try? key.signature(for: Data(input.utf8), padding: .insecurePKCS1v1_5).rawRepresentation) ?? Data()
        case .p256(let key):
            signature = (try? key.signature(for: Data(input.utf8)).rawRepresentation) ?? Data()
        case .hmac(let secret):
            signature = Data(HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: secret)))
        case .none:
            signature = Data()
        }
        return input + "." + b64(signature)
    }

    /// The JWKS entry of an RSA public key.
    static func jwk(_ key: _RSA.Signing.PublicKey, kid: String) -> [String: Any] {
        let components = (try? key.getKeyPrimitives()) ?? _RSA.Signing.PublicKey.Primitives(modulus: Data(), publicExponent: Data())
        return ["kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64(components.modulus), "e": b64(components.publicExponent)]
    }

    /// The JWKS entry of a P-256 public key.
    static func jwk(_ key: P256.Signing.PublicKey, kid: String) -> [String: Any] {
        let raw = key.rawRepresentation
        return ["kty": "EC", "crv": "P-256", "kid": kid, "x": b64(raw.prefix(32)), "y": b64(raw.suffix(32))]
    }

    // MARK: The provider

    let issuer: String
    let clientID: String
    let clientSecret: String
    /// Everything mutable the tests change.
    struct State {
        var discoveryIssuer: String?
        var signingKey = TestIdentityProvider.rsaKey
        var kid = "key-1"
        var publishedKeys: [(kid: String, key: _RSA.Signing.PublicKey)] = [("key-1", TestIdentityProvider.rsaKey.publicKey)]
        var claims: [String: Any] = ["sub": "sub-ann", "email": "ann@example.com", "groups": ["admins", "dev"], "logins": ["ann", "root"]]
        var userinfo: [String: Any] = ["sub": "sub-ann", "department": "eng"]
        var idTokenExtra: [String: Any] = [:]
        var issuedAt: Date
        /// Codes handed out: code → (nonce, challenge); removed when exchanged.
        var codes: [String: (nonce: String, challenge: String)] = [:]
        var requests: [SSOHTTPRequest] = []
        var jwksFetches = 0
        var githubTeams: [(org: String, slug: String)] = [("octocats", "admins")]
        var githubLogin = "octo-ann"
    }
    let state: Mutex<State>

    init(issuer: String = "https://idp.example.com", clientID: String = "teleport", clientSecret: String = "s3cret", now: Date) {
        self.issuer = issuer
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.state = Mutex(State(issuedAt: now))
    }

    /// What the browser does at the authorization endpoint: the user logs in and the provider
    /// issues a code bound to the request's nonce and PKCE challenge.
    func authorize(_ url: String) throws -> (code: String, state: String) {
        let items = URLComponents(string: url)?.queryItems ?? []
        func item(_ name: String) -> String { items.first { $0.name == name }?.value ?? "" }
        let code = "code-" + UUID().uuidString
        state.withLock { $0.codes[code] = (item("nonce"), item("code_challenge")) }
        return (code, item("state"))
    }

    func send(_ request: SSOHTTPRequest) async throws -> SSOHTTPResponse {
        state.withLock { $0.requests.append(request) }
        let path = request.url.path
        func json(_ object: Any, status: Int = 200) -> SSOHTTPResponse {
            SSOHTTPResponse(status: status, body: (try? JSONSerialization.data(withJSONObject: object)) ?? Data())
        }
        switch path {
        case "/.well-known/openid-configuration":
            let claimed = state.withLock { $0.discoveryIssuer } ?? issuer
            return json([
                "issuer": claimed, "authorization_endpoint": issuer + "/authorize", "token_endpoint": issuer + "/token",
                "jwks_uri": issuer + "/jwks", "userinfo_endpoint": issuer + "/userinfo",
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
            ])
        case "/jwks":
            let keys = state.withLock { state in
                state.jwksFetches += 1
                return state.publishedKeys.map { Self.jwk($0.key, kid: $0.kid) }
            }
            return json(["keys": keys])
        case "/token":
            let form = String(decoding: request.body ?? Data(), as: UTF8.self)
            var fields: [String: String] = [:]
            for pair in form.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? "" }
                if parts.count == 2 { fields[parts[0]] = parts[1] }
            }
            guard fields["client_id"] == clientID, fields["client_secret"] == clientSecret else { return json(["error": "invalid_client"], status: 401) }
            guard let code = fields["code"], let bound = state.withLock({ $0.codes.removeValue(forKey: code) }) else {
                return json(["error": "invalid_grant"], status: 400)
            }
            guard PKCE.challenge(for: fields["code_verifier"] ?? "") == bound.challenge else { return json(["error": "invalid_grant"], status: 400) }
            let snapshot = state.withLock { $0 }
            var claims = snapshot.claims
            claims["iss"] = issuer
            claims["aud"] = clientID
            claims["iat"] = Int(snapshot.issuedAt.timeIntervalSince1970)
            claims["exp"] = Int(snapshot.issuedAt.timeIntervalSince1970) + 300
            claims["nonce"] = bound.nonce
            for (key, value) in snapshot.idTokenExtra { claims[key] = value }
            let token = Self.token(header: ["alg": "RS256", "kid": snapshot.kid, "typ": "JWT"], claims: claims, signer: .rsa(snapshot.signingKey))
            return json(["access_token": "access-" + code, "token_type": "Bearer", "id_token": token])
        case "/userinfo":
            return json(state.withLock { $0.userinfo })
        case "/login/oauth/access_token":
            let form = String(decoding: request.body ?? Data(), as: UTF8.self)
            guard form.contains("client_secret=\(clientSecret)"), let code = form.split(separator: "&").first(where: { $0.hasPrefix("code=") })?.dropFirst(5),
                state.withLock({ $0.codes.removeValue(forKey: String(code)) }) != nil
            else { return json(["error": "bad_verification_code"]) }
            return json(["access_token": "gho-" + code, "token_type": "bearer", "scope": "read:org"])
        case "/api/v3/user", "/user":
            return json(["login": state.withLock { $0.githubLogin }, "id": 1])
        case "/api/v3/user/teams", "/user/teams":
            let teams = state.withLock { $0.githubTeams }.map { ["slug": $0.slug, "organization": ["login": $0.org]] as [String: Any] }
            return json(teams)
        default:
            return json(["error": "not found"], status: 404)
        }
    }
}
