public import TeleportAPI
public import TeleportBackend

/// The typed stores of every kind the cluster keeps, over one backend.
public struct ClusterStores: Sendable {
    /// The backend under all stores.
    public let backend: any Backend
    /// Users.
    public let users: ResourceStore<User>
    /// Roles.
    public let roles: ResourceStore<Role>
    /// Join tokens.
    public let tokens: ResourceStore<ProvisionToken>
    /// Registered nodes (presence).
    public let nodes: ResourceStore<ServerNode>
    /// The user and host CAs.
    public let certAuthorities: ResourceStore<CertAuthority>
    /// The cluster name (one item).
    public let clusterName: ResourceStore<ClusterNameResource>
    /// Locks.
    public let locks: ResourceStore<Lock>

    /// Creates the stores.
    public init(backend: any Backend) {
        self.backend = backend
        users = ResourceStore(backend: backend, prefix: "/users/")
        roles = ResourceStore(backend: backend, prefix: "/roles/")
        tokens = ResourceStore(backend: backend, prefix: "/tokens/")
        nodes = ResourceStore(backend: backend, prefix: "/nodes/default/")
        certAuthorities = ResourceStore(backend: backend, prefix: "/authorities/")
        clusterName = ResourceStore(backend: backend, prefix: "/cluster_configuration/")
        locks = ResourceStore(backend: backend, prefix: "/locks/")
    }

    /// Every resource of `kind` (canonical kind name).
    public func list(kind: String) async throws -> [any Resource] {
        switch kind {
        case User.kind: return try await users.list()
        case Role.kind: return try await roles.list()
        case ProvisionToken.kind: return try await tokens.list()
        case ServerNode.kind: return try await nodes.list()
        case CertAuthority.kind: return try await certAuthorities.list()
        case ClusterNameResource.kind: return try await clusterName.list()
        case Lock.kind: return try await locks.list()
        default: throw TeleportError.badParameter("unknown resource kind \"\(kind)\"")
        }
    }

    /// The resource `kind/name`.
    public func get(kind: String, name: String) async throws -> any Resource {
        switch kind {
        case User.kind: return try await users.get(name)
        case Role.kind: return try await roles.get(name)
        case ProvisionToken.kind: return try await tokens.get(name)
        case ServerNode.kind: return try await nodes.get(name)
        case CertAuthority.kind: return try await certAuthorities.get(name)
        case ClusterNameResource.kind: return try await clusterName.get(name)
        case Lock.kind: return try await locks.get(name)
        default: throw TeleportError.badParameter("unknown resource kind \"\(kind)\"")
        }
    }

    /// Creates (or with `upsert`, creates or replaces) a resource.
    @discardableResult public func put(_ resource: AnyResource, upsert: Bool) async throws -> any Resource {
        switch resource {
        case .user(let value): return upsert ? try await users.upsert(value) : try await users.create(value)
        case .role(let value): return upsert ? try await roles.upsert(value) : try await roles.create(value)
        case .token(let value): return upsert ? try await tokens.upsert(value) : try await tokens.create(value)
        case .node(let value): return upsert ? try await nodes.upsert(value) : try await nodes.create(value)
        case .certAuthority(let value):
            return upsert ? try await certAuthorities.upsert(value) : try await certAuthorities.create(value)
        case .clusterName(let value):
            return upsert ? try await clusterName.upsert(value) : try await clusterName.create(value)
        case .lock(let value): return upsert ? try await locks.upsert(value) : try await locks.create(value)
        }
    }

    /// Deletes `kind/name`; a role that users still hold is refused (``requireUnused(role:)``).
    public func delete(kind: String, name: String) async throws {
        switch kind {
        case User.kind: try await users.delete(name)
        case Role.kind:
            try await requireUnused(role: name)
            try await roles.delete(name)
        case ProvisionToken.kind: try await tokens.delete(name)
        case ServerNode.kind: try await nodes.delete(name)
        case CertAuthority.kind: try await certAuthorities.delete(name)
        case ClusterNameResource.kind: try await clusterName.delete(name)
        case Lock.kind: try await locks.delete(name)
        default: throw TeleportError.badParameter("unknown resource kind \"\(kind)\"")
        }
    }
}
