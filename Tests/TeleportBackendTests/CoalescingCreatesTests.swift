import Foundation
import TeleportAPI
import TeleportBackend
import Testing

/// Group commit of `create`: concurrent calls share writes, and each caller still gets the answer
/// `create` alone would give it.
@Suite("coalescing creates")
struct CoalescingCreatesTests {
    static func item(_ index: Int) -> Item {
        Item(key: "/usercerts/\(index)", value: Data("v\(index)".utf8))
    }

    /// A MemoryBackend whose first `create` waits until `open()`: later callers queue meanwhile.
    final class HeldBackend: Backend, @unchecked Sendable {
        let inner = MemoryBackend()
        private let lock = NSLock()
        private var held: CheckedContinuation<Void, Never>?
        private var opened = false
        private var creates = 0
        private(set) var batchSizes: [Int] = []

        func open() {
            let waiting: CheckedContinuation<Void, Never>? = lock.withLock {
                opened = true
                defer { held = nil }
                return held
            }
            waiting?.resume()
        }

        func create(_ item: Item) async throws -> Item {
            let first: Bool = lock.withLock {
                creates += 1
                return creates == 1 && !opened
            }
            if first {
                await withCheckedContinuation { continuation in
                    let now: Bool = lock.withLock {
                        if opened { return true }
                        held = continuation
                        return false
                    }
                    if now { continuation.resume() }
                }
            }
            return try await inner.create(item)
        }

        func createBatch(_ items: [Item]) async throws {
            lock.withLock { batchSizes.append(items.count) }
            try await inner.createBatch(items)
        }

        func get(_ key: String) async throws -> Item { try await inner.get(key) }
        func put(_ item: Item) async throws -> Item { try await inner.put(item) }
        func putBatch(_ items: [Item]) async throws { try await inner.putBatch(items) }
        func update(_ item: Item) async throws -> Item { try await inner.update(item) }
        func compareAndSwap(expected: Item, replacement: Item) async throws -> Item {
            try await inner.compareAndSwap(expected: expected, replacement: replacement)
        }
        func delete(_ key: String) async throws { try await inner.delete(key) }
        func getRange(startKey: String, endKey: String, limit: Int) async throws -> [Item] {
            try await inner.getRange(startKey: startKey, endKey: endKey, limit: limit)
        }
        func deleteRange(startKey: String, endKey: String) async throws { try await inner.deleteRange(startKey: startKey, endKey: endKey) }
        func keepAlive(_ key: String, expires: Date) async throws { try await inner.keepAlive(key, expires: expires) }
        func watch(prefix: String) async throws -> AsyncStream<BackendEvent> { try await inner.watch(prefix: prefix) }
        func sweepExpired() async throws -> Int { try await inner.sweepExpired() }
        func close() async throws { try await inner.close() }
    }

    @Test("creates that come while one is written go to the store together, as one batch")
    func queuedCreatesShareOneWrite() async throws {
        let backend = HeldBackend()
        let creates = CoalescingCreates(backend: backend)
        let first = Task { try await creates.create(Self.item(0)) }
        // The first caller is writing (held); 30 more queue behind it.
        let rest = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 1...30 { group.addTask { try await creates.create(Self.item(index)) } }
                try await group.waitForAll()
            }
        }
        // The 30 queue (they cannot finish while the first write is held); then release it.
        while creates.waiting < 30 { await Task.yield() }
        backend.open()
        try await first.value
        try await rest.value
        for index in 0...30 {
            #expect(try await backend.get("/usercerts/\(index)").value == Data("v\(index)".utf8))
        }
        // All 30 queued items went out in one batch, led by the first of them.
        #expect(backend.batchSizes == [30])
        #expect(creates.coalescedBatches == 1)
        #expect(creates.waiting == 0)
    }

    @Test("a key that exists fails only its own caller, also inside a batch; a key twice: one wins")
    func conflictsAreAnsweredOneByOne() async throws {
        let backend = MemoryBackend()
        try await backend.create(Item(key: "/usercerts/7", value: Data("old".utf8)))
        let creates = CoalescingCreates(backend: backend)
        let outcomes = try await withThrowingTaskGroup(of: (Int, TeleportError.Code?).self) { group in
            for index in 0..<50 {
                group.addTask {
                    // Items 20 and 21 both write key 20.
                    let item = index == 21 ? Item(key: "/usercerts/20", value: Data("twin".utf8)) : Self.item(index)
                    do {
                        try await creates.create(item)
                        return (index, nil)
                    } catch let error as TeleportError {
                        return (index, error.code)
                    }
                }
            }
            return try await group.reduce(into: [Int: TeleportError.Code?]()) { $0[$1.0] = $1.1 }
        }
        #expect(outcomes[7] == .some(.alreadyExists))
        #expect(try await backend.get("/usercerts/7").value == Data("old".utf8))
        let twins = [outcomes[20], outcomes[21]].compactMap { $0 }
        #expect(twins.filter { $0 == nil }.count == 1 && twins.filter { $0 == .alreadyExists }.count == 1, "\(twins)")
        for index in 0..<50 where index != 7 && index != 20 && index != 21 {
            #expect(outcomes[index] == .some(nil), "item \(index): \(String(describing: outcomes[index]))")
            #expect(try await backend.get("/usercerts/\(index)").value == Data("v\(index)".utf8))
        }
    }
}
