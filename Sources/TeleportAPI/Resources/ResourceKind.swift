public import Foundation
import Synchronization

/// The kind of an agent's presence record (`node` today; `db_server`, `app_server`, `kube_server`
/// later): an open set, so a new agent kind is a new value, not an edit of every `switch`.
public struct ServerKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The resource kind of the presence record, e.g. `node`.
    public let rawValue: String

    /// A presence kind named `rawValue`.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// SSH nodes (``ServerNode``).
    public static let node = ServerKind(rawValue: ServerNode.kind)
    /// Proxies (``ServerProxy``): agents read them to keep a tunnel to each.
    public static let proxy = ServerKind(rawValue: ServerProxy.kind)
    /// Databases (``DatabaseServer``), one record per database a database service serves.
    public static let database = ServerKind(rawValue: DatabaseServer.kind)
    /// Web applications (``AppServer``), one record per app an app service serves.
    public static let app = ServerKind(rawValue: AppServer.kind)
    /// Kubernetes clusters (``KubeServer``), one record per cluster a Kubernetes service serves.
    public static let kube = ServerKind(rawValue: KubeServer.kind)

    /// The kind's name.
    public var description: String { rawValue }
}

/// Everything the API, `tctl` and the auth service know about one resource kind: its type (and so
/// its codec and validator), the names a person may type for it, where it is stored and which
/// operations it allows. A new kind is a new ``Resource`` type plus one ``ResourceKinds/register(_:)``
/// call (or one entry in ``ResourceKinds/builtIn``); no `switch` over kinds needs an edit.
public struct ResourceKind: Sendable {
    /// The canonical kind, as written in YAML (`user`, `cert_authority`, ...).
    public let name: String
    /// Other names a person may type: plurals and short forms (`users`, `ca`, ...).
    public let aliases: [String]
    /// The resource type: its `Codable` conformance is the codec, `validate()` the validator.
    public let type: any Resource.Type
    /// The backend key prefix its records are stored under (ends with `/`).
    public let storagePrefix: String
    /// Why `tctl edit` and conditional updates cannot replace it in place; nil when they can.
    public let editRefusal: String?
    /// Why it cannot be deleted on a running cluster; nil when it can.
    public let deleteRefusal: String?
    /// Whether `tctl get all` (the backup) includes it; presence records come back by themselves.
    public let inBackup: Bool
    /// Set for agents' presence records (heartbeats); such records are read by the proxies.
    public let serverKind: ServerKind?

    /// Describes a kind stored under `storagePrefix`.
    public init(
        _ type: any Resource.Type, aliases: [String], storagePrefix: String, editRefusal: String? = nil, deleteRefusal: String? = nil,
        inBackup: Bool = true, serverKind: ServerKind? = nil
    ) {
        self.name = type.kind
        self.aliases = aliases
        self.type = type
        self.storagePrefix = storagePrefix.hasSuffix("/") ? storagePrefix : storagePrefix + "/"
        self.editRefusal = editRefusal
        self.deleteRefusal = deleteRefusal
        self.inBackup = inBackup
        self.serverKind = serverKind
    }

    /// The version written when a document gives none.
    public var currentVersion: String { type.currentVersion }

    /// Whether it can be replaced in place.
    public var isEditable: Bool { editRefusal == nil }

    /// Decodes one resource of this kind from JSON (the strict checks are the caller's).
    public func decode(json data: Data, decoder: JSONDecoder) throws -> any Resource {
        try type.decodeJSON(data, decoder: decoder)
    }
}

extension Resource {
    /// Decodes a value of this type from JSON (reached through an existential metatype).
    static func decodeJSON(_ data: Data, decoder: JSONDecoder) throws -> any Resource {
        try decoder.decode(Self.self, from: data)
    }
}

