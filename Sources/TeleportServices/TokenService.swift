public import Foundation
public import TeleportAPI
import TeleportCrypto

/// Join tokens: dynamic ones in the backend under the SHA-256 of their value (the value itself is
/// never stored), and static ones from `auth_service.tokens`, kept as hashes in memory and compared
/// in constant time.
public struct TokenService: Sendable {
    /// A token from the configuration.
    public struct StaticToken: Sendable, Equatable {
        /// SHA-256 of the value, hex.
        public var hash: String
        /// The roles it grants.
        public var roles: [SystemRole]
    }

    let store: ResourceStore<ProvisionToken>
    let staticTokens: [StaticToken]
    let clock: any WallClock

    /// Creates the service.
    public init(stores: ClusterStores, staticTokens: [StaticToken], clock: any WallClock) {
        store = stores.tokens
        self.staticTokens = staticTokens
        self.clock = clock
    }

    /// Parses `auth_service.tokens` entries: `"proxy,node:VALUE"` or `"auth:/path/to/file"` (the
    /// value read from the file).
    public static func parseStatic(_ entries: [String]) throws -> [StaticToken] {
        try entries.map { entry in
            guard let colon = entry.firstIndex(of: ":") else {
                throw TeleportError.badParameter("auth_service.tokens: \"\(Self.mask(entry))\" is not roles:token")
            }
            let roles = try entry[..<colon].split(separator: ",").map { name -> SystemRole in
                guard let role = SystemRole(caseInsensitive: name.trimmingCharacters(in: .whitespaces)), role != .admin else {
                    throw TeleportError.badParameter("auth_service.tokens: unknown role \"\(name)\" (expected node, proxy or auth)")
                }
                return role
            }
            var value = String(entry[entry.index(after: colon)...])
            if value.hasPrefix("/") {
                guard let contents = try? String(contentsOfFile: value, encoding: .utf8) else {
                    throw TeleportError.notFound("auth_service.tokens: cannot read the token file \(value)")
                }
                value = contents.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard !roles.isEmpty, !value.isEmpty else {
                throw TeleportError.badParameter("auth_service.tokens: an entry has no roles or no token")
            }
            return StaticToken(hash: SecretHash.hex(value), roles: roles)
        }
    }

    /// Shows the first 4 characters of a secret.
    public static func mask(_ value: String) -> String {
        value.count <= 8 ? "****" : String(value.prefix(4)) + String(repeating: "*", count: 8)
    }

    /// Creates a dynamic token (a random 32-hex-character one when `value` is nil); returns the value.
    public func create(value: String?, roles: [SystemRole], ttlSeconds ttl: TimeInterval) async throws -> AuthAPI.TokenInfo {
        guard !roles.isEmpty else { throw TeleportError.badParameter("a token needs at least one role") }
        guard roles.allSatisfy({ $0 != .admin }) else { throw TeleportError.badParameter("a token cannot grant Admin") }
        guard ttl > 0, ttl <= 48 * 3600 else {
            throw TeleportError.badParameter("the token TTL must be between 1s and 48h")
        }
        let token = value ?? SecretHash.randomHex()
        try TokenValue.check(token)
        let expires = clock.now().addingTimeInterval(ttl)
        let resource = ProvisionToken(name: SecretHash.hex(token), roles: roles, metadata: Metadata(name: "", expires: expires))
        try await store.create(resource)
        return AuthAPI.TokenInfo(token: token, roles: roles, expires: expires, isStatic: false)
    }

    /// The roles `value` grants, checked for `role`; the same error for unknown, expired and
    /// revoked tokens so that nothing about stored tokens is revealed.
    public func validate(_ value: String, for role: SystemRole) async throws -> [SystemRole] {
        let hash = SecretHash.hex(value)
        var roles: [SystemRole]?
        for token in staticTokens where ConstantTime.equal(token.hash, hash) {
            roles = token.roles
        }
        if roles == nil, let stored = try? await store.get(hash) {
            roles = stored.spec.roles
        }
        guard let roles else {
            throw TeleportError.accessDenied("the join token is not valid (unknown, expired or revoked); ask for a new one with `tctl nodes add`")
        }
        guard roles.contains(role) else {
            throw TeleportError.accessDenied(
                "the join token does not allow joining as \(role.rawValue) (it allows \(roles.map(\.rawValue).joined(separator: ",")))")
        }
        return roles
    }

    /// Every token, masked (values are not stored; the first characters of the hash identify them).
    public func list() async throws -> [AuthAPI.TokenInfo] {
        let statics = staticTokens.map { AuthAPI.TokenInfo(token: "static:" + $0.hash.prefix(12), roles: $0.roles, expires: nil, isStatic: true) }
        let dynamic = try await store.list().map {
            AuthAPI.TokenInfo(token: String($0.name.prefix(12)), roles: $0.spec.roles, expires: $0.metadata.expires, isStatic: false)
        }
        return statics + dynamic
    }

    /// Revokes a dynamic token given its value, or the hash (prefix of at least 12 characters) that
    /// `list()` shows.
    public func delete(_ valueOrHash: String) async throws {
        if (try? await store.get(SecretHash.hex(valueOrHash))) != nil {
            try await store.delete(SecretHash.hex(valueOrHash))
            return
        }
        guard valueOrHash.count >= 12 else { throw TeleportError.notFound("token \(Self.mask(valueOrHash)) is not found") }
        let matches = try await store.list().filter { $0.name.hasPrefix(valueOrHash.lowercased()) }
        guard matches.count == 1, let match = matches.first else {
            throw TeleportError.notFound("token \(Self.mask(valueOrHash)) is not found")
        }
        try await store.delete(match.name)
    }
}

extension TokenService {
    /// Stores a token resource given with its value as the name (`tctl create` of `kind: token`):
    /// the name is replaced by the value's hash before it is stored.
    public func put(_ token: ProvisionToken, upsert: Bool) async throws {
        var hashed = token
        hashed.metadata.name = SecretHash.hex(token.name)
        if upsert { try await store.upsert(hashed) } else { try await store.create(hashed) }
    }
}
