/// The watchers of one backend: each a key prefix and a stream continuation.
///
/// Not thread-safe by itself: the owning backend keeps it under its lock.
package struct WatcherSet: Sendable {
    private var nextID = 0
    private var watchers: [Int: (prefix: String, continuation: AsyncStream<BackendEvent>.Continuation)] = [:]

    /// Creates an empty set.
    package init() {}

    /// Adds a watcher; returns its id for ``remove(_:)``.
    package mutating func add(prefix: String, _ continuation: AsyncStream<BackendEvent>.Continuation) -> Int {
        nextID += 1
        watchers[nextID] = (prefix, continuation)
        return nextID
    }

    /// Removes a watcher.
    package mutating func remove(_ id: Int) {
        watchers[id] = nil
    }

    /// Sends `event` to every watcher whose prefix matches its key.
    package func publish(_ event: BackendEvent) {
        let key: String
        switch event {
        case .put(let item): key = item.key
        case .delete(let deleted): key = deleted
        case .reset:
            for watcher in watchers.values { watcher.continuation.yield(event) }
            return
        }
        for watcher in watchers.values where key.hasPrefix(watcher.prefix) {
            watcher.continuation.yield(event)
        }
    }

    /// Ends every stream.
    package mutating func finishAll() {
        for watcher in watchers.values { watcher.continuation.finish() }
        watchers.removeAll()
    }
}
