public import Foundation
public import TeleportAPI
import Synchronization

/// An in-memory ``Backend`` with an injected clock, for tests and for caches.
public final class MemoryBackend: Backend {
    private struct State {
        var items: [String: Item] = [:]
        var revision: UInt64 = 0
        var watchers = WatcherSet()
    }

    private let clock: any WallClock
    private let state = Mutex(State())

    /// Creates an empty backend reading time from `clock`.
    public init(clock: any WallClock = SystemClock()) {
        self.clock = clock
    }

    private func isLive(_ item: Item, at now: Date) -> Bool {
        guard let expires = item.expires else { return true }
        return expires > now
    }

    private static func stamp(_ item: Item, _ state: inout State) -> Item {
        state.revision += 1
        var stored = item
        stored.revision = String(state.revision)
        state.items[item.key] = stored
        state.watchers.publish(.put(stored))
        return stored
    }

    public func get(_ key: String) async throws -> Item {
        let now = clock.now()
        return try state.withLock { state in
            guard let item = state.items[key], isLive(item, at: now) else {
                throw TeleportError.notFound("key \(key) is not found")
            }
            return item
        }
    }

    @discardableResult public func put(_ item: Item) async throws -> Item {
        state.withLock { Self.stamp(item, &$0) }
    }

    public func putBatch(_ items: [Item]) async throws {
        state.withLock { state in
            for item in items { _ = Self.stamp(item, &state) }
        }
    }

    @discardableResult public func create(_ item: Item) async throws -> Item {
        let now = clock.now()
        return try state.withLock { state in
            if let existing = state.items[item.key], isLive(existing, at: now) {
                throw TeleportError.alreadyExists("key \(item.key) already exists")
            }
            return Self.stamp(item, &state)
        }
    }

    public func createBatch(_ items: [Item]) async throws {
        try Self.checkUniqueKeys(items)
        let now = clock.now()
        try state.withLock { state in
            for item in items {
                if let existing = state.items[item.key], isLive(existing, at: now) {
                    throw TeleportError.alreadyExists("key \(item.key) already exists")
                }
            }
            for item in items { _ = Self.stamp(item, &state) }
        }
    }

    @discardableResult public func update(_ item: Item) async throws -> Item {
        let now = clock.now()
        return try state.withLock { state in
            guard let existing = state.items[item.key], isLive(existing, at: now) else {
                throw TeleportError.notFound("key \(item.key) is not found")
            }
            return Self.stamp(item, &state)
        }
    }

    @discardableResult public func compareAndSwap(expected: Item, replacement: Item) async throws -> Item {
        guard expected.key == replacement.key else {
            throw TeleportError.badParameter("compare-and-swap needs the same key on both sides")
        }
        let now = clock.now()
        return try state.withLock { state in
            guard let existing = state.items[expected.key], isLive(existing, at: now) else {
                throw TeleportError.notFound("key \(expected.key) is not found")
            }
            guard existing.value == expected.value else {
                throw TeleportError.compareFailed("key \(expected.key) was changed by someone else")
            }
            return Self.stamp(replacement, &state)
        }
    }

    public func delete(_ key: String) async throws {
        let now = clock.now()
        try state.withLock { state in
            guard let existing = state.items[key], isLive(existing, at: now) else {
                throw TeleportError.notFound("key \(key) is not found")
            }
            state.items[key] = nil
            state.watchers.publish(.delete(key: key))
        }
    }

    public func getRange(startKey: String, endKey: String, limit: Int) async throws -> [Item] {
        let now = clock.now()
        let all = state.withLock { state in
            state.items.values.filter { $0.key >= startKey && $0.key < endKey && isLive($0, at: now) }
        }
        let sorted = all.sorted { $0.key < $1.key }
        return limit > 0 ? Array(sorted.prefix(limit)) : sorted
    }

    public func deleteRange(startKey: String, endKey: String) async throws {
        state.withLock { state in
            let keys = state.items.keys.filter { $0 >= startKey && $0 < endKey }
            for key in keys.sorted() {
                state.items[key] = nil
                state.watchers.publish(.delete(key: key))
            }
        }
    }

    public func keepAlive(_ key: String, expires: Date) async throws {
        let now = clock.now()
        try state.withLock { state in
            guard var existing = state.items[key], isLive(existing, at: now) else {
                throw TeleportError.notFound("key \(key) is not found")
            }
            existing.expires = expires
            _ = Self.stamp(existing, &state)
        }
    }

    public func watch(prefix: String) async throws -> AsyncStream<BackendEvent> {
        let (stream, continuation) = AsyncStream<BackendEvent>.makeStream(bufferingPolicy: .bufferingNewest(4096))
        let id = state.withLock { $0.watchers.add(prefix: prefix, continuation) }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { $0.watchers.remove(id) }
        }
        return stream
    }

    @discardableResult public func sweepExpired() async throws -> Int {
        let now = clock.now()
        return state.withLock { state in
            let expired = state.items.values.filter { !isLive($0, at: now) }.map(\.key).sorted()
            for key in expired {
                state.items[key] = nil
                state.watchers.publish(.delete(key: key))
            }
            return expired.count
        }
    }

    public func close() async throws {
        // Finish the streams outside the lock: their termination handlers take it again.
        let watchers = state.withLock { state in
            let taken = state.watchers
            state.watchers = WatcherSet()
            return taken
        }
        var finishing = watchers
        finishing.finishAll()
    }
}
