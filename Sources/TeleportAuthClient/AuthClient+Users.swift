public import Foundation
public import TeleportAPI
import NIOHTTP1

extension AuthClient {
    /// Creates a user and its signup token (Admin).
    public func createUser(_ request: AuthAPI.CreateUserRequest) async throws -> AuthAPI.UserTokenInfo {
        try decode(AuthAPI.UserTokenInfo.self, try await call(.POST, "users", body: try ResourceCodec.json(request)))
    }

    /// Creates a reset token for `user` (Admin): the user sets a new password and TOTP; it unlocks the account.
    public func resetUser(_ user: String, ttlSeconds: Double) async throws -> AuthAPI.UserTokenInfo {
        let body = try ResourceCodec.json(["ttl_seconds": ttlSeconds])
        return try decode(AuthAPI.UserTokenInfo.self, try await call(.POST, "users/\(try pathComponent(user))/reset", body: body))
    }

    /// Looks a signup or reset token up (Proxy): who it is for, and the TOTP secret to enrol.
    public func userToken(_ token: String) async throws -> AuthAPI.UserTokenInfo {
        try decode(AuthAPI.UserTokenInfo.self, try await call(.GET, "usertokens/\(try pathComponent(token))"))
    }

    /// Completes a signup or reset (Proxy): sets the password and TOTP, consumes the token.
    public func completeUserToken(_ request: AuthAPI.CompleteUserTokenRequest) async throws {
        _ = try await call(.POST, "usertokens/complete", body: try ResourceCodec.json(request))
    }

    /// Checks a user's password and TOTP and issues certificates (Proxy, on behalf of the client).
    public func login(_ request: AuthAPI.LoginRequest) async throws -> AuthAPI.LoginResponse {
        try decode(AuthAPI.LoginResponse.self, try await call(.POST, "login", body: try ResourceCodec.json(request)))
    }

    /// Checks a user's password and TOTP for a browser and creates a web session (Proxy).
    public func createWebSession(_ request: AuthAPI.CreateWebSessionRequest) async throws -> AuthAPI.WebSessionInfo {
        try decode(AuthAPI.WebSessionInfo.self, try await call(.POST, "websessions", body: try ResourceCodec.json(request)))
    }

    /// The web session of a cookie if it is still valid, renewing its idle deadline (Proxy).
    public func authenticateWebSession(_ request: AuthAPI.WebSessionIDRequest) async throws -> AuthAPI.WebSessionInfo {
        try decode(AuthAPI.WebSessionInfo.self, try await call(.POST, "websessions/authenticate", body: try ResourceCodec.json(request)))
    }

    /// Ends a web session in the backend, for every proxy (Proxy).
    public func deleteWebSession(_ request: AuthAPI.WebSessionIDRequest) async throws {
        _ = try await call(.POST, "websessions/delete", body: try ResourceCodec.json(request))
    }

    /// Issues certificates for a user without a password (Admin; `tctl auth sign --user`).
    public func signUser(_ request: AuthAPI.SignUserRequest) async throws -> AuthAPI.LoginResponse {
        try decode(AuthAPI.LoginResponse.self, try await call(.POST, "certs/user", body: try ResourceCodec.json(request)))
    }

    /// Issues an SSH host certificate for an OpenSSH sshd (Admin; `tctl auth sign --host`).
    public func signHost(_ request: AuthAPI.SignHostRequest) async throws -> AuthAPI.SignHostResponse {
        try decode(AuthAPI.SignHostResponse.self, try await call(.POST, "certs/host", body: try ResourceCodec.json(request)))
    }

    /// The web terminal's certificates for a key the proxy made (a client
    /// ``actingFor(webSession:)`` only; `POST /v1/websessions/certs`).
    public func webSessionCertificates(_ request: AuthAPI.SignUserRequest) async throws -> AuthAPI.LoginResponse {
        try decode(AuthAPI.LoginResponse.self, try await call(.POST, "websessions/certs", body: try ResourceCodec.json(request)))
    }
}

extension AuthClient {
    /// `POST /v1/certs/db` (Admin): `tctl auth sign --format=db`.
    public func signDatabase(_ request: AuthAPI.SignDatabaseRequest) async throws -> AuthAPI.SignDatabaseResponse {
        try decode(AuthAPI.SignDatabaseResponse.self, try await call(.POST, "certs/db", body: try ResourceCodec.json(request)))
    }
}

