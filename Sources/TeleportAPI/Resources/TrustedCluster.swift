public import Foundation

/// A trusted cluster (`kind: trusted_cluster`), created on a **leaf** cluster: it names a root
/// cluster (`metadata.name` is the root's cluster name), the root's proxy web address, the
/// single-use token the root's administrator made with `tctl tokens add --type=trusted_cluster`,
/// and how the root's roles map to this cluster's roles.
///
/// Creating it makes the leaf's auth service exchange CAs with the root through the root proxy's
/// web port (see `AuthServer+Trust`); the token is then spent and is not stored. `enabled: false`
/// (with `tctl create -f`) cuts the trust without removing it; `enabled: true` restores it without
/// a new token.
public struct TrustedCluster: Resource {
    public static let kind = "trusted_cluster"
    public static let currentVersion = "v2"
    /// Where trusted clusters are stored.
    public static let storagePrefix = "/trustedclusters/"
    public var kind: String
    public var version: String
    public var metadata: Metadata
    public var spec: Spec

    /// The trust's settings.
    public struct Spec: Codable, Sendable, Equatable {
        /// Whether the trust is in force (the root's users are accepted, the tunnel is open).
        public var enabled: Bool
        /// The root's `trusted_cluster` token; needed only to establish the trust, and never
        /// stored (the stored resource has it empty).
        public var token: String?
        /// The root proxy's web address, `host:port` (default port 3080).
        public var webProxyAddr: String
        /// The root proxy's reverse tunnel address; discovered through the web address's ping
        /// when absent.
        public var tunnelAddr: String?
        /// How the root's roles become this cluster's roles.
        public var roleMap: [RoleMapping]

        enum CodingKeys: String, CodingKey {
            case enabled, token
            case webProxyAddr = "web_proxy_addr"
            case tunnelAddr = "tunnel_addr"
            case roleMap = "role_map"
        }

        /// Creates a spec.
        public init(enabled: Bool = true, token: String?, webProxyAddr: String, tunnelAddr: String? = nil, roleMap: [RoleMapping]) {
            self.enabled = enabled
            self.token = token
            self.webProxyAddr = webProxyAddr
            self.tunnelAddr = tunnelAddr
            self.roleMap = roleMap
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            enabled = try container.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
            token = try container.decodeIfPresent(String.self, forKey: .token)
            webProxyAddr = try container.decode(String.self, forKey: .webProxyAddr)
            tunnelAddr = try container.decodeIfPresent(String.self, forKey: .tunnelAddr)
            roleMap = try container.decodeIfPresent([RoleMapping].self, forKey: .roleMap) ?? []
        }
    }

    /// One line of the role map: a root role (exact, `*`, or `^regex$`) and the local roles it
    /// becomes (with `$1`... for a regular expression's groups).
    public struct RoleMapping: Codable, Sendable, Equatable {
        /// The root's role: a name, `*` (every role), or `^regex$`.
        public var remote: String
        /// The leaf's roles.
        public var local: [String]

        /// Creates a mapping.
        public init(remote: String, local: [String]) {
            self.remote = remote
            self.local = local
        }
    }

    /// Creates a trusted cluster.
    public init(name: String, spec: Spec) {
        self.kind = Self.kind
        self.version = Self.currentVersion
        self.metadata = Metadata(name: name)
        self.spec = spec
    }

    public func validate() throws {
        try validateEnvelope()
        guard !spec.webProxyAddr.isEmpty else {
            throw TeleportError.badParameter("trusted_cluster \(name): spec.web_proxy_addr is missing (the root proxy's web address, host:3080)")
        }
        _ = try HostPort.parse(spec.webProxyAddr, defaultPort: 3080, key: "trusted_cluster \(name): spec.web_proxy_addr")
        if let tunnel = spec.tunnelAddr, !tunnel.isEmpty {
            _ = try HostPort.parse(tunnel, defaultPort: 3024, key: "trusted_cluster \(name): spec.tunnel_addr")
        }
        for (index, mapping) in spec.roleMap.enumerated() {
            let field = "trusted_cluster \(name): spec.role_map[\(index)]"
            guard !mapping.remote.isEmpty else { throw TeleportError.badParameter("\(field).remote is empty") }
            guard !mapping.local.isEmpty else {
                throw TeleportError.badParameter("\(field).local is empty (name the roles of this cluster that \(mapping.remote) becomes)")
            }
            try RoleMap.checkPattern(mapping.remote, field: "\(field).remote")
            for role in mapping.local where role.isEmpty {
                throw TeleportError.badParameter("\(field).local holds an empty role name")
            }
        }
    }

    /// The same resource with the token removed (what is stored and shown).
    public var withoutToken: TrustedCluster {
        var copy = self
        copy.spec.token = nil
        return copy
    }
}
