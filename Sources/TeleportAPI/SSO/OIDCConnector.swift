public import Foundation

/// An OpenID Connect connector (`kind: oidc`): how the auth service logs users in with an OpenID
/// provider (Okta, Google, Keycloak, Dex, ...) and which roles their claims map to.
public struct OIDCConnector: Resource {
    public static let kind = "oidc"
    public static let currentVersion = "v3"
    public var kind: String
    public var version: String
    public var metadata: Metadata
    public var spec: Spec

    /// The provider and the mapping.
    public struct Spec: Codable, Sendable, Equatable {
        /// The provider's issuer; its discovery document is at `ISSUER/.well-known/openid-configuration`
        /// and must name exactly this issuer.
        public var issuerURL: String
        /// The client id registered with the provider.
        public var clientID: String
        /// The client secret (hidden unless `--with-secrets`).
        public var clientSecret: String
        /// `https://PROXY/v1/webapi/oidc/callback`, as registered with the provider.
        public var redirectURL: String
        /// Scopes asked for besides `openid` (e.g. `email`, `groups`).
        public var scope: [String]?
        /// Claim → roles rules.
        public var claimsToRoles: [ClaimMapping]
        /// The button's text (else the connector's name).
        public var display: String?
        /// `prompt` for the authorization request (`login`, `consent`, `select_account`, `none`).
        public var prompt: String?
        /// `max_age` in seconds for the authorization request.
        public var maxAge: Int?
        /// `acr_values` for the authorization request.
        public var acrValues: String?

        enum CodingKeys: String, CodingKey {
            case scope, display, prompt
            case issuerURL = "issuer_url"
            case clientID = "client_id"
            case clientSecret = "client_secret"
            case redirectURL = "redirect_url"
            case claimsToRoles = "claims_to_roles"
            case maxAge = "max_age"
            case acrValues = "acr_values"
        }

        /// Creates a spec.
        public init(
            issuerURL: String, clientID: String, clientSecret: String, redirectURL: String, scope: [String]? = nil,
            claimsToRoles: [ClaimMapping], display: String? = nil, prompt: String? = nil, maxAge: Int? = nil, acrValues: String? = nil
        ) {
            self.issuerURL = issuerURL
            self.clientID = clientID
            self.clientSecret = clientSecret
            self.redirectURL = redirectURL
            self.scope = scope
            self.claimsToRoles = claimsToRoles
            self.display = display
            self.prompt = prompt
            self.maxAge = maxAge
            self.acrValues = acrValues
        }
    }

    /// One rule: when `claim` has `value` (a literal or `^regex$`; for a list claim, any element),
    /// the user gets `roles`.
    public struct ClaimMapping: Codable, Sendable, Equatable {
        /// The claim's name.
        public var claim: String
        /// The value to match.
        public var value: String
        /// Roles granted.
        public var roles: [String]

        /// Creates a rule.
        public init(claim: String, value: String, roles: [String]) {
            self.claim = claim
            self.value = value
            self.roles = roles
        }
    }

    /// Creates a connector.
    public init(name: String, spec: Spec) {
        self.kind = Self.kind
        self.version = Self.currentVersion
        self.metadata = Metadata(name: name)
        self.spec = spec
    }

    /// The text of its login button.
    public var displayName: String { (spec.display?.isEmpty == false ? spec.display : nil) ?? name }

    /// The connector without its client secret.
    public var withoutSecrets: OIDCConnector {
        var copy = self
        copy.spec.clientSecret = ""
        return copy
    }

    public func validate() throws {
        try validateEnvelope()
        let prefix = "oidc \(name): spec"
        try ConnectorURL.checkSecure(spec.issuerURL, field: "\(prefix).issuer_url")
        try ConnectorURL.checkSecure(spec.redirectURL, field: "\(prefix).redirect_url")
        guard !spec.clientID.isEmpty else { throw TeleportError.badParameter("\(prefix).client_id is required") }
        guard !spec.claimsToRoles.isEmpty else {
            throw TeleportError.badParameter("\(prefix).claims_to_roles is empty: no one could log in (add {claim, value, roles})")
        }
        for (index, rule) in spec.claimsToRoles.enumerated() {
            let field = "\(prefix).claims_to_roles[\(index)]"
            guard !rule.claim.isEmpty else { throw TeleportError.badParameter("\(field).claim is required") }
            guard !rule.roles.isEmpty else { throw TeleportError.badParameter("\(field).roles is empty") }
            _ = try ClaimMatcher(rule.value, field: "\(field).value")
        }
        if let maxAge = spec.maxAge, maxAge < 0 { throw TeleportError.badParameter("\(prefix).max_age must not be negative") }
        if let prompt = spec.prompt, !prompt.isEmpty {
            let allowed: Set<Substring> = ["none", "login", "consent", "select_account"]
            guard prompt.split(separator: " ").allSatisfy({ allowed.contains($0) }) else {
                throw TeleportError.badParameter("\(prefix).prompt must be none, login, consent or select_account, not \"\(prompt)\"")
            }
        }
        for scope in spec.scope ?? [] where scope.isEmpty || scope.contains(where: \.isWhitespace) {
            throw TeleportError.badParameter("\(prefix).scope: \"\(scope)\" is not one scope")
        }
    }
}
