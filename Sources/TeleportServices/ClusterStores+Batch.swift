public import TeleportAPI
public import TeleportBackend

/// Writes of several resources at once, and conditional updates.
extension ClusterStores {
    /// The backend item that stores `resource` (its key, JSON and expiry; never its revision).
    public func item(for resource: AnyResource) throws -> Item {
        let entry = try Self.entry(of: resource)
        func item<R: Resource>(_ value: R) throws -> Item { try store(R.self, entry).item(for: value) }
        return try item(resource.value)
    }

    /// True when `kind/name` is stored (and not expired).
    public func exists(kind: String, name: String) async throws -> Bool {
        do {
            _ = try await get(kind: kind, name: name)
            return true
        } catch let error as TeleportError where error.code == .notFound {
            return false
        }
    }

    /// Stores every resource, all or none (one backend transaction), replacing those that exist.
    /// The resources must have been validated and checked by the caller.
    public func putAll(_ resources: [AnyResource]) async throws {
        try await backend.putBatch(try resources.map(item(for:)))
    }

    /// Creates every resource only if none of them exists, all or none (the backend's conditional
    /// batch): `alreadyExists` naming the backend key of the first that does.
    public func createAll(_ resources: [AnyResource]) async throws {
        try await backend.createBatch(try resources.map(item(for:)))
    }

    /// Replaces a stored resource only if it is still at `metadata.revision` (which must be set):
    /// `compareFailed` when someone changed it since it was read, `notFound` when it was deleted.
    @discardableResult public func update(_ resource: AnyResource) async throws -> any Resource {
        guard resource.value.metadata.revision?.isEmpty == false else {
            throw TeleportError.badParameter(
                "\(resource.kind) \"\(resource.name)\": an update needs metadata.revision from the version it changes")
        }
        do {
            let entry = try Self.entry(of: resource)
            func update<R: Resource>(_ value: R) async throws -> any Resource { try await store(R.self, entry).update(value) }
            return try await update(resource.value)
        } catch let error as TeleportError where error.code == .notFound {
            throw TeleportError.notFound("\(resource.kind) \"\(resource.name)\" no longer exists")
        } catch let error as TeleportError where error.code == .compareFailed {
            throw TeleportError.compareFailed("\(resource.kind) \"\(resource.name)\" was changed by someone else since it was read")
        }
    }
}
