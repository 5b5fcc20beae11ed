import Foundation
public import TeleportAPI
import TeleportAccess
import TeleportCrypto
import TeleportEvents
import TeleportServices

extension AuthServer {
    /// A browser login: checks the password and TOTP code exactly as ``login(_:)`` does (same
    /// lockout, same `user.login` events) and stores a web session under the SHA-256 of a random
    /// 32-byte id. The session ends after ``AuthSettings/webIdleTimeout`` without use and, at the
    /// latest, when a certificate issued now would expire (the shortest `max_session_ttl` of the
    /// user's roles). A lock on the user refuses it.
    public func createWebSession(_ request: AuthAPI.CreateWebSessionRequest) async throws -> AuthAPI.WebSessionInfo {
        var fields: [String: JSONValue] = [
            "user": .string(request.user), "method": "local", "addr.remote": .string(request.clientAddress ?? ""),
        ]
        func fail(_ reason: String, _ error: TeleportError) async throws -> Never {
            try await refuseLogin(fields, reason: reason, error: error)
        }
        if !settings.localAuth { try await fail("local_auth is false", Self.localAuthDisabled) }
        let user: User
        do {
            user = try await checkCredentials(
                user: request.user, password: request.password, otpCode: request.otpCode, clientAddress: request.clientAddress
            ) { user in
                if let lock = try await locks().first(where: { $0.applies(user: user.name, login: nil, node: [], at: clock.now()) }) {
                    throw TeleportError.accessDenied(lock.refusal)
                }
            }
        } catch let refusal as LoginRefusal {
            try await fail(refusal.reason, refusal.error)
        }
        let roles = await existingRoles(user.spec.roles)
        let cap = AccessChecker(roles: roles, traits: [:]).maxSessionTTL(fallback: settings.maxSessionTTL)
        let info = try await startWebSession(user: user, cap: cap)
        fields["success"] = true
        fields["web_session"] = true
        settings.metrics?.increment(.logins, ["result": "success"])
        try await emit(AuditEventType.userLogin, fields: fields)
        return info
    }

    /// Stores a new web session for `user` that ends at the latest `cap` from now; the answer
    /// carries its id (for the proxy's cookie). Used by the password and single sign-on logins.
    func startWebSession(user: User, cap: TimeInterval) async throws -> AuthAPI.WebSessionInfo {
        let now = clock.now()
        let id = SecretHash.randomHex(bytes: 32)
        let record = WebSessionStore.Record(
            user: user.name, csrfToken: SecretHash.randomHex(bytes: 32), created: now, expires: now.addingTimeInterval(cap),
            idleTimeout: settings.webIdleTimeout, lastUsed: now)
        try await webSessions.create(id: id, record)
        var info = try await webSessionInfo(user: user, record: record)
        info.sessionID = id
        return info
    }

    /// The web session `id` if it is still valid: not deleted, not idle past its deadline, not past
    /// its hard end, its user still exists and no lock targets the user. With `renew`, the idle
    /// deadline moves to now + the idle timeout (never past the hard end).
    ///
    /// - Throws: ``TeleportError`` `accessDenied` ("the web session has expired or was ended")
    ///   for every invalid session alike.
    public func authenticateWebSession(_ request: AuthAPI.WebSessionIDRequest) async throws -> AuthAPI.WebSessionInfo {
        let gone = TeleportError.accessDenied("the web session has expired or was ended; log in again")
        let now = clock.now()
        guard var record = try await webSessions.get(id: request.sessionID), !record.isOver(at: now) else { throw gone }
        guard let user = try? await stores.users.get(record.user) else {
            try await webSessions.delete(id: request.sessionID)
            throw gone
        }
        if let lock = try await locks().first(where: { $0.applies(user: user.name, login: nil, node: [], at: now) }) {
            throw TeleportError.accessDenied(lock.refusal)
        }
        // Renewing writes to the backend: at most once per tenth of the idle timeout (and 30 s).
        if request.renew, now.timeIntervalSince(record.lastUsed) >= min(record.idleTimeout / 10, 30) {
            record.lastUsed = now
            try await webSessions.update(id: request.sessionID, record)
        }
        return try await webSessionInfo(user: user, record: record)
    }

    /// Ends the web session `id` (logout); ending an unknown or ended session is not an error.
    public func deleteWebSession(_ request: AuthAPI.WebSessionIDRequest) async throws {
        try await webSessions.delete(id: request.sessionID)
    }

    func webSessionInfo(user: User, record: WebSessionStore.Record) async throws -> AuthAPI.WebSessionInfo {
        let traits = AccessChecker.templateTraits(user.spec.traits)
        let logins = AccessChecker(roles: await existingRoles(user.spec.roles), traits: traits).allowedLogins
        return AuthAPI.WebSessionInfo(
            sessionID: nil, user: user.name, roles: user.spec.roles, logins: logins, csrfToken: record.csrfToken, expires: record.expires,
            idleExpires: record.idleExpires)
    }
}