extension AuthClient {
    /// `GET /v1/databases`: every registered database (Admin, Proxy) or those the caller's roles
    /// allow (users).
    public func databases() async throws -> [DatabaseServer] {
        try decode([DatabaseServer].self, try await call(.GET, "databases"))
    }

    /// `POST /v1/presence/databases` (a database service): one database's heartbeat.
    public func heartbeat(database: DatabaseServer) async throws {
        _ = try await call(.POST, "presence/databases", body: try ResourceCodec.json(database))
    }
}

extension AuthClient {
    /// `POST /v1/certs/dbroute` (Proxy, for `tsh db login`): the user's certificate with a route.
    public func databaseRouteCertificate(_ request: AuthAPI.DatabaseRouteCertRequest) async throws -> AuthAPI.DatabaseRouteCertResponse {
        try decode(AuthAPI.DatabaseRouteCertResponse.self, try await call(.POST, "certs/dbroute", body: try ResourceCodec.json(request)))
    }
}

extension AuthClient {
    /// `GET /v1/apps`: the registered apps (all for the administrator and proxies; the user's
    /// visible ones for users).
    public func apps() async throws -> [AppServer] {
        try decode([AppServer].self, try await call(.GET, "apps"))
    }

    /// `POST /v1/presence/apps` (an application service): one app's heartbeat.
    public func heartbeat(app: AppServer) async throws {
        _ = try await call(.POST, "presence/apps", body: try ResourceCodec.json(app))
    }

    /// `POST /v1/appsessions/launch` (a proxy): a one-time launch token for a web session's app.
    public func launchApp(_ request: AuthAPI.AppLaunchRequest) async throws -> AuthAPI.AppLaunchResponse {
        try decode(AuthAPI.AppLaunchResponse.self, try await call(.POST, "appsessions/launch", body: try ResourceCodec.json(request)))
    }

    /// `POST /v1/appsessions/redeem` (a proxy): redeems a launch token once; a new app session.
    public func redeemAppLaunch(_ request: AuthAPI.AppSessionRequest) async throws -> AuthAPI.AppSessionCreated {
        try decode(AuthAPI.AppSessionCreated.self, try await call(.POST, "appsessions/redeem", body: try ResourceCodec.json(request)))
    }

    /// `POST /v1/appsessions/authenticate` (a proxy): the user of a valid app session and a
    /// certificate with the app route.
    public func authenticateAppSession(_ request: AuthAPI.AppSessionRequest) async throws -> AuthAPI.AppSessionIdentity {
        try decode(AuthAPI.AppSessionIdentity.self, try await call(.POST, "appsessions/authenticate", body: try ResourceCodec.json(request)))
    }

    /// `POST /v1/certs/approute` (Proxy, for `tsh apps login`): the user's certificate with an app route.
    public func appRouteCertificate(_ request: AuthAPI.AppRouteCertRequest) async throws -> AuthAPI.DatabaseRouteCertResponse {
        try decode(AuthAPI.DatabaseRouteCertResponse.self, try await call(.POST, "certs/approute", body: try ResourceCodec.json(request)))
    }

    /// `POST /v1/jwt/app` (an application service): a `teleport-jwt-assertion` for a user and app.
    public func appJWT(_ request: AuthAPI.AppJWTRequest) async throws -> AuthAPI.AppJWTResponse {
        try decode(AuthAPI.AppJWTResponse.self, try await call(.POST, "jwt/app", body: try ResourceCodec.json(request)))
    }
}

extension AuthClient {
    /// How users log in and every single sign-on connector (Proxy).
    public func authPreference() async throws -> AuthAPI.AuthPreference {
        try decode(AuthAPI.AuthPreference.self, try await call(.GET, "sso/settings"))
    }

    /// Starts a single sign-on login; the provider's authorization URL (Proxy).
    public func createSSORequest(_ request: AuthAPI.CreateSSORequest) async throws -> AuthAPI.SSORequestCreated {
        try decode(AuthAPI.SSORequestCreated.self, try await call(.POST, "sso/requests", body: try ResourceCodec.json(request)))
    }

    /// Completes a single sign-on login from the provider's callback (Proxy).
    public func completeSSOCallback(_ request: AuthAPI.SSOCallbackRequest) async throws -> AuthAPI.SSOCallbackResult {
        try decode(AuthAPI.SSOCallbackResult.self, try await call(.POST, "sso/callback", body: try ResourceCodec.json(request)))
    }
}
