public import Foundation
public import TeleportAPI

/// The role engine: what a set of roles (with the user's traits) allows. Deny always wins over
/// allow, and nothing is allowed by default. Every decision comes with its reasons, role by role,
/// for `tctl access explain` and for the audit events of denials.
public struct AccessChecker: Sendable {
    /// The user's roles.
    public let roles: [Role]
    /// The user's traits: `internal.logins`, `internal.X`, `external.X` → values.
    public let traits: [String: [String]]
    /// The roles' `^...$` label patterns, compiled once (a checker may look at thousands of nodes).
    let expressions: [String: NSRegularExpression]

    /// Creates a checker.
    public init(roles: [Role], traits: [String: [String]]) {
        self.roles = roles
        self.traits = traits
        var expressions: [String: NSRegularExpression] = [:]
        for role in roles {
            let selectors = [
                role.spec.allow?.nodeLabels, role.spec.deny?.nodeLabels, role.spec.allow?.dbLabels, role.spec.deny?.dbLabels,
                role.spec.allow?.kubernetesLabels, role.spec.deny?.kubernetesLabels, role.spec.allow?.clusterLabels, role.spec.deny?.clusterLabels,
            ]
            for selector in selectors.compactMap({ $0 }) {
                for pattern in selector.values.flatMap(\.values) where Self.isExpression(pattern) && expressions[pattern] == nil {
                    expressions[pattern] = try? NSRegularExpression(pattern: pattern)
                }
            }
        }
        self.expressions = expressions
    }

    static func isExpression(_ pattern: String) -> Bool { pattern.hasPrefix("^") && pattern.hasSuffix("$") }

    /// A decision with the reasons that led to it.
    public struct Decision: Sendable, Equatable {
        public var allowed: Bool
        /// One line per rule that was looked at, in order.
        public var reasons: [String]

        public init(allowed: Bool, reasons: [String]) {
            self.allowed = allowed
            self.reasons = reasons
        }
    }

    // MARK: Traits

    /// Expands `{{internal.logins}}`-style templates; a template naming an unknown trait expands to
    /// nothing (never to the literal text). Plain values are kept.
    public func expand(_ templates: [String]) -> [String] {
        var result: [String] = []
        for template in templates {
            let trimmed = template.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("{{"), trimmed.hasSuffix("}}") {
                let name = trimmed.dropFirst(2).dropLast(2).trimmingCharacters(in: .whitespaces)
                let values = traits[name] ?? []
                for value in values where !result.contains(value) { result.append(value) }
            } else if !trimmed.contains("{{"), !trimmed.isEmpty, !result.contains(trimmed) {
                result.append(trimmed)
            }
        }
        return result
    }

    // MARK: Labels

