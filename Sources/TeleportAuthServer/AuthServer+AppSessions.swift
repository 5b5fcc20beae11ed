import Crypto
import Foundation
import TeleportAccess
public import TeleportAPI
import TeleportCrypto
import TeleportEvents
import TeleportServices
import X509

extension AuthServer {
    /// How long a launch token may wait for its redemption on the app's origin.
    static let appLaunchTTL: Double = 60

    var appSessions: AppSessionStore { AppSessionStore(backend: stores.backend) }

    /// The browser launch of an app: the web session must be valid (renewed like any use), the
    /// app registered and allowed by the user's roles' `app_labels` now (a refusal is audited). Stores a one-time token
    /// (its hash, 60 s) bound to the user, the web session and the app.
    public func launchApp(_ request: AuthAPI.AppLaunchRequest) async throws -> AuthAPI.AppLaunchResponse {
        let info = try await authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: request.webSessionID))
        let app: AppServer
        do {
            app = try await allowedApp(request.appName, user: info.user)
        } catch let error as TeleportError {
            let fields: [String: JSONValue] = [
                "user": .string(info.user), "app_name": .string(String(request.appName.prefix(64))), "web_session": true,
                "success": false, "error": .string(error.message),
            ]
            try? await emit(AuditEventType.appSessionStartFailure, fields: fields)
            throw error
        }
        let token = SecretHash.randomHex(bytes: 32)
        let record = AppSessionStore.Record(
            user: info.user, app: app.name, webSessionKey: WebSessionStore.key(id: request.webSessionID),
            expires: clock.now().addingTimeInterval(Self.appLaunchTTL))
        try await appSessions.createLaunch(token: token, record)
        return AuthAPI.AppLaunchResponse(token: token, publicAddr: app.spec.publicAddr)
    }

    /// Redeems a launch token on the app's origin: once, before its 60 s end, for the app it was
    /// made for, while its web session is valid. Creates the app session (ends with the web
    /// session's hard end, and earlier with its logout). Refusals and the start are audited.
    public func redeemAppLaunch(_ request: AuthAPI.AppSessionRequest) async throws -> AuthAPI.AppSessionCreated {
        var fields: [String: JSONValue] = [
            "app_name": .string(String(request.appName.prefix(64))), "addr.remote": .string(request.clientAddress ?? ""),
            "web_session": true,
        ]
        do {
            guard let record = try await appSessions.redeemLaunch(token: request.secret), record.expires > clock.now() else {
                throw TeleportError.accessDenied("the app launch link is unknown, expired or already used; launch the app again from the web UI")
            }
            fields["user"] = .string(record.user)
            guard record.app == request.appName else {
                throw TeleportError.accessDenied("the app launch link is for app \(record.app), not \(request.appName)")
            }
            let web = try await validWebSession(key: record.webSessionKey)
            let app = try await allowedApp(record.app, user: record.user)
            fields["app_public_addr"] = .string(app.spec.publicAddr)
            fields["app_uri"] = .string(app.spec.uri)
            let id = SecretHash.randomHex(bytes: 32)
            try await appSessions.createSession(
                id: id, AppSessionStore.Record(user: record.user, app: app.name, webSessionKey: record.webSessionKey, expires: web.expires))
            return AuthAPI.AppSessionCreated(sessionID: id, user: record.user, expires: web.expires)
        } catch let error as TeleportError {
            fields["success"] = false
            fields["error"] = .string(error.message)
            try? await emit(AuditEventType.appSessionStartFailure, fields: fields)
            throw error
        }
    }

    /// Checks an app session (the cookie) for a request on `request.appName`'s origin: stored,
    /// for this app, its web session still valid (not logged out, idle or past its end; renewed),
    /// the roles still allow the app. Answers a certificate of the user with the app route (a
    /// throw-away key: the proxy only hands it to the application service as the identity) that
    /// ends with the session.
    public func authenticateAppSession(_ request: AuthAPI.AppSessionRequest) async throws -> AuthAPI.AppSessionIdentity {
        let gone = TeleportError.accessDenied("the app session has expired or was ended; launch the app again from the web UI")
        guard let record = try await appSessions.session(id: request.secret), record.expires > clock.now() else { throw gone }
        guard record.app == request.appName else {
            throw TeleportError.accessDenied("the app session is for app \(record.app), not \(request.appName)")
        }
        let web: WebSessionStore.Record
        do {
            web = try await validWebSession(key: record.webSessionKey)
        } catch {
            try await appSessions.deleteSession(id: request.secret)
            throw gone
        }
        let app = try await allowedApp(record.app, user: record.user)
        let user = try await stores.users.get(record.user)
        let traits = AccessChecker.templateTraits(user.spec.traits)
        var identity = X509Identity(
            username: user.name, roles: user.spec.roles,
            logins: AccessChecker(roles: await existingRoles(user.spec.roles), traits: traits).allowedLogins, clusterName: clusterName)
        identity.traits = user.spec.traits
        identity.routeToApp = X509Identity.AppRoute(name: app.name, publicAddr: app.spec.publicAddr)
        let validity = min(web.expires, record.expires).timeIntervalSince(clock.now())
        let certificate = try await tlsAuthority(.user).issue(
            publicKey: P256.Signing.PrivateKey().publicKey, identity: identity, validity: validity, clock: clock)
        return AuthAPI.AppSessionIdentity(user: user.name, certificatePEM: try certificate.pemText())
    }

    /// The web session stored under `key` if valid now (as ``authenticateWebSession(_:)``),
    /// renewed like any use.
    func validWebSession(key: String) async throws -> WebSessionStore.Record {
        let gone = TeleportError.accessDenied("the web session has expired or was ended; log in again")
        let now = clock.now()
        guard var record = try await webSessions.get(key: key), !record.isOver(at: now) else { throw gone }
        guard (try? await stores.users.get(record.user)) != nil else { throw gone }
        if let lock = try await locks().first(where: { $0.applies(user: record.user, login: nil, node: [], at: now) }) {
            throw TeleportError.accessDenied(lock.refusal)
        }
        if now.timeIntervalSince(record.lastUsed) >= min(record.idleTimeout / 10, 30) {
            record.lastUsed = now
            try await webSessions.update(key: key, record)
        }
        return record
    }

    /// The registered app `name` if the roles of `user` (now) allow it.
    func allowedApp(_ name: String, user: String) async throws -> AppServer {
        guard let app = try await apps().first(where: { $0.name == name }) else {
            throw TeleportError.notFound("app \"\(name.prefix(64))\" is not registered")
        }
        let account = try await stores.users.get(user)
        let decision = try AccessChecker(roles: await existingRoles(account.spec.roles), traits: account.spec.traits).checkAppLabels(app.allLabels)
        guard decision.allowed else {
            throw TeleportError.accessDenied("access to app \(app.name) denied: \(decision.reasons.joined(separator: "; "))")
        }
        return app
    }
}
