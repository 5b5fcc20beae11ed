import Foundation
import Synchronization
import TeleportAPI
import TeleportBackend

/// Coalesces node heartbeats: each is answered at once and written, with the others that arrived
/// in the same short window, in one backend transaction. At 10,000 nodes that is a few commits a
/// second instead of a thousand. Presence is soft state: a heartbeat lost in a crash is replaced
/// by the next one, a few seconds later, well inside the TTL.
final class PresenceWriter: Sendable {
    /// How long heartbeats gather before they are written.
    static let flushInterval: Duration = .milliseconds(200)

    private let backend: any Backend
    private let pending = Mutex<[String: Item]>([:])
    /// Keys written at least once by this process: a node's first heartbeat is written at once, so
    /// it is listed as soon as the node is told it registered.
    private let known = Mutex<Set<String>>([])

    /// Heartbeat bodies already decoded and checked, by caller and bytes: the record to store.
    private let checked = Mutex<[CheckedKey: (key: String, value: Data)]>([:])
    /// Bounds ``checked`` (it is cleared when full; entries are cheap to rebuild).
    static let maxChecked = 100_000

    struct CheckedKey: Hashable {
        var caller: String
        var body: Data
    }

    /// The record for a heartbeat body this caller sent before, if any.
    func checkedRecord(caller: String, body: Data) -> (key: String, value: Data)? {
        checked.withLock { $0[CheckedKey(caller: caller, body: body)] }
    }

    /// Remembers that `caller` may store `value` at `key` when it sends `body`.
    func rememberChecked(caller: String, body: Data, key: String, value: Data) {
        checked.withLock { entries in
            if entries.count >= Self.maxChecked { entries.removeAll() }
            entries[CheckedKey(caller: caller, body: body)] = (key, value)
        }
    }

    init(backend: any Backend) {
        self.backend = backend
    }

    /// Writes a node's first record now; queues later ones for the next batch (a newer heartbeat
    /// of the same node replaces a queued one).
    func record(_ item: Item) async throws {
        if known.withLock({ $0.contains(item.key) }) {
            pending.withLock { $0[item.key] = item }
            return
        }
        try await backend.put(item)
        _ = known.withLock { $0.insert(item.key) }
    }

    /// Drops what is queued for `key`: a node removed with `tctl rm` must not be written back by
    /// a heartbeat it sent before.
    func forget(_ key: String) {
        _ = pending.withLock { $0.removeValue(forKey: key) }
        _ = known.withLock { $0.remove(key) }
    }

    /// Writes what is queued; returns how many records. When the write fails (the store is
    /// restarting, or its pool is busy), the records go back in the queue unless a newer heartbeat
    /// of the same host came meanwhile: they are written by the first flush that succeeds, not
    /// only after each host's next heartbeat (which could come after its record expired). The
    /// queue stays bounded: one record per host.
    @discardableResult func flush() async throws -> Int {
        let batch = pending.withLock { queued -> [Item] in
            defer { queued.removeAll(keepingCapacity: true) }
            return Array(queued.values)
        }
        guard !batch.isEmpty else { return 0 }
        do {
            try await backend.putBatch(batch.sorted { $0.key < $1.key })
        } catch {
            pending.withLock { queued in
                for item in batch where queued[item.key] == nil { queued[item.key] = item }
            }
            throw error
        }
        return batch.count
    }

    /// The longest wait between flushes while writes fail (each failure doubles the wait).
    static let maxRetryInterval: Duration = .seconds(5)

    /// Flushes every ``flushInterval`` until cancelled, then once more. While writes fail it
    /// waits longer between tries (up to ``maxRetryInterval``), so an outage is not reported
    /// five times a second.
    func run(onError: @Sendable (any Error) -> Void) async {
        var wait = Self.flushInterval
        while !Task.isCancelled {
            try? await Task.sleep(for: wait)
            do {
                try await flush()
                wait = Self.flushInterval
            } catch {
                onError(error)
                wait = min(wait * 2, Self.maxRetryInterval)
            }
        }
        do { try await flush() } catch { onError(error) }
    }
}
