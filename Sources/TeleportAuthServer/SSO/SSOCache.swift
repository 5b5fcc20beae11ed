import Foundation
import Synchronization

/// Provider keys kept between logins: each JWKS by its URL, with when it was fetched. A token
/// signed by a key not in the cached set makes one refetch, at most every ``refetchInterval`` per
/// URL, so a rotated-in key is found at once and a flood of unknown `kid`s cannot hammer the provider.
final class SSOCache: Sendable {
    /// The shortest time between two refetches of one JWKS caused by unknown keys.
    static let refetchInterval: TimeInterval = 10
    /// How long a fetched JWKS is used before it is fetched again anyway.
    static let maxAge: TimeInterval = 3600

    private let sets = Mutex<[String: (keys: JSONWebKeySet, fetched: Date)]>([:])

    init() {}

    /// The cached set of `url` if younger than ``maxAge``.
    func keys(_ url: String, now: Date) -> JSONWebKeySet? {
        sets.withLock { all in
            guard let entry = all[url], now.timeIntervalSince(entry.fetched) < Self.maxAge else { return nil }
            return entry.keys
        }
    }

    /// Whether an unknown key may refetch `url` now (the last fetch is older than ``refetchInterval``).
    func mayRefetch(_ url: String, now: Date) -> Bool {
        sets.withLock { all in
            guard let entry = all[url] else { return true }
            return now.timeIntervalSince(entry.fetched) >= Self.refetchInterval
        }
    }

    /// Stores a fetched set.
    func store(_ url: String, keys: JSONWebKeySet, now: Date) {
        sets.withLock { $0[url] = (keys, now) }
    }
}
