import Crypto
import Foundation
import Logging
import SwiftASN1
import Synchronization
import TeleportAPI
import TeleportBackend
import TeleportEvents
import X509
import Testing

@testable import TeleportAuthServer

/// A backend that fails reads and writes of chosen keys with `connectionProblem` while `failing` is set (a
/// database that stops answering), can tell its watchers that events were lost (``injectReset()``,
/// as etcd does after a compaction), and passes everything else to a memory backend.
final class FlakyBackend: Backend {
    let base: MemoryBackend
    let failingPrefix = Mutex<String?>(nil)
    private let watchers = Mutex<[AsyncStream<BackendEvent>.Continuation]>([])

    /// Sends ``BackendEvent/reset`` to every watch stream.
    func injectReset() {
        watchers.withLock { for watcher in $0 { watcher.yield(.reset) } }
    }

    init(clock: any WallClock) { base = MemoryBackend(clock: clock) }

    func get(_ key: String) async throws -> Item {
        if let prefix = failingPrefix.withLock({ $0 }), key.hasPrefix(prefix) {
            throw TeleportError.connectionProblem("the backend did not answer")
        }
        return try await base.get(key)
    }
    @discardableResult func put(_ item: Item) async throws -> Item {
        try failIfChosen(item.key)
        return try await base.put(item)
    }
    func putBatch(_ items: [Item]) async throws {
        for item in items { try failIfChosen(item.key) }
        try await base.putBatch(items)
    }
    func createBatch(_ items: [Item]) async throws {
        for item in items { try failIfChosen(item.key) }
        try await base.createBatch(items)
    }
    private func failIfChosen(_ key: String) throws {
        if let prefix = failingPrefix.withLock({ $0 }), key.hasPrefix(prefix) {
            throw TeleportError.connectionProblem("the backend did not answer")
        }
    }
    @discardableResult func create(_ item: Item) async throws -> Item { try await base.create(item) }
    @discardableResult func update(_ item: Item) async throws -> Item { try await base.update(item) }
    @discardableResult func compareAndSwap(expected: Item, replacement: Item) async throws -> Item {
        try await base.compareAndSwap(expected: expected, replacement: replacement)
    }
    func delete(_ key: String) async throws { try await base.delete(key) }
    func getRange(startKey: String, endKey: String, limit: Int) async throws -> [Item] {
        try await base.getRange(startKey: startKey, endKey: endKey, limit: limit)
    }
    func deleteRange(startKey: String, endKey: String) async throws { try await base.deleteRange(startKey: startKey, endKey: endKey) }
    func keepAlive(_ key: String, expires: Date) async throws { try await base.keepAlive(key, expires: expires) }
    func watch(prefix: String) async throws -> AsyncStream<BackendEvent> {
        let upstream = try await base.watch(prefix: prefix)
        let (stream, continuation) = AsyncStream.makeStream(of: BackendEvent.self)
        watchers.withLock { $0.append(continuation) }
        let forward = Task {
            for await event in upstream { continuation.yield(event) }
            continuation.finish()
        }
        continuation.onTermination = { _ in forward.cancel() }
        return stream
    }
    @discardableResult func sweepExpired() async throws -> Int { try await base.sweepExpired() }
    func close() async throws { try await base.close() }
}

/// Drops every event.
struct NoAudit: AuditEmitter {
    func emit(_ event: AuditEvent) async throws {}
}

@Suite("host identities: removed versus unreachable")
struct HostIdentityTests {
    @Test("only a missing record means removed: a backend error is an error, never 'identity removed'")
    func backendErrorIsNotRemoval() async throws {
        let clock = ManualClock()
        let backend = FlakyBackend(clock: clock)
        let auth = try await AuthServer.open(
            backend: backend, audit: NoAudit(), clock: clock, configuredName: "flaky.cluster", logger: Logger(label: "test"))
        let hostID = "\(UUID().uuidString.lowercased()).flaky.cluster"
        let issued = try await auth.issueSystemIdentity(role: .node, hostID: hostID, publicKey: P256.Signing.PrivateKey().publicKey)
        let certificate = try Certificate(pemEncoded: issued.certificatePEM)
        #expect(try await auth.isCurrentHostIdentity(certificate, hostID: hostID, role: .node))

        backend.failingPrefix.withLock { $0 = "/hostidentities/" }
        await #expect(throws: TeleportError.self) {
            _ = try await auth.isCurrentHostIdentity(certificate, hostID: hostID, role: .node)
        }
        backend.failingPrefix.withLock { $0 = nil }
        #expect(try await auth.isCurrentHostIdentity(certificate, hostID: hostID, role: .node), "the identity survived the outage")

        try await auth.removeHostIdentities(hostID: hostID)
        #expect(try await !auth.isCurrentHostIdentity(certificate, hostID: hostID, role: .node), "tctl rm node removes it")
    }
}
