public import Foundation

/// A real OpenID Connect provider for tests: `Tests/fixtures/oidc_provider.py` (Authlib's authorization
/// code grant with OpenID Connect and PKCE, in Flask) on 127.0.0.1, with the clients and users a test
/// gives it. Its issuer is ``issuerURL`` (plain http on loopback). ``setMode(_:)`` makes the next ID
/// tokens (or the discovery document) misbehave for the attack tests; ``rotateKeys(keepOld:)`` rotates
/// the signing key.
public final class OIDCProviderFixture: @unchecked Sendable {
    /// An OAuth client the provider knows (the connector's `client_id`/`client_secret`/`redirect_url`).
    public struct Client: Sendable, Encodable {
        public var clientID: String
        public var clientSecret: String
        public var redirectURIs: [String]
        /// `client_secret_post`, `client_secret_basic` or `any`.
        public var tokenEndpointAuthMethod: String

        public init(id: String, secret: String, redirectURIs: [String], tokenEndpointAuthMethod: String = "any") {
            clientID = id
            clientSecret = secret
            self.redirectURIs = redirectURIs
            self.tokenEndpointAuthMethod = tokenEndpointAuthMethod
        }

        enum CodingKeys: String, CodingKey {
            case clientID = "client_id", clientSecret = "client_secret", redirectURIs = "redirect_uris"
            case tokenEndpointAuthMethod = "token_endpoint_auth_method"
        }
    }

    /// A user who can sign in on the provider's login form, and the claims it asserts about them
    /// (in the ID token and from /userinfo; `sub` and `preferred_username` are the username).
    public struct User: Sendable, Encodable {
        public var username: String
        public var password: String
        public var claims: [String: FixtureClaim]

        public init(_ username: String, password: String, claims: [String: FixtureClaim] = [:]) {
            self.username = username
            self.password = password
            self.claims = claims
        }
    }

    /// How the provider misbehaves (see the script's header).
    public enum Mode: String, Sendable, CaseIterable {
        case normal
        /// ID tokens for another audience (`someone-else`).
        case audience
        /// ID tokens with a wrong nonce.
        case nonce
        /// ID tokens that expired ten minutes ago.
        case expired
        /// ID tokens signed by a key the JWKS does not hold (with the current `kid`).
        case unknownKey = "unknown_key"
        /// Unsigned ID tokens (`alg: none`).
        case algNone = "alg_none"
        /// A discovery document naming another issuer.
        case otherIssuer = "other_issuer"
        /// A 10 MB claim in ID tokens and /userinfo.
        case bigClaim = "big_claim"
        /// The last good ID token, sent again.
        case replay
        /// Authorization codes that stay valid after use (to test the client's own replay checks).
        case reuseCodes = "reuse_codes"
    }

    struct Config: Encodable {
        var clients: [Client]
        var users: [User]
        var requirePKCE: Bool
        enum CodingKeys: String, CodingKey { case clients, users, requirePKCE = "require_pkce" }
    }

    /// The provider process.
    public let server: PythonFixtureServer

    private init(server: PythonFixtureServer) { self.server = server }

    /// The issuer (`http://127.0.0.1:PORT`): the connector's `issuer_url`.
    public var issuerURL: String { server.url }
    /// Its port.
    public var port: UInt16 { server.port }
    /// Its output so far.
    public var log: String { server.log }

    /// Starts a provider with these clients and users (PKCE required unless `requirePKCE` is false).
    public static func start(clients: [Client], users: [User], requirePKCE: Bool = true) async throws -> OIDCProviderFixture {
        let config = try PythonFixtureServer.encode(Config(clients: clients, users: users, requirePKCE: requirePKCE))
        return OIDCProviderFixture(server: try await PythonFixtureServer.start(script: "oidc_provider.py", config: config, prefix: "oidc"))
    }

    /// Runs `body` with a fresh provider, stopped afterwards whether `body` succeeded or not.
    public static func with<T>(
        clients: [Client], users: [User], requirePKCE: Bool = true, _ body: (OIDCProviderFixture) async throws -> T
    ) async throws -> T {
        let provider = try await start(clients: clients, users: users, requirePKCE: requirePKCE)
        do {
            let value = try await body(provider)
            await provider.stop()
            return value
        } catch {
            await provider.stop()
            throw error
        }
    }

    /// Replaces the clients and users (e.g. once a cluster's web port, hence the redirect URL, is known).
    public func configure(clients: [Client], users: [User], requirePKCE: Bool = true) async throws {
        let config = try PythonFixtureServer.encode(Config(clients: clients, users: users, requirePKCE: requirePKCE))
        try await server.admin("/admin/config", json: String(decoding: config, as: UTF8.self))
    }

    /// Switches how the next ID tokens and discovery documents are made.
    public func setMode(_ mode: Mode) async throws {
        try await server.admin("/admin/mode", json: #"{"mode": "\#(mode.rawValue)"}"#)
    }

    /// Publishes a new signing key and signs with it from now on; the old key leaves the JWKS unless
    /// `keepOld`. Returns the new key's `kid`.
    @discardableResult
    public func rotateKeys(keepOld: Bool = false) async throws -> String {
        let body = try await server.admin("/admin/rotate", json: #"{"keep_old": \#(keepOld)}"#)
        let parsed = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        return parsed?["kid"] as? String ?? ""
    }

    /// The `kid`s the JWKS publishes now.
    public func publishedKeyIDs() async throws -> [String] {
        let reply = try await server.request("GET", "/jwks")
        let parsed = try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any]
        return (parsed?["keys"] as? [[String: Any]] ?? []).compactMap { $0["kid"] as? String }
    }

    /// What the provider saw (authorize, login, token with its client authentication method, userinfo, refusals).
    public func events() async throws -> [[String: Any]] { try await server.events() }

    /// Stops the provider by PID.
    public func stop() async { await server.stop() }
}
