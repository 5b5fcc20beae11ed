import Foundation
import Logging
import TeleportAPI
import TeleportBackend
import TeleportBackendSQLite
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Behaviour only the SQLite backend has: files, permissions, persistence and error messages.
@Suite("SQLite backend")
struct SQLiteBackendTests {
    private let logger = Logger(label: "test.sqlite")

    private func permissions(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return try #require(attributes[.posixPermissions] as? Int)
    }

    @Test func dataSurvivesCloseAndReopen() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/backend.sqlite"
            let clock = ManualClock()
            let first = try await SQLiteBackend.open(path: path, clock: clock, logger: logger)
            let plain = try await first.put(Item(key: "/users/joe", value: Data("joe".utf8)))
            let leased = try await first.put(
                Item(key: "/leases/l", value: Data([0, 1, 2]), expires: clock.now().addingTimeInterval(30))
            )
            let doomed = try await first.put(Item(key: "/tmp/gone", value: Data("gone".utf8)))
            try await first.delete("/tmp/gone")
            try await first.close()

            let second = try await SQLiteBackend.open(path: path, clock: clock, logger: logger)
            #expect(try await second.get("/users/joe") == plain)
            #expect(try await second.get("/leases/l") == leased)
            await expectTeleportError(.notFound) { _ = try await second.get("/tmp/gone") }

            // The revision counter survives too, even past the deleted item that held the highest one.
            let next = try await second.put(Item(key: "/users/ann", value: Data("ann".utf8)))
            let previous = [plain, leased, doomed].compactMap { Int($0.revision) }
            let nextRevision = try #require(Int(next.revision))
            #expect(previous.count == 3)
            #expect(previous.allSatisfy { $0 < nextRevision }, "\(previous) then \(nextRevision)")

