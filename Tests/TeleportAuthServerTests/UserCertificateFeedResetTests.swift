import Foundation
import Logging
import TeleportAPI
import TeleportBackend
import Testing

@testable import TeleportAuthServer

@Suite("user certificate feed: a backend reset", .timeLimit(.minutes(2)))
struct UserCertificateFeedResetTests {
    @Test("after the backend says events were lost, old cursors get a full snapshot instead of a silent gap")
    func aResetGivesSubscribersASnapshot() async throws {
        let backend = FlakyBackend(clock: ManualClock())
        let feed = UserCertificateFeed(backend: backend, logger: Logger(label: "test"))
        try await feed.start()
        let first = try await feed.changes(after: nil, wait: .zero)
        #expect(first.reset)
        try await backend.put(Item(key: UserCertificateFeed.key(fingerprintHex: "aa"), value: try UserCertificateFeed.encode("cert-a")))
        let next = try await feed.changes(after: first.cursor, wait: .seconds(30))
        #expect(!next.reset && next.certificates == ["cert-a"], "without a reset the feed is incremental")

        // A poll waiting when the reset comes answers with the snapshot, not an empty increment
        // whose cursor would skip the reset.
        let waiting = Task { try await feed.changes(after: next.cursor, wait: .seconds(60)) }
        while await feed.waitingPolls == 0 { await Task.yield() }
        backend.injectReset()
        let woken = try await waiting.value
        #expect(woken.reset && woken.certificates == ["cert-a"], "\(woken)")

        // The backend lost events: cert-b's put may reach the feed before or after the next reset;
        // in either order, following the cursor reaches a snapshot holding both.
        try await backend.base.put(Item(key: UserCertificateFeed.key(fingerprintHex: "bb"), value: try UserCertificateFeed.encode("cert-b")))
        backend.injectReset()
        var after = try await feed.changes(after: woken.cursor, wait: .seconds(5))
        for _ in 0..<5 where !after.reset {
            after = try await feed.changes(after: after.cursor, wait: .seconds(5))
        }
        #expect(after.reset, "the reset never reached the cursor")
        #expect(Set(after.certificates) == ["cert-a", "cert-b"])
        await feed.stop()
    }
}
