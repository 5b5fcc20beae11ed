import Foundation
import TeleportBackend
import TeleportEvents

/// A backend that times every operation into `teleport_backend_request_duration_seconds`
/// (label `operation`) and passes it on unchanged.
struct MeteredBackend: Backend {
    let base: any Backend
    let metrics: TeleportMetrics

    func timed<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        try await metrics.time(.backendLatency, ["operation": operation], body)
    }

    func get(_ key: String) async throws -> Item { try await timed("get") { try await base.get(key) } }
    @discardableResult func put(_ item: Item) async throws -> Item { try await timed("put") { try await base.put(item) } }
    func putBatch(_ items: [Item]) async throws { try await timed("put_batch") { try await base.putBatch(items) } }
    @discardableResult func create(_ item: Item) async throws -> Item { try await timed("create") { try await base.create(item) } }
    func createBatch(_ items: [Item]) async throws { try await timed("create_batch") { try await base.createBatch(items) } }
    @discardableResult func update(_ item: Item) async throws -> Item { try await timed("update") { try await base.update(item) } }
    @discardableResult func compareAndSwap(expected: Item, replacement: Item) async throws -> Item {
        try await timed("compare_and_swap") { try await base.compareAndSwap(expected: expected, replacement: replacement) }
    }
    func delete(_ key: String) async throws { try await timed("delete") { try await base.delete(key) } }
    func getRange(startKey: String, endKey: String, limit: Int) async throws -> [Item] {
        try await timed("get_range") { try await base.getRange(startKey: startKey, endKey: endKey, limit: limit) }
    }
    func deleteRange(startKey: String, endKey: String) async throws {
        try await timed("delete_range") { try await base.deleteRange(startKey: startKey, endKey: endKey) }
    }
    func keepAlive(_ key: String, expires: Date) async throws { try await timed("keep_alive") { try await base.keepAlive(key, expires: expires) } }
    func watch(prefix: String) async throws -> AsyncStream<BackendEvent> { try await base.watch(prefix: prefix) }
    @discardableResult func sweepExpired() async throws -> Int { try await timed("sweep") { try await base.sweepExpired() } }
    func close() async throws { try await base.close() }
}
