public import TeleportAPI
import Synchronization

/// `create` calls that arrive while another is being written go to the store together, as one
/// ``Backend/createBatch(_:)`` (group commit: one transaction, one fsync on SQLite, for all of them).
///
/// No task of its own: the first caller writes its item; callers that come while it writes wait
/// in a queue; when its write ends, the first of them is woken to write its own item together
/// with the rest of the queue (at most `maxBatch`), and so on. A batch that fails (a key that
/// exists, a key twice, the store down) is written again one item at a time, so every caller gets
/// the answer ``Backend/create(_:)`` alone would give it.
public final class CoalescingCreates: Sendable {
    private enum Turn: Sendable {
        /// The item was written by another caller's batch.
        case written
        /// Write your item and what queued.
        case lead
    }

    private struct Waiter: Sendable {
        let item: Item
        let continuation: CheckedContinuation<Turn, any Error>
    }

    private let backend: any Backend
    private let maxBatch: Int
    private let state = Mutex<(writing: Bool, queue: [Waiter])>((false, []))
    /// Batches of more than one item written (tests).
    private let batches = Atomic<Int>(0)

    public init(backend: any Backend, maxBatch: Int = 256) {
        self.backend = backend
        self.maxBatch = max(1, maxBatch)
    }

    /// How many batches of several items went to the store as one write.
    public var coalescedBatches: Int { batches.load(ordering: .relaxed) }

    /// Callers waiting for their turn now (tests).
    public var waiting: Int { state.withLock { $0.queue.count } }

    /// Writes `item` only if its key holds no live item, as ``Backend/create(_:)`` does.
    public func create(_ item: Item) async throws {
        let turn: Turn = try await withCheckedThrowingContinuation { continuation in
            let leads = state.withLock { state -> Bool in
                if state.writing {
                    state.queue.append(Waiter(item: item, continuation: continuation))
                    return false
                }
                state.writing = true
                return true
            }
            if leads { continuation.resume(returning: .lead) }
        }
        if case .lead = turn { try await lead(item) }
    }

    /// Writes `own` and up to `maxBatch - 1` queued items, answers their callers, then wakes the
    /// next waiter to lead (or ends the writing); throws what `own`'s write gave.
    private func lead(_ own: Item) async throws {
        let followers = state.withLock { state -> [Waiter] in
            let taken = Array(state.queue.prefix(maxBatch - 1))
            state.queue.removeFirst(taken.count)
            return taken
        }
        // The write is its own (short) task: the leader's cancellation (its client went away) must
        // not fail the other callers' items.
        let items = [own] + followers.map(\.item)
        let results = await Task { await self.write(items) }.value
        let next = state.withLock { state -> Waiter? in
            guard !state.queue.isEmpty else {
                state.writing = false
                return nil
            }
            return state.queue.removeFirst()
        }
        for (waiter, result) in zip(followers, results.dropFirst()) {
            switch result {
            case .success: waiter.continuation.resume(returning: .written)
            case .failure(let error): waiter.continuation.resume(throwing: error)
            }
        }
        next?.continuation.resume(returning: .lead)
        try results[0].get()
    }

    /// Each item's outcome: one batch when it succeeds, else one `create` per item.
    private func write(_ items: [Item]) async -> [Result<Void, any Error>] {
        if items.count > 1 {
            do {
                try await backend.createBatch(items)
                batches.add(1, ordering: .relaxed)
                return items.map { _ in .success(()) }
            } catch {
                // Which item failed, and why, is what each caller needs: ask one by one.
            }
        }
        var results: [Result<Void, any Error>] = []
        for item in items {
            do {
                try await backend.create(item)
                results.append(.success(()))
            } catch {
                results.append(.failure(error))
            }
        }
        return results
    }
}
