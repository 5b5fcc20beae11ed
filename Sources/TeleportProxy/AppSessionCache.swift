import Crypto
import Foundation
import NIOCore
import Synchronization
import TeleportAPI

/// What the proxy remembers of app session cookies it has checked lately, so that a browser's
/// requests do not each cost an auth round trip and a certificate signature: by
/// SHA-256(cookie) and app, the auth service's answer (the user and the route-carrying
/// certificate). An entry is used for at most ``recheckAfter`` (then the auth service checks the
/// cookie again: the web session may have ended on another proxy, a lock or the roles may have
/// changed, and the check renews the web session) and never past its certificate's end (the web
/// session's end). A logout on this proxy forgets the user's entries at once. At most
/// ``capacity`` entries: expired ones go first, then the oldest.
final class AppSessionCache: Sendable {
    /// How long a checked cookie is trusted before the auth service is asked again.
    static let recheckAfter = TimeAmount.seconds(30)
    /// The most cookies remembered.
    static let capacity = 4096

    struct Entry: Sendable {
        var identity: AuthAPI.AppSessionIdentity
        var checked: NIODeadline
        var notAfter: Date
    }

    private let entries = Mutex<[String: Entry]>([:])

    init() {}

    /// The key of a cookie for an app (the cookie itself is never kept).
    static func key(cookie: String, app: String) -> String {
        let digest = SHA256.hash(data: Data((app + "\u{0}" + cookie).utf8))
        return LowerHex.string(digest)
    }

    /// The remembered answer, while it may be used.
    func identity(cookie: String, app: String, now: NIODeadline = .now(), wallClock: Date = Date()) -> AuthAPI.AppSessionIdentity? {
        let key = Self.key(cookie: cookie, app: app)
        return entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            guard now - entry.checked < Self.recheckAfter, wallClock < entry.notAfter else {
                entries[key] = nil
                return nil
            }
            return entry.identity
        }
    }

    /// Remembers the auth service's answer for a cookie; `notAfter` is its certificate's end.
    func remember(
        cookie: String, app: String, identity: AuthAPI.AppSessionIdentity, notAfter: Date, now: NIODeadline = .now(), wallClock: Date = Date()
    ) {
        let key = Self.key(cookie: cookie, app: app)
        entries.withLock { entries in
            if entries.count >= Self.capacity {
                entries = entries.filter { now - $0.value.checked < Self.recheckAfter && wallClock < $0.value.notAfter }
                while entries.count >= Self.capacity, let oldest = entries.min(by: { $0.value.checked < $1.value.checked })?.key {
                    entries[oldest] = nil
                }
            }
            entries[key] = Entry(identity: identity, checked: now, notAfter: notAfter)
        }
    }

    /// Forgets a cookie (refused, or its app session ended).
    func forget(cookie: String, app: String) {
        let key = Self.key(cookie: cookie, app: app)
        entries.withLock { $0[key] = nil }
    }

    /// Forgets every entry of `user` (a logout on this proxy).
    func forget(user: String) {
        entries.withLock { entries in entries = entries.filter { $0.value.identity.user != user } }
    }

    /// How many entries are held.
    var count: Int { entries.withLock { $0.count } }
}
