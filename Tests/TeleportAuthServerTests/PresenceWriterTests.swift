import Foundation
import Synchronization
import TeleportAPI
import TeleportBackend
import Testing

@testable import TeleportAuthServer

/// The batched heartbeat writer keeps what it could not write.
@Suite("presence writer: heartbeats survive a failed write")
struct PresenceWriterTests {
    func item(_ name: String, _ value: String, _ clock: ManualClock) -> Item {
        Item(key: "/nodes/\(name)", value: Data(value.utf8), expires: clock.now().addingTimeInterval(Presence.nodeTTL))
    }

    @Test("a batch the store refused is written by the next flush; a newer heartbeat of the same host wins over it")
    func failedBatchIsRetried() async throws {
        let clock = ManualClock()
        let backend = FlakyBackend(clock: clock)
        let writer = PresenceWriter(backend: backend)
        // First heartbeats are written at once.
        try await writer.record(item("a", "a1", clock))
        try await writer.record(item("b", "b1", clock))
        #expect(try await backend.get("/nodes/a").value == Data("a1".utf8))

        // Later ones are queued; the store fails the batch.
        try await writer.record(item("a", "a2", clock))
        try await writer.record(item("b", "b2", clock))
        backend.failingPrefix.withLock { $0 = "/nodes/" }
        await #expect(throws: TeleportError.self) { try await writer.flush() }

        // A newer heartbeat of a arrives while the store is down; b's stays queued.
        try await writer.record(item("a", "a3", clock))
        await #expect(throws: TeleportError.self) { try await writer.flush() }
        backend.failingPrefix.withLock { $0 = nil }
        #expect(try await backend.get("/nodes/a").value == Data("a1".utf8), "nothing was written while the store failed")

        #expect(try await writer.flush() == 2)
        #expect(try await backend.get("/nodes/a").value == Data("a3".utf8))
        #expect(try await backend.get("/nodes/b").value == Data("b2".utf8), "b's heartbeat was kept through two failed flushes")
        #expect(try await writer.flush() == 0, "nothing is written twice")
    }

    @Test("a removed node's queued heartbeat is dropped: the flush does not write the record back")
    func removedNodeIsNotWrittenBack() async throws {
        let clock = ManualClock()
        let backend = FlakyBackend(clock: clock)
        let writer = PresenceWriter(backend: backend)
        try await writer.record(item("gone", "g1", clock))
        try await writer.record(item("gone", "g2", clock))
        writer.forget("/nodes/gone")
        try await backend.delete("/nodes/gone")
        #expect(try await writer.flush() == 0)
        await #expect(throws: TeleportError.self) { try await backend.get("/nodes/gone") }
    }
}
