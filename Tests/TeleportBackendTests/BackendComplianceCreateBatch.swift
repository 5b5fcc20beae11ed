import Foundation
import TeleportAPI
import TeleportBackend
import Testing

private func text(_ value: String) -> Data { Data(value.utf8) }

/// The conditional batch (``Backend/createBatch(_:)``): every item or none, only over absent (or
/// expired) keys, atomic against concurrent writers; on every backend.
@Suite("backend compliance: conditional batches", .timeLimit(.minutes(3)))
struct BackendComplianceCreateBatch {
    @Test(arguments: BackendKind.enabled)
    func createBatchWritesEveryItemAndNotifiesWatchers(kind: BackendKind) async throws {
        try await kind.withBackend { backend, _ in
            let stream = try await backend.watch(prefix: "/cb/")
            let items = (0..<5).map { Item(key: "/cb/\($0)", value: text("v\($0)")) }
            try await backend.createBatch(items)
            let stored = try await backend.getRange(prefix: "/cb/")
            #expect(stored.map(\.key) == items.map(\.key))
            #expect(stored.map(\.value) == items.map(\.value))
            let events = await collect(5, from: stream)
            #expect(Set(events.compactMap { if case .put(let item) = $0 { item.key } else { nil } }) == Set(items.map(\.key)))
            // An empty batch is nothing.
            try await backend.createBatch([])
        }
    }

    @Test(arguments: BackendKind.enabled)
    func oneExistingKeyFailsTheWholeBatchAndWritesNothing(kind: BackendKind) async throws {
        try await kind.withBackend { backend, _ in
            let existing = try await backend.put(Item(key: "/cb/c", value: text("old")))
            let stream = try await backend.watch(prefix: "/cb/")
            let batch = ["/cb/a", "/cb/b", "/cb/c", "/cb/d"].map { Item(key: $0, value: text("new")) }
            let error = await expectTeleportError(.alreadyExists) { try await backend.createBatch(batch) }
            #expect(error?.message.contains("/cb/c") == true, "\(String(describing: error))")
            #expect(try await backend.getRange(prefix: "/cb/") == [existing])
            // Watchers saw nothing of it: the next event is a later write.
            let marker = try await backend.put(Item(key: "/cb/marker", value: text("m")))
            #expect(await collect(1, from: stream) == [.put(marker)])
        }
    }

    @Test(arguments: BackendKind.enabled)
    func expiredKeysAreReplacedAndRepeatedKeysRefused(kind: BackendKind) async throws {
        try await kind.withBackend { backend, clock in
            try await backend.create(Item(key: "/cb/lease", value: text("old"), expires: clock.now().addingTimeInterval(5)))
            let batch = [Item(key: "/cb/lease", value: text("new")), Item(key: "/cb/other", value: text("o"))]
            await expectTeleportError(.alreadyExists) { try await backend.createBatch(batch) }
            clock.advance(by: 6)
            try await backend.createBatch(batch)
            #expect(try await backend.get("/cb/lease").value == text("new"))
            #expect(try await backend.get("/cb/lease").expires == nil)
            #expect(try await backend.get("/cb/other").value == text("o"))
            await expectTeleportError(.badParameter) {
                try await backend.createBatch([Item(key: "/cb/x", value: text("1")), Item(key: "/cb/x", value: text("2"))])
            }
            await expectTeleportError(.notFound) { _ = try await backend.get("/cb/x") }
        }
    }

    /// Two batches sharing one key, started together, ten rounds: exactly one wins each round, and
    /// nothing of the loser is written.
    @Test(arguments: BackendKind.enabled)
    func concurrentBatchesOverASharedKeyOneWins(kind: BackendKind) async throws {
        try await kind.withBackend { backend, _ in
            for round in 0..<10 {
                let left = ["a", "b", "shared"].map { Item(key: "/cb/\(round)/\($0)", value: text("left")) }
                let right = ["shared", "c", "d"].map { Item(key: "/cb/\(round)/\($0)", value: text("right")) }
                let outcomes = try await withThrowingTaskGroup(of: (String, Bool).self) { group in
                    for (name, batch) in [("left", left), ("right", right)] {
                        group.addTask {
                            do {
                                try await backend.createBatch(batch)
                                return (name, true)
                            } catch let error as TeleportError where error.code == .alreadyExists {
                                return (name, false)
                            }
                        }
                    }
                    var all: [String: Bool] = [:]
                    for try await (name, won) in group { all[name] = won }
                    return all
                }
                #expect(outcomes.values.filter { $0 }.count == 1, "round \(round): \(outcomes)")
                let winner = outcomes["left"] == true ? "left" : "right"
                let stored = try await backend.getRange(prefix: "/cb/\(round)/")
                #expect(stored.count == 3 && stored.allSatisfy { $0.value == text(winner) }, "round \(round): \(stored)")
            }
        }
    }
}
