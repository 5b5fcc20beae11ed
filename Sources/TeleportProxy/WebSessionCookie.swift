import Hummingbird
import TeleportAPI

/// The web UI's session cookie: `__Host-` prefixed (the browser then insists on Secure, Path=/
/// and no Domain), HttpOnly (page scripts cannot read it), SameSite=Strict (other sites cannot
/// make the browser send it). Its value is the session's secret id; the backend holds only its hash.
enum WebSessionCookie {
    /// The cookie's name.
    static let name = "__Host-session"
    /// The header that carries the session's CSRF token on state-changing requests.
    static let csrfHeader = "X-CSRF-Token"

    /// The `Set-Cookie` value that stores `id`.
    static func setCookie(_ id: String) -> String {
        "\(name)=\(id); Secure; HttpOnly; SameSite=Strict; Path=/"
    }

    /// The `Set-Cookie` value that removes the cookie (logout).
    static let clearCookie = "\(name)=; Max-Age=0; Secure; HttpOnly; SameSite=Strict; Path=/"

    /// The cookie's value in `request`, if sent.
    static func value(in request: Request) -> String? {
        guard let value = request.cookies[name]?.value, !value.isEmpty else { return nil }
        return value
    }

    /// The CSRF header's value in `request`, if sent.
    static func csrfToken(in request: Request) -> String? {
        guard let field = HTTPFields.Element.Name(csrfHeader) else { return nil }
        return request.headers[field]
    }
}

extension WebSessionCookie {
    /// The web session of `request`'s cookie as the auth service knows it; `.failure` carries the
    /// 401 to send when there is no cookie or it is no longer valid (clearing a stale cookie).
    /// Other errors (the auth service unreachable) are thrown to the caller.
    static func session<Auth: ProxyAuthAccess>(
        of request: Request, auth: Auth
    ) async throws -> Result<(id: String, info: AuthAPI.WebSessionInfo), PageFailure> {
        guard let id = value(in: request) else {
            return .failure(PageFailure(response: WebResponse.jsonError(TeleportError.accessDenied("log in first"), status: .unauthorized)))
        }
        do {
            return .success((id, try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: id))))
        } catch let error as TeleportError where error.code == .accessDenied || error.code == .notFound || error.code == .badParameter {
            var response = WebResponse.jsonError(error, status: .unauthorized)
            response.headers[.setCookie] = clearCookie
            return .failure(PageFailure(response: response))
        }
    }
}