/// The registry of resource kinds: the built-in ones, in the order `tctl get all` prints them,
/// then those registered later (by the module that adds an agent kind, before it serves).
public enum ResourceKinds {
    /// The kinds every cluster knows.
    public static let builtIn: [ResourceKind] = [
        ResourceKind(
            ClusterNameResource.self, aliases: ["cluster_names"], storagePrefix: "/cluster_configuration/",
            editRefusal: "cluster_name cannot be edited: a cluster's name is fixed at its first start",
            deleteRefusal: "cluster_name cannot be deleted on a running cluster"),
        ResourceKind(
            CertAuthority.self, aliases: ["cert_authorities", "cert_authoritys", "ca", "cas"], storagePrefix: "/authorities/",
            editRefusal: "cert_authority cannot be edited: its private keys are never sent out to be edited",
            deleteRefusal: "cert_authority cannot be deleted on a running cluster"),
        ResourceKind(Role.self, aliases: ["roles"], storagePrefix: "/roles/"),
        ResourceKind(User.self, aliases: ["users"], storagePrefix: "/users/"),
        ResourceKind(
            ProvisionToken.self, aliases: ["tokens"], storagePrefix: "/tokens/",
            editRefusal:
                "tokens cannot be edited: only their hashes are stored; add a new one (tctl tokens add) and revoke the old one (tctl tokens rm)"
        ),
        ResourceKind(ServerNode.self, aliases: ["nodes"], storagePrefix: "/nodes/default/", inBackup: false, serverKind: .node),
        ResourceKind(Lock.self, aliases: ["locks"], storagePrefix: "/locks/"),
        ResourceKind(ServerProxy.self, aliases: ["proxies"], storagePrefix: ServerProxy.storagePrefix, inBackup: false, serverKind: .proxy),
        ResourceKind(
            DatabaseServer.self, aliases: ["db_servers", "databases", "database", "db"], storagePrefix: DatabaseServer.storagePrefix,
            inBackup: false, serverKind: .database),
        ResourceKind(
            AppServer.self, aliases: ["app_servers", "apps", "app"], storagePrefix: AppServer.storagePrefix, inBackup: false,
            serverKind: .app),
        ResourceKind(
            KubeServer.self, aliases: ["kube_servers", "kube_clusters", "kube_cluster", "kube"], storagePrefix: KubeServer.storagePrefix,
            inBackup: false, serverKind: .kube),
        ResourceKind(OIDCConnector.self, aliases: ["oidcs", "oidc_connector", "oidc_connectors"], storagePrefix: "/connectors/oidc/"),
        ResourceKind(GitHubConnector.self, aliases: ["githubs", "github_connector", "github_connectors"], storagePrefix: "/connectors/github/"),
        ResourceKind(
            TrustedCluster.self, aliases: ["trusted_clusters", "tc"], storagePrefix: TrustedCluster.storagePrefix,
            editRefusal: "trusted_cluster cannot be edited in place: change it with tctl create -f FILE"),
        ResourceKind(
            RemoteCluster.self, aliases: ["remote_clusters", "rc"], storagePrefix: RemoteCluster.storagePrefix,
            editRefusal: "remote_cluster records are written by the root when a leaf establishes trust; remove one with tctl rm rc/NAME",
            inBackup: false),
    ]

    /// What `tctl get connectors` lists: every single sign-on connector kind.
    public static let connectorKinds = [OIDCConnector.kind, GitHubConnector.kind]

    private static let registered = Mutex<[ResourceKind]>([])

    /// Adds a kind. Its name and aliases must be new (a clash is a programming error reported as
    /// `alreadyExists`, so two modules cannot silently claim one name).
    public static func register(_ kind: ResourceKind) throws {
        try registered.withLock { list in
            let taken = Set((builtIn + list).flatMap { [$0.name] + $0.aliases })
            if let clash = ([kind.name] + kind.aliases).first(where: { taken.contains($0.lowercased()) }) {
                throw TeleportError.alreadyExists("the resource kind name \"\(clash)\" is already registered")
            }
            list.append(kind)
        }
    }

    /// Every kind: the built-in ones, then the registered ones.
    public static var all: [ResourceKind] { builtIn + registered.withLock { $0 } }

    /// The kind for what a person may type (`users`, `user`, `CA`, ...); nil when unknown.
    public static func named(_ typed: String) -> ResourceKind? {
        let lower = typed.lowercased()
        return all.first { $0.name == lower || $0.aliases.contains(lower) }
    }

    /// The kind of a value's type; nil when it is not registered.
    public static func of(_ resource: any Resource) -> ResourceKind? {
        let type = Swift.type(of: resource)
        return all.first { ObjectIdentifier($0.type) == ObjectIdentifier(type) }
    }

    /// The kinds of agents' presence records.
    public static var serverKinds: [ServerKind] { all.compactMap(\.serverKind) }
}