    /// Whether one selector value accepts `value`: `*`, a `^...$` regular expression, or equality.
    func valueMatches(_ pattern: String, _ value: String) throws -> Bool {
        if pattern == "*" { return true }
        if Self.isExpression(pattern) {
            guard let expression = expressions[pattern] else {
                throw TeleportError.badParameter("\(pattern.debugDescription) is not a valid regular expression")
            }
            return expression.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) != nil
        }
        return pattern == value
    }

    /// Whether `selector` matches a node's `labels` (every key must match; `'*': '*'` matches any
    /// node), with the reason.
    func labelsMatch(_ selector: [String: LabelValues], _ labels: [String: String], field: String = "node_labels", noun: String = "node") throws
        -> (Bool, String)
    {
        guard !selector.isEmpty else { return (false, "no \(field) (grants no \(noun)s)") }
        for key in selector.keys.sorted() {
            let patterns = selector[key]?.values ?? []
            if key == "*" {
                guard patterns.contains("*") else { return (false, "the '*' key needs the '*' value") }
                continue
            }
            guard let value = labels[key] else { return (false, "the \(noun) has no label \(key.debugDescription)") }
            guard try patterns.contains(where: { try valueMatches($0, value) }) else {
                return (false, "label \(key)=\(value) is not one of \(patterns)")
            }
        }
        return (true, "\(field) \(selector.keys.sorted().map { "\($0)=\(selector[$0]?.values ?? [])" }.joined(separator: ", ")) match")
    }

    // MARK: SSH access

    /// May the user log in to a node with these labels as `login`? The reasons name, role by
    /// role, the rule that matched or failed and how the logins' templates expanded.
    public func checkSSH(labels: [String: String], login: String) throws -> Decision {
        var reasons: [String] = []
        for role in roles {
            guard let deny = role.spec.deny else { continue }
            let denyLogins = expand(deny.logins ?? [])
            if denyLogins.contains(login) {
                reasons.append("role \(role.name): deny: login \(login) is denied\(Self.expansion(deny.logins ?? [], denyLogins))")
                return Decision(allowed: false, reasons: reasons)
            }
            if let selector = deny.nodeLabels, !selector.isEmpty {
                let (matched, why) = try labelsMatch(selector, labels)
                if matched {
                    reasons.append("role \(role.name): deny: \(why)")
                    return Decision(allowed: false, reasons: reasons)
                }
            }
        }
        for role in roles {
            guard let allow = role.spec.allow else {
                reasons.append("role \(role.name): allows nothing")
                continue
            }
            let (matched, why) = try labelsMatch(allow.nodeLabels ?? [:], labels)
            guard matched else {
                reasons.append("role \(role.name): allow: \(why)")
                continue
            }
            let logins = expand(allow.logins ?? [])
            guard logins.contains(login) else {
                reasons.append(
                    "role \(role.name): allow: \(why), but login \(login) is not among \(logins)\(Self.expansion(allow.logins ?? [], logins))")
                continue
            }
            reasons.append("role \(role.name): allow: \(why) and login \(login) is allowed\(Self.expansion(allow.logins ?? [], logins))")
            return Decision(allowed: true, reasons: reasons)
        }
        if roles.isEmpty { reasons.append("the user has no roles") }
        return Decision(allowed: false, reasons: reasons)
    }

    /// ` (logins [{{internal.logins}}, root] expand to [joe, root])` when a template was involved.
    static func expansion(_ templates: [String], _ expanded: [String]) -> String {
        templates.contains { $0.contains("{{") } ? " (logins \(templates) expand to \(expanded))" : ""
    }

    /// The logins a certificate should list: every login some role allows, less those a role
    /// denies (templates expanded).
    public var allowedLogins: [String] {
        let denied = Set(roles.flatMap { expand($0.spec.deny?.logins ?? []) })
        var result: [String] = []
        for login in roles.flatMap({ expand($0.spec.allow?.logins ?? []) }) where !denied.contains(login) && !result.contains(login) {
            result.append(login)
        }
        return result
    }

    /// Whether a node with these labels is reachable with at least one of `logins` (`tsh ls`).
    public func canReach(labels: [String: String], logins: [String]) -> Bool {
        logins.contains { (try? checkSSH(labels: labels, login: $0).allowed) == true }
    }

    // MARK: Database access

    /// May the user see and use an app with these labels? `app_labels` decide: a matching deny
    /// selector refuses; some role's allow selector must match (none: no apps).
    public func checkAppLabels(_ labels: [String: String]) throws -> Decision {
        var reasons: [String] = []
        for role in roles {
            if let selector = role.spec.deny?.appLabels, !selector.isEmpty {
                let (matched, why) = try labelsMatch(selector, labels, field: "app_labels", noun: "app")
                if matched {
                    reasons.append("role \(role.name): deny: \(why)")
                    return Decision(allowed: false, reasons: reasons)
                }
            }
        }
        for role in roles {
            let (matched, why) = try labelsMatch(role.spec.allow?.appLabels ?? [:], labels, field: "app_labels", noun: "app")
            reasons.append("role \(role.name): allow: \(why)")
            if matched { return Decision(allowed: true, reasons: reasons) }
        }
        if roles.isEmpty { reasons.append("the user has no roles") }
        return Decision(allowed: false, reasons: reasons)
    }

    /// May the user see (and so try) a database with these labels? `db_labels` decide: a matching
    /// deny selector hides it; some role's allow selector must match.
    public func checkDatabaseLabels(_ labels: [String: String]) throws -> Decision {
        var reasons: [String] = []
        for role in roles {
            if let selector = role.spec.deny?.dbLabels, !selector.isEmpty {
                let (matched, why) = try labelsMatch(selector, labels, field: "db_labels", noun: "database")
                if matched {
                    reasons.append("role \(role.name): deny: \(why)")
                    return Decision(allowed: false, reasons: reasons)
                }
            }
        }
        for role in roles {
            let (matched, why) = try labelsMatch(role.spec.allow?.dbLabels ?? [:], labels, field: "db_labels", noun: "database")
            reasons.append("role \(role.name): allow: \(why)")
            if matched { return Decision(allowed: true, reasons: reasons) }
        }
        if roles.isEmpty { reasons.append("the user has no roles") }
        return Decision(allowed: false, reasons: reasons)
    }

    /// May the user connect to a database with these labels as database user `user` to database
    /// `name`? A role allows it when its `db_labels` match and its `db_users` and `db_names`
    /// (templates expanded, `*` for any) hold both; a deny role naming the user or the name, or
    /// whose `db_labels` match, refuses. A nil `name` (a MySQL session without a default
    /// database: it may `USE` any later, so names cannot be enforced) skips `db_names`, except
    /// that a deny of `*` still refuses.
    public func checkDatabase(labels: [String: String], user: String, name: String?) throws -> Decision {
        var reasons: [String] = []
        for role in roles {
            guard let deny = role.spec.deny else { continue }
            let users = expand(deny.dbUsers ?? [])
            let names = expand(deny.dbNames ?? [])
            if users.contains(user) || users.contains("*") {
                reasons.append("role \(role.name): deny: db user \(user) is denied")
                return Decision(allowed: false, reasons: reasons)
            }
            if names.contains("*") || name.map(names.contains) == true {
                reasons.append("role \(role.name): deny: db name \(name ?? "(none)") is denied")
                return Decision(allowed: false, reasons: reasons)
            }
            if let selector = deny.dbLabels, !selector.isEmpty {
                let (matched, why) = try labelsMatch(selector, labels, field: "db_labels", noun: "database")
                if matched {
                    reasons.append("role \(role.name): deny: \(why)")
                    return Decision(allowed: false, reasons: reasons)
                }
            }
        }
        for role in roles {
            guard let allow = role.spec.allow else {
                reasons.append("role \(role.name): allows nothing")
                continue
            }
            let (matched, why) = try labelsMatch(allow.dbLabels ?? [:], labels, field: "db_labels", noun: "database")
            guard matched else {
                reasons.append("role \(role.name): allow: \(why)")
                continue
            }
            let users = expand(allow.dbUsers ?? [])
            guard users.contains(user) || users.contains("*") else {
                reasons.append("role \(role.name): allow: \(why), but db user \(user) is not among \(users)")
                continue
            }
            let names = expand(allow.dbNames ?? [])
            guard let name else {
                reasons.append("role \(role.name): allow: \(why), db user \(user) is allowed (no db name)")
                return Decision(allowed: true, reasons: reasons)
            }
            guard names.contains(name) || names.contains("*") else {
                reasons.append("role \(role.name): allow: \(why), but db name \(name) is not among \(names)")
                continue
            }
            reasons.append("role \(role.name): allow: \(why), db user \(user) and db name \(name) are allowed")
            return Decision(allowed: true, reasons: reasons)
        }
        if roles.isEmpty { reasons.append("the user has no roles") }
        return Decision(allowed: false, reasons: reasons)
    }

    // MARK: Kubernetes access

    /// May the user see and use a Kubernetes cluster with these labels? `kubernetes_labels`
    /// decide, as `app_labels` do for apps.
    public func checkKubeLabels(_ labels: [String: String]) throws -> Decision {
        var reasons: [String] = []
        for role in roles {
            if let selector = role.spec.deny?.kubernetesLabels, !selector.isEmpty {
                let (matched, why) = try labelsMatch(selector, labels, field: "kubernetes_labels", noun: "Kubernetes cluster")
                if matched {
                    reasons.append("role \(role.name): deny: \(why)")
                    return Decision(allowed: false, reasons: reasons)
                }
            }
        }
        for role in roles {
            let (matched, why) = try labelsMatch(
                role.spec.allow?.kubernetesLabels ?? [:], labels, field: "kubernetes_labels", noun: "Kubernetes cluster")
            reasons.append("role \(role.name): allow: \(why)")
            if matched { return Decision(allowed: true, reasons: reasons) }
        }
        if roles.isEmpty { reasons.append("the user has no roles") }
        return Decision(allowed: false, reasons: reasons)
    }

    /// The Kubernetes users and groups the roles grant on a cluster with these labels: the
    /// union of `kubernetes_users` and `kubernetes_groups` (templates expanded) of every allow
    /// block whose `kubernetes_labels` match, less those any deny block names.
    public func kubePrincipals(labels: [String: String]) throws -> (users: [String], groups: [String]) {
        var users: [String] = []
        var groups: [String] = []
        for role in roles {
            guard let allow = role.spec.allow else { continue }
            guard try labelsMatch(allow.kubernetesLabels ?? [:], labels, field: "kubernetes_labels", noun: "Kubernetes cluster").0 else {
                continue
            }
            for user in expand(allow.kubernetesUsers ?? []) where !users.contains(user) { users.append(user) }
            for group in expand(allow.kubernetesGroups ?? []) where !groups.contains(group) { groups.append(group) }
        }
        for role in roles {
            guard let deny = role.spec.deny else { continue }
            let deniedUsers = Set(expand(deny.kubernetesUsers ?? []))
            let deniedGroups = Set(expand(deny.kubernetesGroups ?? []))
            users.removeAll { deniedUsers.contains($0) || deniedUsers.contains("*") }
            groups.removeAll { deniedGroups.contains($0) || deniedGroups.contains("*") }
        }
        return (users, groups)
    }

    /// Whether `kubernetes_resources` narrow the pods the user may see on a cluster with these
    /// labels (so lists and watches of pods must be filtered with ``checkKubePod``): some deny
    /// block names pods, or no allow block whose `kubernetes_labels` match grants every pod.
    public func kubePodsRestricted(labels: [String: String]) throws -> Bool {
        if roles.contains(where: { !($0.spec.deny?.kubernetesResources ?? []).isEmpty }) { return true }
        for role in roles {
            guard let allow = role.spec.allow,
                try labelsMatch(allow.kubernetesLabels ?? [:], labels, field: "kubernetes_labels", noun: "Kubernetes cluster").0
            else { continue }
            if allow.kubernetesResources == nil { return false }
        }
        return true
    }

    /// May the user reach pod `namespace/name` on a cluster with these labels? A deny block whose
    /// `kubernetes_resources` match refuses; otherwise some allow block whose `kubernetes_labels`
    /// match must have no `kubernetes_resources` (every pod) or one that matches.
    public func checkKubePod(labels: [String: String], namespace: String, name: String) throws -> Decision {
        func matches(_ entry: Role.KubernetesResource) throws -> Bool {
            guard entry.kind == "pod" || entry.kind == "*" else { return false }
            return try valuePattern(entry.namespace, namespace) && valuePattern(entry.name, name)
        }
        var reasons: [String] = []
        for role in roles {
            for entry in role.spec.deny?.kubernetesResources ?? [] where try matches(entry) {
                reasons.append("role \(role.name): deny: kubernetes_resources \(entry.namespace)/\(entry.name) match pod \(namespace)/\(name)")
                return Decision(allowed: false, reasons: reasons)
            }
        }
        for role in roles {
            guard let allow = role.spec.allow,
                try labelsMatch(allow.kubernetesLabels ?? [:], labels, field: "kubernetes_labels", noun: "Kubernetes cluster").0
            else { continue }
            guard let resources = allow.kubernetesResources else {
                reasons.append("role \(role.name): allow: every pod (no kubernetes_resources)")
                return Decision(allowed: true, reasons: reasons)
            }
            if let entry = try resources.first(where: matches) {
                reasons.append("role \(role.name): allow: kubernetes_resources \(entry.namespace)/\(entry.name) match pod \(namespace)/\(name)")
                return Decision(allowed: true, reasons: reasons)
            }
            reasons.append("role \(role.name): allow: no kubernetes_resources entry matches pod \(namespace)/\(name)")
        }
        if reasons.isEmpty { reasons.append("no role's kubernetes_labels match the cluster") }
        return Decision(allowed: false, reasons: reasons)
    }

    /// A `kubernetes_resources` value: `*`, a `^regex$` or equality.
    func valuePattern(_ pattern: String, _ value: String) throws -> Bool {
        if Self.isExpression(pattern) {
            guard let expression = try? NSRegularExpression(pattern: pattern) else {
                throw TeleportError.badParameter("\(pattern.debugDescription) is not a valid regular expression")
            }
            return expression.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) != nil
        }
        return pattern == "*" || pattern == value
    }

    // MARK: API rules

    /// May the user apply `verb` to resources of `kind`?
    public func checkRule(kind: String, verb: String) -> Decision {
        func covers(_ rule: Role.Rule) -> Bool {
            (rule.resources.contains("*") || rule.resources.contains(kind)) && (rule.verbs.contains("*") || rule.verbs.contains(verb))
        }
        var reasons: [String] = []
        for role in roles {
            if let rule = role.spec.deny?.rules?.first(where: covers) {
                reasons.append("role \(role.name): deny rule \(rule.resources):\(rule.verbs)")
                return Decision(allowed: false, reasons: reasons)
            }
        }
        for role in roles {
            if let rule = role.spec.allow?.rules?.first(where: covers) {
                reasons.append("role \(role.name): allow rule \(rule.resources):\(rule.verbs)")
                return Decision(allowed: true, reasons: reasons)
            }
        }
        reasons.append("no role allows \(verb) on \(kind)")
        return Decision(allowed: false, reasons: reasons)
    }

    // MARK: Options

    /// The longest certificate the roles allow: the shortest `max_session_ttl`, else `fallback`.
    public func maxSessionTTL(fallback: TimeInterval) -> TimeInterval {
        let limits = roles.compactMap { $0.spec.options?.maxSessionTTL.flatMap(GoDuration.parse) }
        return limits.min().map { min($0, fallback) } ?? fallback
    }

    /// Whether every role allows port forwarding (a role saying `false` takes it away).
    public var permitsPortForwarding: Bool { roles.allSatisfy { $0.spec.options?.portForwarding ?? true } }

    /// Whether every role allows scp and sftp (`ssh_file_copy`; a role saying `false` takes it away).
    public var permitsFileCopy: Bool { roles.allSatisfy { $0.spec.options?.sshFileCopy ?? true } }

    /// Whether every role allows agent forwarding (`forward_agent` must be true in some role and
    /// false in none).
    public var permitsAgentForwarding: Bool {
        roles.contains { $0.spec.options?.forwardAgent == true } && !roles.contains { $0.spec.options?.forwardAgent == false }
    }

    /// The user's traits as templates name them: `logins` → `internal.logins`; `external.X` kept.
    public static func templateTraits(_ traits: [String: [String]]) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for (name, values) in traits {
            result[name.hasPrefix("internal.") || name.hasPrefix("external.") ? name : "internal." + name] = values
        }
        return result
    }
}
