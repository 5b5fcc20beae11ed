import Foundation
import NIOCore
import TeleportAPI
import Testing

@testable import TeleportProxy

/// The proxy's memory of checked app session cookies: used for 30 s at most, never past the
/// certificate's end, forgotten on logout and on a refusal, bounded.
@Suite("app origin: the checked-cookie cache")
struct AppSessionCacheTests {
    static let identity = AuthAPI.AppSessionIdentity(user: "bob", certificatePEM: "PEM")
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    static let wall = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func usedUntilTheRecheckThenAskedAgain() {
        let cache = AppSessionCache()
        cache.remember(cookie: "c", app: "echo", identity: Self.identity, notAfter: Self.wall + 3600, now: Self.start, wallClock: Self.wall)
        #expect(cache.identity(cookie: "c", app: "echo", now: Self.start + .seconds(29), wallClock: Self.wall) == Self.identity)
        #expect(cache.identity(cookie: "c", app: "other", now: Self.start, wallClock: Self.wall) == nil, "another app's origin")
        #expect(cache.identity(cookie: "d", app: "echo", now: Self.start, wallClock: Self.wall) == nil, "another cookie")
        #expect(cache.identity(cookie: "c", app: "echo", now: Self.start + .seconds(30), wallClock: Self.wall) == nil)
        #expect(cache.count == 0, "an expired entry is dropped")
    }

    @Test func neverPastTheCertificatesEnd() {
        let cache = AppSessionCache()
        cache.remember(cookie: "c", app: "echo", identity: Self.identity, notAfter: Self.wall + 5, now: Self.start, wallClock: Self.wall)
        #expect(cache.identity(cookie: "c", app: "echo", now: Self.start + .seconds(1), wallClock: Self.wall + 4) != nil)
        #expect(cache.identity(cookie: "c", app: "echo", now: Self.start + .seconds(1), wallClock: Self.wall + 5) == nil)
    }

    @Test func logoutAndRefusalForget() {
        let cache = AppSessionCache()
        cache.remember(cookie: "c", app: "echo", identity: Self.identity, notAfter: Self.wall + 3600, now: Self.start, wallClock: Self.wall)
        cache.remember(cookie: "e", app: "echo", identity: .init(user: "alice", certificatePEM: "P2"), notAfter: Self.wall + 3600, now: Self.start, wallClock: Self.wall)
        cache.forget(user: "bob")
        #expect(cache.identity(cookie: "c", app: "echo", now: Self.start, wallClock: Self.wall) == nil)
        #expect(cache.identity(cookie: "e", app: "echo", now: Self.start, wallClock: Self.wall) != nil, "other users stay")
        cache.forget(cookie: "e", app: "echo")
        #expect(cache.count == 0)
    }

    @Test func bounded() {
        let cache = AppSessionCache()
        for index in 0..<(AppSessionCache.capacity + 10) {
            cache.remember(
                cookie: "c\(index)", app: "echo", identity: Self.identity, notAfter: Self.wall + 3600, now: Self.start + .nanoseconds(Int64(index)),
                wallClock: Self.wall)
        }
        #expect(cache.count == AppSessionCache.capacity)
        #expect(cache.identity(cookie: "c0", app: "echo", now: Self.start + .seconds(1), wallClock: Self.wall) == nil, "the oldest went first")
        #expect(cache.identity(cookie: "c\(AppSessionCache.capacity + 9)", app: "echo", now: Self.start + .seconds(1), wallClock: Self.wall) != nil)
    }

    @Test func keysHideTheCookie() {
        let key = AppSessionCache.key(cookie: "secret-cookie", app: "echo")
        #expect(key.count == 64 && !key.contains("secret"))
        #expect(key != AppSessionCache.key(cookie: "secret-cookie", app: "other"))
        // SHA-256 of "echo\0secret-cookie", lowercase hex (as before the table-based hex).
        #expect(key == "cb7a3bbc51888e8c8398976f9b57c021a2ceb86437fc546af34f4e091d6f380f")
    }
}