            // Expiry still follows the clock after reopening.
            clock.advance(by: 31)
            await expectTeleportError(.notFound) { _ = try await second.get("/leases/l") }
            try await second.close()
        }
    }

    @Test func filesArePrivateToTheOwner() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/backend.sqlite"
            let backend = try await SQLiteBackend.open(path: path, logger: logger)
            try await backend.put(Item(key: "/k", value: Data("v".utf8)))
            #expect(try permissions(path) == 0o600)
            for sibling in [path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: sibling) {
                #expect(try permissions(sibling) == 0o600, "\(sibling)")
            }
            try await backend.close()
        }
    }

    @Test func anExistingWorldReadableFileIsTightened() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/backend.sqlite"
            #expect(FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o644]))
            #expect(try permissions(path) == 0o644)
            let backend = try await SQLiteBackend.open(path: path, logger: logger)
            #expect(try permissions(path) == 0o600)
            try await backend.close()
        }
    }

    @Test(arguments: [4096, 100, 7])
    func aCorruptedFileFailsAtOpenNamingThePath(garbageSize: Int) async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/backend.sqlite"
            var generator = SystemRandomNumberGenerator()
            var garbage = Data((0..<garbageSize).map { _ in UInt8.random(in: 0...255, using: &generator) })
            garbage.replaceSubrange(0..<min(garbageSize, 5), with: Data("junk!".utf8).prefix(garbageSize))
            try garbage.write(to: URL(fileURLWithPath: path))

            let error = try #require(
                await expectTeleportError(.connectionProblem) {
                    _ = try await SQLiteBackend.open(path: path, logger: logger)
                }
            )
            #expect(error.message.contains(path), "\(error.message)")
            #expect(error.message.contains("corrupted"), "\(error.message)")
            #expect(!error.message.contains("\n"))
            // The file is left alone for the operator to inspect.
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage)
        }
    }

    @Test func aCorruptedPageIsReportedAtOpen() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/backend.sqlite"
            let backend = try await SQLiteBackend.open(path: path, logger: logger)
            for index in 0..<200 {
                try await backend.put(Item(key: "/bulk/\(index)", value: Data(repeating: UInt8(index % 256), count: 512)))
            }
            try await backend.close()

            // Keep the valid header (first 100 bytes) but overwrite the rest of the first pages.
            var contents = try Data(contentsOf: URL(fileURLWithPath: path))
            try #require(contents.count > 16_384)
            contents.replaceSubrange(100..<16_384, with: Data(repeating: 0xA5, count: 16_284))
            try contents.write(to: URL(fileURLWithPath: path))

            do {
                let reopened = try await SQLiteBackend.open(path: path, logger: logger)
                try? await reopened.close()
                Issue.record("opening a damaged database succeeded")
            } catch let error as TeleportError {
                #expect(error.code == .connectionProblem || error.code == .badParameter, "\(error.message)")
                #expect(error.message.contains(path), "\(error.message)")
            }
        }
    }

    @Test func aMissingDirectoryFailsClearly() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/does/not/exist/backend.sqlite"
            let error = try #require(
                await expectTeleportError(.connectionProblem) {
                    _ = try await SQLiteBackend.open(path: path, logger: logger)
                }
            )
            #expect(error.message.contains(path), "\(error.message)")
            #expect(error.message.contains("create the directory"), "\(error.message)")
            #expect(!FileManager.default.fileExists(atPath: directory + "/does"))
        }
    }

    @Test func anUnwritableDirectoryFailsClearly() async throws {
        try await withTemporaryDirectory { directory in
            let path: String
            if geteuid() == 0 {
                // Root ignores directory modes; sysfs refuses new files even to root.
                #if os(Linux)
                path = "/sys/teleport-backend-test.sqlite"
                #else
                return
                #endif
            } else {
                let locked = directory + "/locked"
                try FileManager.default.createDirectory(
                    atPath: locked,
                    withIntermediateDirectories: false,
                    attributes: [.posixPermissions: 0o500]
                )
                path = locked + "/backend.sqlite"
            }
            defer { try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory + "/locked") }
            let error = try #require(
                await expectTeleportError(.connectionProblem) {
                    _ = try await SQLiteBackend.open(path: path, logger: logger)
                }
            )
            #expect(error.message.contains(path), "\(error.message)")
            #expect(error.message.contains("writable"), "\(error.message)")
        }
    }

    @Test func aDirectoryAtThePathIsABadParameter() async throws {
        try await withTemporaryDirectory { directory in
            let error = try #require(
                await expectTeleportError(.badParameter) {
                    _ = try await SQLiteBackend.open(path: directory, logger: logger)
                }
            )
            #expect(error.message.contains(directory), "\(error.message)")
        }
    }

    @Test func operationsAfterCloseFailAndCloseIsIdempotent() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/backend.sqlite"
            let backend = try await SQLiteBackend.open(path: path, logger: logger)
            try await backend.put(Item(key: "/k", value: Data("v".utf8)))
            try await backend.close()
            try await backend.close()
            let error = await expectTeleportError(.connectionProblem) { _ = try await backend.get("/k") }
            #expect(error?.message.contains(path) == true)
            await expectTeleportError(.connectionProblem) { try await backend.put(Item(key: "/k", value: Data())) }
            await expectTeleportError(.connectionProblem) { _ = try await backend.watch(prefix: "/") }
        }
    }

    @Test func cancelledWritesLeaveTheBackendUsable() async throws {
        try await withTemporaryDirectory { directory in
            let backend = try await SQLiteBackend.open(path: directory + "/backend.sqlite", logger: logger)
            let tasks = (0..<40).map { index in
                Task {
                    try await backend.put(Item(key: "/c/\(index)", value: Data("v".utf8)))
                }
            }
            for task in tasks { task.cancel() }
            for task in tasks { _ = await task.result }

            // Whatever was cancelled was rolled back whole; the connection is not stuck in a transaction.
            let stored = try await backend.put(Item(key: "/after", value: Data("ok".utf8)))
            #expect(try await backend.get("/after") == stored)
            for item in try await backend.getRange(prefix: "/c/") {
                #expect(item.value == Data("v".utf8))
            }
            try await backend.close()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func theSweeperDeletesExpiredItemsUntilCancelled() async throws {
        try await withTemporaryDirectory { directory in
            let clock = ManualClock()
            let backend = try await SQLiteBackend.open(path: directory + "/backend.sqlite", clock: clock, logger: logger)
            try await backend.put(Item(key: "/s/a", value: Data("a".utf8), expires: clock.now().addingTimeInterval(5)))
            try await backend.put(Item(key: "/s/b", value: Data("b".utf8)))
            let stream = try await backend.watch(prefix: "/s/")
            let sweeper = Task { await backend.runSweeper(every: .milliseconds(10)) }

            clock.advance(by: 6)
            let events = await collect(1, from: stream)
            #expect(events == [.delete(key: "/s/a")])
            #expect(try await backend.sweepExpired() == 0)
            #expect(try await backend.getRange(prefix: "/s/").map(\.key) == ["/s/b"])

            sweeper.cancel()
            await sweeper.value
            try await backend.close()
        }
    }
}
