public import Foundation
public import TeleportAPI

/// One stored value: a key, its bytes, an optional expiry and a revision that changes on every write.
public struct Item: Sendable, Equatable {
    /// The full key, e.g. `/users/joe/params`.
    public var key: String
    /// The stored bytes (a resource's JSON, as a rule).
    public var value: Data
    /// When the item stops existing; `nil` means never.
    public var expires: Date?
    /// An opaque revision, new on every write; compare-and-swap and optimistic locking use it.
    public var revision: String

    /// Creates an item. `revision` is set by the backend on write; callers may leave it empty.
    public init(key: String, value: Data, expires: Date? = nil, revision: String = "") {
        self.key = key
        self.value = value
        self.expires = expires
        self.revision = revision
    }
}

/// What a watcher sees.
public enum BackendEvent: Sendable, Equatable {
    /// An item was created or updated.
    case put(Item)
    /// An item was deleted or expired.
    case delete(key: String)
    /// Events may have been missed (a networked backend lost its place, e.g. etcd compacted the
    /// revision a watch resumes from): re-read what you follow, then go on with the stream.
    case reset
}

/// The narrow key-value contract every piece of cluster state goes through.
///
/// Keys are `/`-separated strings. Every implementation passes the same compliance suite
/// (`Tests/TeleportBackendTests/BackendComplianceSuite.swift`). Expired items are invisible to every
/// read at once, whether or not they have been swept yet.
public protocol Backend: Sendable {
    /// The item at `key`, or a `notFound` error.
    func get(_ key: String) async throws -> Item
    /// Writes `item` whether or not the key exists; returns the stored item with its new revision.
    @discardableResult func put(_ item: Item) async throws -> Item
    /// Writes every item, as ``put(_:)`` would, all or none (one transaction where the backend has them).
    func putBatch(_ items: [Item]) async throws
    /// Writes `item` only if the key does not exist (or has expired); else `alreadyExists`.
    @discardableResult func create(_ item: Item) async throws -> Item
    /// A conditional batch: writes every item only if none of their keys holds a live item, all or
    /// none, atomically with respect to every other write (a concurrent `create` of one of the keys
    /// either comes first, and this fails, or after, and that fails). Fails with `alreadyExists`
    /// naming the first existing key (in the order given), `badParameter` when a key repeats.
    func createBatch(_ items: [Item]) async throws
    /// Writes `item` only if the key exists; else `notFound`.
    @discardableResult func update(_ item: Item) async throws -> Item
    /// Replaces `expected` by `replacement` only if the stored value equals `expected.value`;
    /// else `compareFailed` (or `notFound` when the key is absent).
    @discardableResult func compareAndSwap(expected: Item, replacement: Item) async throws -> Item
    /// Deletes the key; `notFound` when absent.
    func delete(_ key: String) async throws
    /// Items with `startKey <= key < endKey`, in key order, at most `limit` (0 means no limit).
    func getRange(startKey: String, endKey: String, limit: Int) async throws -> [Item]
    /// Deletes every item with `startKey <= key < endKey`.
    func deleteRange(startKey: String, endKey: String) async throws
    /// Moves the expiry of an existing item to `expires` without changing its value.
    func keepAlive(_ key: String, expires: Date) async throws
    /// A stream of changes to keys starting with `prefix`, from the moment of the call.
    func watch(prefix: String) async throws -> AsyncStream<BackendEvent>
    /// Removes expired items from storage and tells watchers; returns how many went.
    @discardableResult func sweepExpired() async throws -> Int
    /// Releases files and connections.
    func close() async throws
}

extension Backend {
    /// Default: one `put` after another (backends with transactions do better).
    public func putBatch(_ items: [Item]) async throws {
        for item in items { try await put(item) }
    }

    /// The check every ``createBatch(_:)`` makes first: no key twice.
    public static func checkUniqueKeys(_ items: [Item]) throws {
        var seen = Set<String>()
        for item in items where !seen.insert(item.key).inserted {
            throw TeleportError.badParameter("key \(item.key) appears twice in one batch")
        }
    }

    /// Every item under `prefix` (keys that start with it), in key order.
    public func getRange(prefix: String, limit: Int = 0) async throws -> [Item] {
        try await getRange(startKey: prefix, endKey: Keys.rangeEnd(prefix), limit: limit)
    }

    /// Deletes every item under `prefix`.
    public func deleteRange(prefix: String) async throws {
        try await deleteRange(startKey: prefix, endKey: Keys.rangeEnd(prefix))
    }
}

/// Helpers for building keys.
public enum Keys {
    /// Joins parts with `/` and a leading `/`: `key("users", "joe")` is `/users/joe`.
    public static func key(_ parts: String...) -> String {
        "/" + parts.joined(separator: "/")
    }

    /// The smallest key greater than every key with `prefix` (the prefix with its last byte increased).
    public static func rangeEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.removeLast()
        }
        return "\u{10FFFF}"
    }
}
