import TeleportAPI
import TeleportAuthClient

/// The auth API calls the proxy's web handlers make, so that the handlers can run against a fake
/// auth service in tests. ``AuthClient`` is the real one.
protocol ProxyAuthAccess: Sendable {
    /// Looks a signup or reset token up.
    func userToken(_ token: String) async throws -> AuthAPI.UserTokenInfo
    /// Completes a signup or reset.
    func completeUserToken(_ request: AuthAPI.CompleteUserTokenRequest) async throws
    /// Checks credentials and issues certificates.
    func login(_ request: AuthAPI.LoginRequest) async throws -> AuthAPI.LoginResponse
    /// Checks credentials and creates a web session.
    func createWebSession(_ request: AuthAPI.CreateWebSessionRequest) async throws -> AuthAPI.WebSessionInfo
    /// The web session of a cookie, if still valid (renewing it).
    func authenticateWebSession(_ request: AuthAPI.WebSessionIDRequest) async throws -> AuthAPI.WebSessionInfo
    /// Ends a web session on every proxy.
    func deleteWebSession(_ request: AuthAPI.WebSessionIDRequest) async throws
    /// How users log in and the single sign-on connectors.
    func authPreference() async throws -> AuthAPI.AuthPreference
    /// Starts a single sign-on login.
    func createSSORequest(_ request: AuthAPI.CreateSSORequest) async throws -> AuthAPI.SSORequestCreated
    /// Completes a single sign-on login.
    func completeSSOCallback(_ request: AuthAPI.SSOCallbackRequest) async throws -> AuthAPI.SSOCallbackResult
}

extension AuthClient: ProxyAuthAccess {}
