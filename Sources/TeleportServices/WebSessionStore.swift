public import Foundation
public import TeleportBackend
import TeleportAPI
import TeleportCrypto

/// Browser sessions of the proxy's web UI, in the backend so that every proxy sees the same ones
/// (a logout on one proxy ends the session on all). A session is stored under the SHA-256 of its
/// secret id: a backend dump does not hold usable cookies.
public struct WebSessionStore: Sendable {
    /// A stored web session.
    public struct Record: Codable, Sendable, Equatable {
        /// The user.
        public var user: String
        /// The CSRF token bound to the session.
        public var csrfToken: String
        /// When it was created.
        public var created: Date
        /// The hard end (the user's certificate lifetime).
        public var expires: Date
        /// Inactivity allowed, in seconds (`auth_service.web_idle_timeout`).
        public var idleTimeout: TimeInterval
        /// The last use that renewed it.
        public var lastUsed: Date

        enum CodingKeys: String, CodingKey {
            case user, created, expires
            case csrfToken = "csrf_token"
            case idleTimeout = "idle_timeout"
            case lastUsed = "last_used"
        }

        /// Creates a record.
        public init(user: String, csrfToken: String, created: Date, expires: Date, idleTimeout: TimeInterval, lastUsed: Date) {
            self.user = user
            self.csrfToken = csrfToken
            self.created = created
            self.expires = expires
            self.idleTimeout = idleTimeout
            self.lastUsed = lastUsed
        }

        /// When the session ends if not used again: the idle deadline, never past ``expires``.
        public var idleExpires: Date { min(lastUsed.addingTimeInterval(idleTimeout), expires) }

        /// Whether the session is over at `now`.
        public func isOver(at now: Date) -> Bool { now >= idleExpires }
    }

    let backend: any Backend

    /// Creates the store.
    public init(backend: any Backend) { self.backend = backend }

    /// The backend key of the session `id` (its hash; the id itself is never stored).
    public static func key(id: String) -> String { Keys.key("websessions", SecretHash.hex(id)) }

    /// Whether `id` has the shape of a session id (64 lowercase hex digits).
    public static func isWellFormed(_ id: String) -> Bool {
        id.utf8.count == 64 && id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// Stores a new session; the backend forgets it at its idle deadline.
    public func create(id: String, _ record: Record) async throws {
        try await backend.create(Item(key: Self.key(id: id), value: try ResourceCodec.json(record), expires: record.idleExpires))
    }

    /// The session `id`, if stored.
    public func get(id: String) async throws -> Record? {
        guard Self.isWellFormed(id), let item = try? await backend.get(Self.key(id: id)) else { return nil }
        return try ResourceCodec.jsonDecoder().decode(Record.self, from: item.value)
    }

    /// The session stored under the backend key `key` (``key(id:)``): an app session holds the
    /// key of its web session, never the id.
    public func get(key: String) async throws -> Record? {
        guard key.hasPrefix(Keys.key("websessions") + "/"), let item = try? await backend.get(key) else { return nil }
        return try ResourceCodec.jsonDecoder().decode(Record.self, from: item.value)
    }

    /// Stores the renewed `record` under the backend key `key`.
    public func update(key: String, _ record: Record) async throws {
        try await backend.put(Item(key: key, value: try ResourceCodec.json(record), expires: record.idleExpires))
    }

    /// Stores the renewed `record` (a later use moved its idle deadline).
    public func update(id: String, _ record: Record) async throws {
        try await backend.put(Item(key: Self.key(id: id), value: try ResourceCodec.json(record), expires: record.idleExpires))
    }

    /// Deletes every session of `user` except `keeping` (the session that changed the password);
    /// answers how many ended. A password change or reset thus signs the user out everywhere else.
    @discardableResult
    public func deleteAll(user: String, keeping id: String? = nil) async throws -> Int {
        let kept = id.map { Self.key(id: $0) }
        var ended = 0
        for item in try await backend.getRange(prefix: Keys.key("websessions") + "/") where item.key != kept {
            guard let record = try? ResourceCodec.jsonDecoder().decode(Record.self, from: item.value), record.user == user else {
                continue
            }
            try? await backend.delete(item.key)
            ended += 1
        }
        return ended
    }

    /// Deletes the session `id` (logout); no error when it is already gone.
    public func delete(id: String) async throws {
        guard Self.isWellFormed(id) else { return }
        try? await backend.delete(Self.key(id: id))
    }
}
