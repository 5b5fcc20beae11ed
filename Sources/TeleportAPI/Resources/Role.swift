import Foundation

/// A role (`kind: role`): what its holders may do. The engine that evaluates it is `TeleportAccess`.
public struct Role: Resource {
    public static let kind = "role"
    public static let currentVersion = "v7"
    public var kind: String
    public var version: String
    public var metadata: Metadata
    public var spec: Spec

    /// Options, allow and deny.
    public struct Spec: Codable, Sendable, Equatable {
        /// Session options.
        public var options: Options?
        /// What the role grants.
        public var allow: Conditions?
        /// What the role takes away; deny always wins.
        public var deny: Conditions?

        /// Creates a spec.
        public init(options: Options? = nil, allow: Conditions? = nil, deny: Conditions? = nil) {
            self.options = options
            self.allow = allow
            self.deny = deny
        }
    }

    /// Session options of a role.
    public struct Options: Codable, Sendable, Equatable {
        /// The longest certificate TTL, as a duration string (`30h`, `8h0m0s`).
        public var maxSessionTTL: String?
        /// Whether agent forwarding is allowed.
        public var forwardAgent: Bool?
        /// Whether port forwarding is allowed.
        public var portForwarding: Bool?
        /// Whether scp/sftp is allowed.
        public var sshFileCopy: Bool?
        /// Idle timeout, as a duration string.
        public var clientIdleTimeout: String?
        /// Whether sessions end when the certificate expires.
        public var disconnectExpiredCert: Bool?

        enum CodingKeys: String, CodingKey {
            case maxSessionTTL = "max_session_ttl"
            case forwardAgent = "forward_agent"
            case portForwarding = "port_forwarding"
            case sshFileCopy = "ssh_file_copy"
            case clientIdleTimeout = "client_idle_timeout"
            case disconnectExpiredCert = "disconnect_expired_cert"
        }

        /// Creates options.
        public init(maxSessionTTL: String? = nil, forwardAgent: Bool? = nil, portForwarding: Bool? = nil) {
            self.maxSessionTTL = maxSessionTTL
            self.forwardAgent = forwardAgent
            self.portForwarding = portForwarding
        }
    }

    /// The conditions of an allow or deny block.
    public struct Conditions: Codable, Sendable, Equatable {
        /// OS logins, with trait templates such as `{{internal.logins}}`.
        public var logins: [String]?
        /// Node label selectors: key → one value or a list; `*` and `^regex$` allowed.
        public var nodeLabels: [String: LabelValues]?
        /// API access rules.
        public var rules: [Rule]?
        /// Database label selectors (as `node_labels`, for `db_server` records).
        public var dbLabels: [String: LabelValues]?
        /// Database users, with trait templates such as `{{internal.db_users}}`.
        public var dbUsers: [String]?
        /// Database names, with trait templates such as `{{internal.db_names}}`.
        public var dbNames: [String]?
        /// Application label selectors (as `node_labels`, for `app_server` records).
        public var appLabels: [String: LabelValues]?
        /// Kubernetes cluster label selectors (as `node_labels`, for `kube_server` records).
        public var kubernetesLabels: [String: LabelValues]?
        /// Kubernetes groups the user's requests are impersonated into, with trait templates.
        public var kubernetesGroups: [String]?
        /// Kubernetes users the user's requests are impersonated as, with trait templates.
        public var kubernetesUsers: [String]?
        /// Leaf cluster label selectors (trusted clusters: which labelled `remote_cluster`s a user
        /// of this cluster sees and reaches; a leaf without labels is open to every user).
        public var clusterLabels: [String: LabelValues]?
        /// Kubernetes objects (pods by namespace and name, as in role v7) the blocks apply to;
        /// nil in an allow block: every pod of the clusters its labels select.
        public var kubernetesResources: [KubernetesResource]?

        enum CodingKeys: String, CodingKey {
            case logins
            case nodeLabels = "node_labels"
            case rules
            case dbLabels = "db_labels"
            case dbUsers = "db_users"
            case dbNames = "db_names"
            case appLabels = "app_labels"
            case kubernetesLabels = "kubernetes_labels"
            case kubernetesGroups = "kubernetes_groups"
            case kubernetesUsers = "kubernetes_users"
            case kubernetesResources = "kubernetes_resources"
            case clusterLabels = "cluster_labels"
        }

        /// Creates conditions.
        public init(
            logins: [String]? = nil, nodeLabels: [String: LabelValues]? = nil, rules: [Rule]? = nil, dbLabels: [String: LabelValues]? = nil,
            dbUsers: [String]? = nil, dbNames: [String]? = nil, appLabels: [String: LabelValues]? = nil
        ) {
            self.logins = logins
            self.nodeLabels = nodeLabels
            self.rules = rules
            self.dbLabels = dbLabels
            self.dbUsers = dbUsers
            self.dbNames = dbNames
            self.appLabels = appLabels
        }
    }

    /// One `kubernetes_resources` entry: a kind (`pod` or `*`), a namespace and a name, each a
    /// value, `*` or a `^regex$`.
    public struct KubernetesResource: Codable, Sendable, Equatable {
        public var kind: String
        public var namespace: String
        public var name: String

