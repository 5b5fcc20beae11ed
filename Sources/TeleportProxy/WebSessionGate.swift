import Foundation
import Hummingbird
import Logging
import TeleportAPI
import TeleportCrypto

/// The check every web UI route makes first: the request's session cookie must name a valid web
/// session (401 otherwise), and a state-changing request must carry that session's CSRF token
/// (403 otherwise). Pages send a signed-out browser to the login page instead of the 401.
struct WebSessionGate<Auth: ProxyAuthAccess>: Sendable {
    let auth: Auth
    let logger: Logger

    /// The session of the request's cookie; a response to send instead when there is none or it
    /// is no longer valid (401), or when `stateChanging` and the CSRF header is missing or not
    /// this session's (403).
    func session(
        _ request: Request, context: ProxyRequestContext, stateChanging: Bool
    ) async -> Result<(id: String, info: AuthAPI.WebSessionInfo), PageFailure> {
        let id: String
        let info: AuthAPI.WebSessionInfo
        do {
            switch try await WebSessionCookie.session(of: request, auth: auth) {
            case .failure(let failure): return .failure(failure)
            case .success(let found): (id, info) = found
            }
        } catch {
            return .failure(PageFailure(response: unavailable(error)))
        }
        if stateChanging {
            guard let sent = WebSessionCookie.csrfToken(in: request), ConstantTime.equal(sent, info.csrfToken) else {
                logger.info(
                    "web request refused: CSRF token missing or wrong",
                    metadata: ["tp.user": "\(info.user)", "tp.client.addr": "\(context.clientAddress ?? "")"])
                return .failure(
                    PageFailure(
                        response: WebResponse.jsonError(
                            TeleportError.accessDenied("the request's CSRF token (X-CSRF-Token) is missing or not this session's"),
                            status: .forbidden)))
            }
        }
        return .success((id, info))
    }

    /// A page for a signed-in user: `render`'s HTML, or a redirect to the login page when the
    /// browser has no valid session.
    func page(
        _ request: Request, context: ProxyRequestContext, render: (AuthAPI.WebSessionInfo) -> String
    ) async -> Response {
        switch await session(request, context: context, stateChanging: false) {
        case .success(let found): return WebUIPages.response(render(found.info))
        case .failure(let failure):
            guard failure.response.status == .unauthorized else { return failure.response }
            return Response(status: .seeOther, headers: [.location: "/web/login", .cacheControl: "no-store"])
        }
    }

    /// A failure that is not the user's: details to the log, a sentence to the client.
    func unavailable(_ error: any Error) -> Response {
        if let error = error as? TeleportError, error.code != .internalError {
            logger.warning("web request failed", metadata: ["tp.error": "\(error.message)"])
            if error.code == .connectionProblem {
                return WebResponse.jsonError(TeleportError.connectionProblem("the proxy cannot reach the auth service right now; try again in a minute"))
            }
            return WebResponse.jsonError(error)
        }
        logger.error("web request failed", metadata: ["tp.error": "\(error)"])
        return WebResponse.jsonError(TeleportError.internalError("internal error; see the proxy's log"))
    }
}
