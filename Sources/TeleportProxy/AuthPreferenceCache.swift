import Foundation
import Synchronization
import TeleportAPI

/// The auth service's login settings and connectors for `/webapi/ping`, kept for 5 seconds so that
/// pings (agents ping often) do not each cost a call; the last answer is kept while the auth
/// service does not answer.
final class AuthPreferenceCache: Sendable {
    static let lifetime: TimeInterval = 5
    private let state = Mutex<(value: AuthAPI.AuthPreference?, fetched: Date)>((nil, .distantPast))

    /// The cached preference, or a fresh one from `fetch`; nil when none was ever fetched.
    func get(_ fetch: @Sendable () async throws -> AuthAPI.AuthPreference) async -> AuthAPI.AuthPreference? {
        let now = Date()
        let cached = state.withLock { $0 }
        if let value = cached.value, now.timeIntervalSince(cached.fetched) < Self.lifetime { return value }
        guard let fresh = try? await fetch() else { return cached.value }
        state.withLock { $0 = (fresh, now) }
        return fresh
    }
}
