/// A join token (`kind: token`): lets a new host join the cluster as the roles it names.
///
/// The token's value is its name; the stores keep only a hash of it at rest (see `TokenStore`).
public struct ProvisionToken: Resource {
    public static let kind = "token"
    public static let currentVersion = "v2"
    public var kind: String
    public var version: String
    public var metadata: Metadata
    public var spec: Spec

    /// The roles the token grants.
    public struct Spec: Codable, Sendable, Equatable {
        /// System roles: `node`, `proxy`, `auth`.
        public var roles: [SystemRole]
        /// Creates a spec.
        public init(roles: [SystemRole]) { self.roles = roles }
    }

    /// Creates a token.
    public init(name: String, roles: [SystemRole], metadata: Metadata? = nil) {
        self.kind = Self.kind
        self.version = Self.currentVersion
        self.metadata = metadata ?? Metadata(name: name)
        self.metadata.name = name
        self.spec = Spec(roles: roles)
    }

    public func validate() throws {
        guard kind == Self.kind else {
            throw TeleportError.badParameter("resource kind is \(kind), expected \(Self.kind)")
        }
        guard !metadata.name.isEmpty else { throw TeleportError.badParameter("token: metadata.name is missing") }
        guard !spec.roles.isEmpty else { throw TeleportError.badParameter("token: spec.roles is empty") }
    }
}

/// The built-in roles of cluster members (not user roles).
public enum SystemRole: String, Codable, Sendable, CaseIterable, Comparable {
    /// The auth service.
    case auth = "Auth"
    /// An SSH node.
    case node = "Node"
    /// A proxy.
    case proxy = "Proxy"
    /// The local administrator (`tctl` on the auth host).
    case admin = "Admin"
    /// A database service (`teleport start --roles=db`): heartbeats `db_server` records.
    case db = "Db"
    /// An application service (`teleport start --roles=app`): heartbeats `app_server` records.
    case app = "App"
    /// A Kubernetes service (`teleport start --roles=kube`): heartbeats `kube_server` records.
    case kube = "Kube"
    /// A leaf cluster establishing trust with this (root) cluster (`tctl tokens add
    /// --type=trusted_cluster`): never a host identity; such a token is spent by one trust exchange.
    case trustedCluster = "Trusted_cluster"

    /// Parses `node`, `Node`, `NODE`, ...
    public init?(caseInsensitive value: String) {
        guard let role = Self.allCases.first(where: { $0.rawValue.lowercased() == value.lowercased() }) else {
            return nil
        }
        self = role
    }

    public init(from decoder: any Decoder) throws {
        let value = try decoder.singleValueContainer().decode(String.self)
        guard let role = SystemRole(caseInsensitive: value) else {
            throw TeleportError.badParameter("unknown system role \"\(value)\" (expected one of auth, node, proxy)")
        }
        self = role
    }

    public static func < (lhs: SystemRole, rhs: SystemRole) -> Bool { lhs.rawValue < rhs.rawValue }
}
