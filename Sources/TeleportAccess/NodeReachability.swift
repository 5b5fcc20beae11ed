public import TeleportAPI

/// ``AccessChecker/canReach(labels:logins:)`` for many nodes and one user: the roles' logins are
/// expanded and their label selectors put in key order once, and a node's answer builds no reason
/// text (`tsh ls` and the web UI's list ask it for every node of the cluster).
///
/// The answer is the checker's, rule for rule: a login that some role denies, or a node some
/// role's `deny.node_labels` matches, is refused; otherwise some role must match in
/// `allow.node_labels` and allow the login. A selector that cannot be evaluated (a pattern that is
/// not a valid regular expression) refuses the login, as an error from
/// ``AccessChecker/checkSSH(labels:login:)`` does.
public struct NodeReachability: Sendable {
    /// One role's SSH rules, ready to evaluate.
    struct RoleRules: Sendable {
        /// `deny.logins` expanded; nil for a role without a deny block.
        var deniedLogins: [String]?
        /// `deny.node_labels` in key order (empty: none).
        var denySelector: [(key: String, patterns: [String])]
        /// False for a role without an allow block.
        var hasAllow: Bool
        /// `allow.node_labels` in key order (empty: grants no nodes).
        var allowSelector: [(key: String, patterns: [String])]
        /// `allow.logins` expanded.
        var allowedLogins: [String]
    }

    let checker: AccessChecker
    let logins: [String]
    let rules: [RoleRules]

    /// Prepares the rules of `checker` for `logins` (the certificate's or the web session's).
    public init(checker: AccessChecker, logins: [String]) {
        self.checker = checker
        self.logins = logins
        func ordered(_ selector: [String: LabelValues]?) -> [(key: String, patterns: [String])] {
            (selector ?? [:]).keys.sorted().map { ($0, selector?[$0]?.values ?? []) }
        }
        rules = checker.roles.map { role in
            RoleRules(
                deniedLogins: role.spec.deny.map { checker.expand($0.logins ?? []) },
                denySelector: ordered(role.spec.deny?.nodeLabels),
                hasAllow: role.spec.allow != nil,
                allowSelector: ordered(role.spec.allow?.nodeLabels),
                allowedLogins: checker.expand(role.spec.allow?.logins ?? []))
        }
    }

    /// Whether a node with these labels is reachable with at least one of the logins.
    public func allows(labels: [String: String]) -> Bool {
        logins.contains { (try? allows(labels: labels, login: $0)) == true }
    }

    /// ``AccessChecker/checkSSH(labels:login:)``'s verdict, without its reasons.
    func allows(labels: [String: String], login: String) throws -> Bool {
        for role in rules {
            guard let denied = role.deniedLogins else { continue }
            if denied.contains(login) { return false }
            if !role.denySelector.isEmpty, try matches(role.denySelector, labels) { return false }
        }
        for role in rules where role.hasAllow {
            guard try matches(role.allowSelector, labels) else { continue }
            if role.allowedLogins.contains(login) { return true }
        }
        return false
    }

    /// ``AccessChecker/labelsMatch(_:_:field:noun:)``'s verdict: every key must match, `'*': '*'`
    /// matches any node, an empty selector matches nothing.
    func matches(_ selector: [(key: String, patterns: [String])], _ labels: [String: String]) throws -> Bool {
        guard !selector.isEmpty else { return false }
        for (key, patterns) in selector {
            if key == "*" {
                guard patterns.contains("*") else { return false }
                continue
            }
            guard let value = labels[key] else { return false }
            guard try patterns.contains(where: { try checker.valueMatches($0, value) }) else { return false }
        }
        return true
    }
}
