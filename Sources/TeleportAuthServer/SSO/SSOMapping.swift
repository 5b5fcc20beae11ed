import Foundation
import TeleportAPI

/// Maps what a provider says about a user to roles and traits, with no I/O.
enum SSOMapping {
    /// Roles and traits for one login.
    struct Result: Equatable {
        /// Role names, in rule order, without repeats.
        var roles: [String]
        /// Traits as stored on the user.
        var traits: [String: [String]]
    }

    /// The most values kept from one claim, and the longest value.
    static let maxValuesPerClaim = 256
    static let maxValueBytes = 1024

    /// A claim as a list of strings (a string, or a list of strings; numbers and booleans as text);
    /// nil for objects and other shapes. Values are capped in count and length.
    static func strings(_ value: JSONValue) -> [String]? {
        func one(_ value: JSONValue) -> String? {
            switch value {
            case .string(let text): text.utf8.count <= maxValueBytes ? text : nil
            case .int(let n): String(n)
            case .bool(let b): String(b)
            case .double(let d): String(d)
            default: nil
            }
        }
        switch value {
        case .array(let list): return Array(list.compactMap(one).prefix(maxValuesPerClaim))
        case .object, .null: return nil
        default: return one(value).map { [$0] }
        }
    }

    /// OIDC: every `claims_to_roles` rule whose claim has a matching value (any element of a list
    /// claim) adds its roles; every claim that is a string or a list of strings becomes the trait
    /// `external.<claim>`, and a `logins` claim also the `logins` trait.
    static func oidc(_ connector: OIDCConnector, claims: [String: JSONValue]) -> Result {
        var roles: [String] = []
        for rule in connector.spec.claimsToRoles {
            guard let values = claims[rule.claim].flatMap(strings),
                let matcher = try? ClaimMatcher(rule.value, field: "value"),
                values.contains(where: matcher.matches)
            else { continue }
            for role in rule.roles where !roles.contains(role) { roles.append(role) }
        }
        var traits: [String: [String]] = [:]
        for (name, value) in claims where !name.isEmpty && name.utf8.count <= 128 {
            guard let values = strings(value) else { continue }
            traits["external." + name] = values
        }
        if let logins = claims["logins"].flatMap(strings) {
            traits["logins"] = logins.filter(isLogin)
        }
        return Result(roles: roles, traits: traits)
    }

    /// A team a GitHub user belongs to: the organization's login and the team's slug.
    struct Team: Equatable, Sendable {
        var organization: String
        var slug: String
    }

    /// GitHub: `teams_to_logins` give the `logins` and `kubernetes_groups` traits (and the preset
    /// `access` role, which allows `{{internal.logins}}`), `teams_to_roles` give roles; the traits
    /// `github_teams` (`org/slug`) and `github_orgs` list the memberships.
    static func github(_ connector: GitHubConnector, teams: [Team], defaultLoginRole: String = "access") -> Result {
        var roles: [String] = []
        var logins: [String] = []
        var groups: [String] = []
        func member(_ org: String, _ team: String) -> Bool {
            teams.contains { $0.organization.lowercased() == org.lowercased() && $0.slug.lowercased() == team.lowercased() }
        }
        for rule in connector.spec.teamsToLogins ?? [] where member(rule.organization, rule.team) {
            for login in rule.logins where !logins.contains(login) { logins.append(login) }
            for group in rule.kubernetesGroups ?? [] where !groups.contains(group) { groups.append(group) }
            if !roles.contains(defaultLoginRole) { roles.append(defaultLoginRole) }
        }
        for rule in connector.spec.teamsToRoles ?? [] where member(rule.organization, rule.team) {
            for role in rule.roles where !roles.contains(role) { roles.append(role) }
        }
        var orgs: [String] = []
        for team in teams where !orgs.contains(team.organization) { orgs.append(team.organization) }
        var traits: [String: [String]] = [
            "logins": logins.filter(isLogin), "github_teams": teams.map { "\($0.organization)/\($0.slug)" }, "github_orgs": orgs,
        ]
        if !groups.isEmpty { traits["kubernetes_groups"] = groups }
        return Result(roles: roles, traits: traits)
    }

    /// Whether `text` can be an OS login (what ``User/validate()`` accepts).
    static func isLogin(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && !text.contains(where: { $0.isWhitespace || $0 == "," })
    }

    /// A Teleport user name for an SSO identity: the provider's value, checked as a resource name.
    static func userName(_ candidate: String) throws -> String {
        try ResourceName.validate(candidate, kind: User.kind)
        return candidate
    }
}
