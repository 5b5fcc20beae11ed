public import Foundation
public import TeleportAPI
public import TeleportBackend
import TeleportCrypto

/// What the auth service keeps about local users besides the `user` resource: the password hash,
/// the enrolled TOTP secret with the last used step, recent failed logins, and signup/reset tokens
/// (stored under the SHA-256 of their value).
public struct UserSecretsStore: Sendable {
    /// The TOTP enrolment.
    public struct TOTPState: Codable, Sendable, Equatable {
        /// Base32 secret.
        public var secret: String
        /// The last step a code was accepted for (replays of it or older steps are refused).
        public var lastStep: Int64?

        enum CodingKeys: String, CodingKey {
            case secret
            case lastStep = "last_step"
        }

        /// Creates a state.
        public init(secret: String, lastStep: Int64?) {
            self.secret = secret
            self.lastStep = lastStep
        }
    }

    /// A stored signup or reset token.
    public struct UserToken: Codable, Sendable, Equatable {
        /// The user.
        public var user: String
        /// Signup or reset.
        public var kind: AuthAPI.UserTokenKind
        /// When it expires.
        public var expires: Date
        /// The TOTP secret offered for enrolment.
        public var totpSecret: String?

        enum CodingKeys: String, CodingKey {
            case user, kind, expires
            case totpSecret = "totp_secret"
        }

        /// Creates a token record.
        public init(user: String, kind: AuthAPI.UserTokenKind, expires: Date, totpSecret: String?) {
            self.user = user
            self.kind = kind
            self.expires = expires
            self.totpSecret = totpSecret
        }
    }

    let backend: any Backend

    /// Creates the store.
    public init(backend: any Backend) { self.backend = backend }

    func key(_ user: String, _ part: String) -> String { Keys.key("web", "users", user, part) }

    func read<T: Decodable>(_ type: T.Type, _ key: String) async throws -> T? {
        guard let item = try? await backend.get(key) else { return nil }
        return try ResourceCodec.jsonDecoder().decode(type, from: item.value)
    }

    func write<T: Encodable>(_ value: T, _ key: String, expires: Date? = nil) async throws {
        try await backend.put(Item(key: key, value: try ResourceCodec.json(value), expires: expires))
    }

    /// The bcrypt hash of the user's password, if set.
    public func passwordHash(_ user: String) async throws -> String? {
        try await read([String: String].self, key(user, "pwd"))?["hash"]
    }

    /// Stores the bcrypt hash of the user's password.
    public func setPasswordHash(_ user: String, _ hash: String) async throws {
        try await write(["hash": hash], key(user, "pwd"))
    }

    /// The TOTP enrolment, if any.
    public func totp(_ user: String) async throws -> TOTPState? {
        try await read(TOTPState.self, key(user, "totp"))
    }

    /// Stores the TOTP enrolment.
    public func setTOTP(_ user: String, _ state: TOTPState) async throws {
        try await write(state, key(user, "totp"))
    }

    /// Failed login times within the window.
    public func failures(_ user: String) async throws -> [Date] {
        try await read([Date].self, key(user, "attempts")) ?? []
    }

    /// Stores failed login times (kept 30 minutes).
    public func setFailures(_ user: String, _ failures: [Date], expires: Date) async throws {
        if failures.isEmpty {
            try? await backend.delete(key(user, "attempts"))
        } else {
            try await write(failures, key(user, "attempts"), expires: expires)
        }
    }

    /// Removes every secret of a user (on delete).
    public func deleteAll(_ user: String) async throws {
        try await backend.deleteRange(prefix: Keys.key("web", "users", user) + "/")
    }

    /// Stores a user token under the hash of `value`, expiring with it.
    public func createToken(value: String, _ token: UserToken) async throws {
        try await backend.create(
            Item(key: Keys.key("usertokens", SecretHash.hex(value)), value: try ResourceCodec.json(token), expires: token.expires))
    }

    /// The token for `value`, if it exists and has not expired.
    public func token(value: String) async throws -> UserToken? {
        try await read(UserToken.self, Keys.key("usertokens", SecretHash.hex(value)))
    }

    /// Consumes a token; false when it was already used (another request won).
    public func consumeToken(value: String) async throws -> Bool {
        do {
            try await backend.delete(Keys.key("usertokens", SecretHash.hex(value)))
            return true
        } catch let error as TeleportError where error.code == .notFound {
            return false
        }
    }
}
