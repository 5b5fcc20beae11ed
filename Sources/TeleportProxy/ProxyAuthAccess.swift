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
}

extension AuthClient: ProxyAuthAccess {}
