public import Foundation
public import TeleportAPI
public import TeleportBackend

/// Typed access to one resource kind stored as JSON under a key prefix of the backend.
public struct ResourceStore<R: Resource>: Sendable {
    /// The backend.
    public let backend: any Backend
    /// The key prefix, e.g. `/users/` (ends with `/`).
    public let prefix: String

    /// Creates a store for resources under `prefix`.
    public init(backend: any Backend, prefix: String) {
        self.backend = backend
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
    }

    func key(_ name: String) -> String { prefix + name }

    func item(for resource: R) throws -> Item {
        var stored = resource
        stored.metadata.revision = nil
        return Item(key: key(resource.metadata.name), value: try ResourceCodec.json(stored), expires: resource.metadata.expires)
    }

    func decode(_ item: Item) throws -> R {
        do {
            var resource = try ResourceCodec.jsonDecoder().decode(R.self, from: item.value)
            resource.metadata.revision = item.revision
            if resource.metadata.expires == nil { resource.metadata.expires = item.expires }
            return resource
        } catch {
            throw TeleportError.internalError("stored \(R.kind) at \(item.key) cannot be read: \(error)")
        }
    }

    /// The resource called `name`, or `notFound`.
    public func get(_ name: String) async throws -> R {
        do {
            return try decode(try await backend.get(key(name)))
        } catch let error as TeleportError where error.code == .notFound {
            throw TeleportError.notFound("\(R.kind) \"\(name)\" is not found")
        }
    }

    /// Every resource of this kind, by name.
    public func list(limit: Int = 0) async throws -> [R] {
        try await backend.getRange(prefix: prefix, limit: limit).map(decode)
    }

    /// Resources whose name is at or after `startName`, at most `limit` (for pagination).
    public func page(startName: String, limit: Int) async throws -> [R] {
        try await backend.getRange(startKey: key(startName), endKey: Keys.rangeEnd(prefix), limit: limit).map(decode)
    }

    /// Stores a new resource; `alreadyExists` when the name is taken.
    @discardableResult public func create(_ resource: R) async throws -> R {
        try resource.validate()
        do {
            return try decode(try await backend.create(item(for: resource)))
        } catch let error as TeleportError where error.code == .alreadyExists {
            throw TeleportError.alreadyExists("\(R.kind) \"\(resource.name)\" already exists (use -f to overwrite)")
        }
    }

    /// Stores a resource whether or not it exists.
    @discardableResult public func upsert(_ resource: R) async throws -> R {
        try resource.validate()
        return try decode(try await backend.put(item(for: resource)))
    }

    /// Replaces an existing resource only if it still is at `resource.metadata.revision`
    /// (read-modify-write without losing a concurrent change).
    @discardableResult public func update(_ resource: R) async throws -> R {
        try resource.validate()
        let current = try await backend.get(key(resource.name))
        if let revision = resource.metadata.revision, revision != current.revision {
            throw TeleportError.compareFailed("\(R.kind) \"\(resource.name)\" was changed by someone else; read it again")
        }
        return try decode(try await backend.compareAndSwap(expected: current, replacement: item(for: resource)))
    }

    /// Deletes the resource; `notFound` when absent.
    public func delete(_ name: String) async throws {
        do {
            try await backend.delete(key(name))
        } catch let error as TeleportError where error.code == .notFound {
            throw TeleportError.notFound("\(R.kind) \"\(name)\" is not found")
        }
    }
}