        /// Creates an entry.
        public init(kind: String, namespace: String, name: String) {
            self.kind = kind
            self.namespace = namespace
            self.name = name
        }
    }

    /// One API rule: these verbs on these resources.
    public struct Rule: Codable, Sendable, Equatable {
        /// Resource kinds, or `*`.
        public var resources: [String]
        /// Verbs (`list`, `read`, `create`, `update`, `delete`), or `*`.
        public var verbs: [String]

        /// Creates a rule.
        public init(resources: [String], verbs: [String]) {
            self.resources = resources
            self.verbs = verbs
        }
    }

    /// Creates a role.
    public init(name: String, spec: Spec) {
        self.kind = Self.kind
        self.version = Self.currentVersion
        self.metadata = Metadata(name: name)
        self.spec = spec
    }

    public func validate() throws {
        try validateEnvelope()
        for (block, conditions) in [("allow", spec.allow), ("deny", spec.deny)] {
            for (field, selector) in [("node_labels", conditions?.nodeLabels), ("db_labels", conditions?.dbLabels), ("app_labels", conditions?.appLabels),
                ("kubernetes_labels", conditions?.kubernetesLabels), ("cluster_labels", conditions?.clusterLabels),
            ] {
                for (key, values) in selector ?? [:] {
                    for pattern in values.values where pattern.hasPrefix("^") && pattern.hasSuffix("$") {
                        guard (try? NSRegularExpression(pattern: pattern)) != nil else {
                            throw TeleportError.badParameter(
                                "role \(name): spec.\(block).\(field).\(key): \(pattern.debugDescription) is not a valid regular expression")
                        }
                    }
                }
            }
            for (field, values) in [
                ("db_users", conditions?.dbUsers), ("db_names", conditions?.dbNames), ("kubernetes_groups", conditions?.kubernetesGroups),
                ("kubernetes_users", conditions?.kubernetesUsers),
            ] {
                for value in values ?? [] {
                    try Self.validateNameOrTemplate(value, field: "spec.\(block).\(field)", role: name)
                }
            }
        }
        for (block, conditions) in [("allow", spec.allow), ("deny", spec.deny)] {
            for (index, entry) in (conditions?.kubernetesResources ?? []).enumerated() {
                guard ["pod", "*"].contains(entry.kind) else {
                    throw TeleportError.badParameter(
                        "role \(name): spec.\(block).kubernetes_resources[\(index)].kind: \(entry.kind.debugDescription) is not pod or *")
                }
                for (field, value) in [("namespace", entry.namespace), ("name", entry.name)]
                where value.hasPrefix("^") && value.hasSuffix("$") && (try? NSRegularExpression(pattern: value)) == nil {
                    throw TeleportError.badParameter(
                        "role \(name): spec.\(block).kubernetes_resources[\(index)].\(field): \(value.debugDescription) is not a valid regular expression")
                }
            }
        }
        if let idle = spec.options?.clientIdleTimeout, GoDuration.parse(idle) == nil {
            throw TeleportError.badParameter(
                "role \(name): spec.options.client_idle_timeout: \(idle.debugDescription) is not a duration such as 30m")
        }
        if let ttl = spec.options?.maxSessionTTL, GoDuration.parse(ttl) == nil {
            throw TeleportError.badParameter("role \(name): spec.options.max_session_ttl: \(ttl.debugDescription) is not a duration such as 8h")
        }
    }
}

extension Role {
    /// A `db_users`/`db_names` entry: `*`, a `{{internal.X}}`/`{{external.X}}` template, or a
    /// name of 1–63 printable characters without spaces or braces.
    static func validateNameOrTemplate(_ value: String, field: String, role: String) throws {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("{{") || trimmed.hasSuffix("}}") || trimmed.contains("{{") {
            let inner = trimmed.hasPrefix("{{") && trimmed.hasSuffix("}}") ? trimmed.dropFirst(2).dropLast(2).trimmingCharacters(in: .whitespaces) : ""
            let parts = inner.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, ["internal", "external"].contains(String(parts[0])), !parts[1].isEmpty,
                parts[1].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" })
            else {
                throw TeleportError.badParameter(
                    "role \(role): \(field): \(value.debugDescription) is not a template such as {{internal.db_users}} or {{external.db_names}}")
            }
            return
        }
        guard (1...63).contains(trimmed.utf8.count), trimmed.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "{" && $0 != "}" })
        else {
            throw TeleportError.badParameter(
                "role \(role): \(field): \(value.debugDescription) is not a name (1-63 printable characters, no spaces), * or a template")
        }
    }
}

/// A label selector's values: YAML accepts one string or a list of strings.
public struct LabelValues: Codable, Sendable, Equatable {
    /// The accepted values.
    public var values: [String]

    /// Creates values.
    public init(_ values: [String]) { self.values = values }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let one = try? container.decode(String.self) {
            values = [one]
        } else {
            values = try container.decode([String].self)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if values.count == 1 {
            try container.encode(values[0])
        } else {
            try container.encode(values)
        }
    }
}
