public import Foundation
public import TeleportBackend
import TeleportAPI
import TeleportCrypto

/// Browser app sessions and their one-time launch tokens, in the backend so that any proxy can
/// redeem a token another proxy issued and check any app session. Both are stored under the
/// SHA-256 of their secret: a backend dump holds no usable token or cookie.
public struct AppSessionStore: Sendable {
    /// A launch token (`/applaunch/HASH`, 60 s) or an app session (`/appsessions/HASH`).
    public struct Record: Codable, Sendable, Equatable {
        /// The user.
        public var user: String
        /// The app.
        public var app: String
        /// The backend key of the web session it is bound to (``WebSessionStore/key(id:)``).
        public var webSessionKey: String
        /// Its end.
        public var expires: Date
        /// For a launch token: redeemed already.
        public var used: Bool

        enum CodingKeys: String, CodingKey {
            case user, app, expires, used
            case webSessionKey = "web_session_key"
        }

        /// Creates a record.
        public init(user: String, app: String, webSessionKey: String, expires: Date, used: Bool = false) {
            self.user = user
            self.app = app
            self.webSessionKey = webSessionKey
            self.expires = expires
            self.used = used
        }
    }

    let backend: any Backend

    /// Creates the store.
    public init(backend: any Backend) { self.backend = backend }

    static func key(_ prefix: String, _ secret: String) -> String { Keys.key(prefix, SecretHash.hex(secret)) }

    static func isWellFormed(_ secret: String) -> Bool { WebSessionStore.isWellFormed(secret) }

    /// Stores a launch token.
    public func createLaunch(token: String, _ record: Record) async throws {
        try await backend.create(Item(key: Self.key("applaunch", token), value: try ResourceCodec.json(record), expires: record.expires))
    }

    /// Redeems the launch token `token`: answers its record the first time only (marked used
    /// with a compare-and-swap, so two proxies redeeming at once cannot both win), nil when it
    /// is unknown, expired from the backend, or used.
    public func redeemLaunch(token: String) async throws -> Record? {
        guard Self.isWellFormed(token), let item = try? await backend.get(Self.key("applaunch", token)) else { return nil }
        var record = try ResourceCodec.jsonDecoder().decode(Record.self, from: item.value)
        guard !record.used else { return nil }
        let unused = record
        record.used = true
        do {
            try await backend.compareAndSwap(
                expected: item, replacement: Item(key: item.key, value: try ResourceCodec.json(record), expires: item.expires))
        } catch {
            return nil
        }
        return unused
    }

    /// Stores an app session.
    public func createSession(id: String, _ record: Record) async throws {
        try await backend.create(Item(key: Self.key("appsessions", id), value: try ResourceCodec.json(record), expires: record.expires))
    }

    /// The app session `id`, if stored.
    public func session(id: String) async throws -> Record? {
        guard Self.isWellFormed(id), let item = try? await backend.get(Self.key("appsessions", id)) else { return nil }
        return try ResourceCodec.jsonDecoder().decode(Record.self, from: item.value)
    }

    /// Deletes the app session `id`.
    public func deleteSession(id: String) async throws {
        guard Self.isWellFormed(id) else { return }
        try? await backend.delete(Self.key("appsessions", id))
    }
}
