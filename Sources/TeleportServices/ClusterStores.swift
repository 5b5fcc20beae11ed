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
    /// The user, host and database CAs.
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
        let entry = try Self.entry(kind)
        return try await entry.type.list(in: self, entry)
    }

    /// The resource `kind/name`.
    public func get(kind: String, name: String) async throws -> any Resource {
        let entry = try Self.entry(kind)
        return try await entry.type.get(name, in: self, entry)
    }

    /// Creates (or with `upsert`, creates or replaces) a resource.
    @discardableResult public func put(_ resource: AnyResource, upsert: Bool) async throws -> any Resource {
        let entry = try Self.entry(of: resource)
        func put<R: Resource>(_ value: R) async throws -> any Resource {
            let store = store(R.self, entry)
            return upsert ? try await store.upsert(value) : try await store.create(value)
        }
        return try await put(resource.value)
    }

    /// Deletes `kind/name`; a role that users still hold is refused (``requireUnused(role:)``).
    public func delete(kind: String, name: String) async throws {
        let entry = try Self.entry(kind)
        if entry.name == Role.kind { try await requireUnused(role: name) }
        try await entry.type.delete(name, in: self, entry)
    }

    /// The store of a registered kind (``ResourceKind/storagePrefix`` over this backend).
    func store<R: Resource>(_ type: R.Type, _ entry: ResourceKind) -> ResourceStore<R> {
        ResourceStore(backend: backend, prefix: entry.storagePrefix)
    }

    /// The registry's entry for `kind`, or `badParameter` naming the kind.
    static func entry(_ kind: String) throws -> ResourceKind {
        guard let entry = ResourceKinds.named(kind) else { throw TeleportError.badParameter("unknown resource kind \"\(kind)\"") }
        return entry
    }

    /// The registry's entry for the kind of `resource`.
    static func entry(of resource: AnyResource) throws -> ResourceKind {
        guard let entry = resource.resourceKind else {
            throw TeleportError.badParameter("unknown resource kind \"\(resource.kind)\"")
        }
        return entry
    }
}

// The operations on a kind known only by its registry entry: static members reached through the
// entry's existential metatype bind `Self` to the concrete type.
extension Resource {
    static func list(in stores: ClusterStores, _ entry: ResourceKind) async throws -> [any Resource] {
        try await stores.store(Self.self, entry).list()
    }

    static func get(_ name: String, in stores: ClusterStores, _ entry: ResourceKind) async throws -> any Resource {
        try await stores.store(Self.self, entry).get(name)
    }

    static func delete(_ name: String, in stores: ClusterStores, _ entry: ResourceKind) async throws {
        try await stores.store(Self.self, entry).delete(name)
    }
}
