public import Foundation

/// A GitHub connector (`kind: github`, v3): OAuth 2.0 against github.com or GitHub Enterprise
/// Server, with teams mapped to logins and roles.
public struct GitHubConnector: Resource {
    public static let kind = "github"
    public static let currentVersion = "v3"
    public var kind: String
    public var version: String
    public var metadata: Metadata
    public var spec: Spec

    /// The OAuth application and the mapping.
    public struct Spec: Codable, Sendable, Equatable {
        /// The OAuth app's client id.
        public var clientID: String
        /// The OAuth app's secret (hidden unless `--with-secrets`).
        public var clientSecret: String
        /// The button's text (else the connector's name).
        public var display: String?
        /// `https://PROXY/v1/webapi/github/callback`, as registered with the OAuth app.
        public var redirectURL: String
        /// Team → logins rules (the seed's v3 mapping).
        public var teamsToLogins: [TeamLogins]?
        /// Team → roles rules.
        public var teamsToRoles: [TeamRoles]?
        /// Where users authorize (default `https://github.com`).
        public var endpointURL: String?
        /// The REST API (default `https://api.github.com`).
        public var apiEndpointURL: String?

        enum CodingKeys: String, CodingKey {
            case display
            case clientID = "client_id"
            case clientSecret = "client_secret"
            case redirectURL = "redirect_url"
            case teamsToLogins = "teams_to_logins"
            case teamsToRoles = "teams_to_roles"
            case endpointURL = "endpoint_url"
            case apiEndpointURL = "api_endpoint_url"
        }

        /// Creates a spec.
        public init(
            clientID: String, clientSecret: String, display: String? = nil, redirectURL: String, teamsToLogins: [TeamLogins]? = nil,
            teamsToRoles: [TeamRoles]? = nil, endpointURL: String? = nil, apiEndpointURL: String? = nil
        ) {
            self.clientID = clientID
            self.clientSecret = clientSecret
            self.display = display
            self.redirectURL = redirectURL
            self.teamsToLogins = teamsToLogins
            self.teamsToRoles = teamsToRoles
            self.endpointURL = endpointURL
            self.apiEndpointURL = apiEndpointURL
        }
    }

    /// Members of `organization`/`team` get `logins` (a login is also a role name, as in the seed)
    /// and `kubernetes_groups`.
    public struct TeamLogins: Codable, Sendable, Equatable {
        /// The organization's login.
        public var organization: String
        /// The team's slug.
        public var team: String
        /// Logins (and roles of those names).
        public var logins: [String]
        /// Kubernetes groups.
        public var kubernetesGroups: [String]?

        enum CodingKeys: String, CodingKey {
            case organization, team, logins
            case kubernetesGroups = "kubernetes_groups"
        }

        /// Creates a rule.
        public init(organization: String, team: String, logins: [String], kubernetesGroups: [String]? = nil) {
            self.organization = organization
            self.team = team
            self.logins = logins
            self.kubernetesGroups = kubernetesGroups
        }
    }

    /// Members of `organization`/`team` get `roles`.
    public struct TeamRoles: Codable, Sendable, Equatable {
        /// The organization's login.
        public var organization: String
        /// The team's slug.
        public var team: String
        /// Roles granted.
        public var roles: [String]

        /// Creates a rule.
        public init(organization: String, team: String, roles: [String]) {
            self.organization = organization
            self.team = team
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

    /// The default authorization site.
    public static let defaultEndpoint = "https://github.com"
    /// The default REST API.
    public static let defaultAPIEndpoint = "https://api.github.com"

    /// Where users authorize.
    public var endpoint: String { Self.trimmed(spec.endpointURL ?? "").isEmpty ? Self.defaultEndpoint : Self.trimmed(spec.endpointURL ?? "") }
    /// The REST API base.
    public var apiEndpoint: String {
        Self.trimmed(spec.apiEndpointURL ?? "").isEmpty ? Self.defaultAPIEndpoint : Self.trimmed(spec.apiEndpointURL ?? "")
    }

    static func trimmed(_ url: String) -> String {
        var text = url
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// The text of its login button.
    public var displayName: String { (spec.display?.isEmpty == false ? spec.display : nil) ?? name }

    /// The connector without its client secret.
    public var withoutSecrets: GitHubConnector {
        var copy = self
        copy.spec.clientSecret = ""
        return copy
    }

    public func validate() throws {
        try validateEnvelope()
        let prefix = "github \(name): spec"
        guard !spec.clientID.isEmpty else { throw TeleportError.badParameter("\(prefix).client_id is required") }
        try ConnectorURL.checkSecure(spec.redirectURL, field: "\(prefix).redirect_url")
        if let endpoint = spec.endpointURL, !endpoint.isEmpty { try ConnectorURL.checkSecure(endpoint, field: "\(prefix).endpoint_url") }
        if let api = spec.apiEndpointURL, !api.isEmpty { try ConnectorURL.checkSecure(api, field: "\(prefix).api_endpoint_url") }
        let logins = spec.teamsToLogins ?? []
        let roles = spec.teamsToRoles ?? []
        guard !logins.isEmpty || !roles.isEmpty else {
            throw TeleportError.badParameter("\(prefix) maps no team: add teams_to_logins or teams_to_roles")
        }
        for (index, rule) in logins.enumerated() {
            let field = "\(prefix).teams_to_logins[\(index)]"
            guard !rule.organization.isEmpty, !rule.team.isEmpty else {
                throw TeleportError.badParameter("\(field) needs an organization and a team")
            }
            guard !rule.logins.isEmpty else { throw TeleportError.badParameter("\(field).logins is empty") }
        }
        for (index, rule) in roles.enumerated() {
            let field = "\(prefix).teams_to_roles[\(index)]"
            guard !rule.organization.isEmpty, !rule.team.isEmpty else {
                throw TeleportError.badParameter("\(field) needs an organization and a team")
            }
            guard !rule.roles.isEmpty else { throw TeleportError.badParameter("\(field).roles is empty") }
        }
    }
}
