import Foundation
import Logging
import TeleportAPI
import TeleportBackend
import Testing

@testable import TeleportAuthServer

@Suite("user certificate feed: a backend reset")
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

        // The backend lost events (one of them: cert-b, written where the watch cannot see it).
        try await backend.base.put(Item(key: UserCertificateFeed.key(fingerprintHex: "bb"), value: try UserCertificateFeed.encode("cert-b")))
        backend.injectReset()
        var after = try await feed.changes(after: next.cursor, wait: .seconds(30))
        while !after.reset {
            // The put of cert-b may arrive (through the forwarding watch) before the reset: follow on.
            after = try await feed.changes(after: after.cursor, wait: .seconds(30))
        }
        #expect(Set(after.certificates) == ["cert-a", "cert-b"])
        await feed.stop()
    }
}
