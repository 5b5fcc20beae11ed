import Foundation
import Hummingbird
import Logging
import NIOCore
import TeleportAPI

/// Single sign-on at the proxy (the auth service does every provider call):
///
/// - `POST /webapi/{oidc,github}/login/console`: `tsh login --auth=NAME` gets the provider's URL;
/// - `GET /v1/webapi/{oidc,github}/login/web?connector_id=NAME&redirect_url=/web`: a login page
///   button; 302 to the provider, with a `__Host-sso-state` cookie (SameSite=Lax) that binds the
///   login to this browser;
/// - `GET /v1/webapi/{oidc,github}/callback?code=&state=` (the connectors' `redirect_url`): a console
///   login sends the browser on to tsh's loopback listener with the sealed result; a web login
///   (its state cookie must match) gets the web session cookie and a page that moves on to the
///   return path (a same-site navigation, so the `SameSite=Strict` session cookie is sent).
struct SSORoutes<Auth: ProxyAuthAccess>: Sendable {
    let auth: Auth
    let logger: Logger

    /// The cookie that binds a web login's state to the browser that started it.
    static var stateCookie: String { "__Host-sso-state" }

    /// Adds the routes to `router`.
    func register(on router: Router<ProxyRequestContext>) {
        for kind in AuthAPI.SSOKind.allCases {
            router.post(RouterPath("webapi/\(kind.rawValue)/login/console")) { request, context in
                await console(kind, request, context: context)
            }
            router.get(RouterPath("v1/webapi/\(kind.rawValue)/login/web")) { request, context in
                await web(kind, request, context: context)
            }
            router.get(RouterPath("v1/webapi/\(kind.rawValue)/callback")) { request, context in
                await callback(kind, request, context: context)
            }
        }
    }

    /// `POST /webapi/KIND/login/console`.
    func console(_ kind: AuthAPI.SSOKind, _ request: Request, context: ProxyRequestContext) async -> Response {
        var request = request
        let login: WebAPI.SSOConsoleLoginRequest
        do {
            guard request.mediaType == "application/json" else {
                return WebResponse.jsonError(
                    TeleportError.badParameter("the login request must be JSON (Content-Type: application/json)"), status: .unsupportedMediaType)
            }
            let body = try await request.boundedBody(limit: ProxyRequestContext.maxBodyBytes)
            login = try ResourceCodec.jsonDecoder().decode(WebAPI.SSOConsoleLoginRequest.self, from: Data(body.readableBytesView))
        } catch let error as TeleportError {
            return WebResponse.jsonError(error, status: error.code == .limitExceeded ? .contentTooLarge : nil)
        } catch let error as DecodingError {
            return WebResponse.jsonError(TeleportError.badParameter("the login request is not valid: \(LoginRoute<Auth>.describe(error))"))
        } catch {
            return WebResponse.jsonError(TeleportError.badParameter("the login request could not be read"))
        }
        do {
            try ConnectorURL.checkClientRedirect(login.clientRedirectURL)
            let created = try await auth.createSSORequest(
                AuthAPI.CreateSSORequest(
                    kind: kind, connectorID: login.connectorID, mode: .console, sshPublicKey: login.sshPublicKey,
                    tlsPublicKeyPEM: login.tlsPublicKeyPEM, keyProof: login.keyProof, ttlSeconds: login.ttlSeconds,
                    clientRedirectURL: login.clientRedirectURL, clientAddress: context.clientAddress))
            return WebResponse.json((try? ResourceCodec.json(created)) ?? Data())
        } catch let error as TeleportError {
            logger.info("sso login refused", metadata: ["tp.error": "\(error.message)", "tp.client.addr": "\(context.clientAddress ?? "")"])
            return WebResponse.jsonError(error)
        } catch {
            return WebResponse.jsonError(TeleportError.internalError("internal error; see the proxy's log"))
        }
    }

    /// `GET /v1/webapi/KIND/login/web`.
    func web(_ kind: AuthAPI.SSOKind, _ request: Request, context: ProxyRequestContext) async -> Response {
        let query = request.uri.queryParameters
        let connector = query.get("connector_id") ?? ""
        let redirect = query.get("redirect_url") ?? "/web"
        do {
            guard !connector.isEmpty else { throw TeleportError.badParameter("connector_id is missing (the login page's buttons carry it)") }
            let path = try ConnectorURL.checkWebRedirect(redirect)
            let created = try await auth.createSSORequest(
                AuthAPI.CreateSSORequest(kind: kind, connectorID: connector, mode: .web, redirectURL: path, clientAddress: context.clientAddress))
            guard let state = URLComponents(string: created.redirectURL)?.queryItems?.first(where: { $0.name == "state" })?.value else {
                throw TeleportError.internalError("the provider URL carries no state")
            }
            var response = Response(status: .found, headers: [.location: created.redirectURL, .cacheControl: "no-store"])
            response.headers[.setCookie] = "\(Self.stateCookie)=\(state); Max-Age=600; Secure; HttpOnly; SameSite=Lax; Path=/"
            return response
        } catch let error as TeleportError {
            return failurePage(error, context: context)
        } catch {
            return failurePage(TeleportError.internalError("internal error; see the proxy's log"), context: context)
        }
    }

    /// `GET /v1/webapi/KIND/callback`.
    func callback(_ kind: AuthAPI.SSOKind, _ request: Request, context: ProxyRequestContext) async -> Response {
        let query = request.uri.queryParameters
        let state = query.get("state") ?? ""
        do {
            guard !state.isEmpty else { throw TeleportError.badParameter("the callback carries no state") }
            let result = try await auth.completeSSOCallback(
                AuthAPI.SSOCallbackRequest(
                    kind: kind, code: query.get("code"), state: state, error: query.get("error"), errorDescription: query.get("error_description"),
                    clientAddress: context.clientAddress))
            switch result.mode {
            case .console:
                guard let target = result.clientRedirectURL else { throw TeleportError.internalError("the auth service sent no tsh callback") }
                // Checked again: the browser is only ever sent to a loopback listener.
                try ConnectorURL.checkClientRedirect(target, maxBytes: 64 * 1024)
                logger.info("sso login", metadata: ["tp.user": "\(result.username)", "tp.client.addr": "\(context.clientAddress ?? "")"])
                return Response(status: .found, headers: [.location: target, .cacheControl: "no-store"])
            case .web:
                // A web login must come back to the browser that started it.
                guard let bound = request.cookies[Self.stateCookie]?.value, Self.constantTimeEqual(bound, state) else {
                    throw TeleportError.accessDenied("this login was not started in this browser (its state cookie is missing or differs); start again from the login page")
                }
                guard let session = result.webSession, let id = session.sessionID else {
                    throw TeleportError.internalError("the auth service sent no web session")
                }
                let path = try ConnectorURL.checkWebRedirect(result.redirectURL ?? "/web")
                logger.info("web session created", metadata: ["tp.user": "\(result.username)", "tp.client.addr": "\(context.clientAddress ?? "")"])
                let escaped = HTMLText.escape(path)
                let html = "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url=\(escaped)\">"
                    + "<title>Signed in · Teleport</title></head><body><p>Signed in as \(HTMLText.escape(result.username)). "
                    + "<a id=\"continue\" href=\"\(escaped)\">Continue</a></p></body></html>"
                var response = WebUIPages.response(html)
                response.headers[values: .setCookie] = [
                    WebSessionCookie.setCookie(id), "\(Self.stateCookie)=; Max-Age=0; Secure; HttpOnly; SameSite=Lax; Path=/",
                ]
                return response
            }
        } catch let error as TeleportError {
            return failurePage(error, context: context)
        } catch {
            return failurePage(TeleportError.internalError("internal error; see the proxy's log"), context: context)
        }
    }

    /// The page for a refused login: the reason (escaped) and a link back to the login page.
    func failurePage(_ error: TeleportError, context: ProxyRequestContext) -> Response {
        logger.info("sso login refused", metadata: ["tp.error": "\(error.message)", "tp.client.addr": "\(context.clientAddress ?? "")"])
        let status = HTTPResponse.Status(code: error.code == .accessDenied ? 403 : error.code.httpStatus)
        let html = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Login failed · Teleport</title></head><body>"
            + "<h1>Login failed</h1><p id=\"error\" role=\"alert\">\(HTMLText.escape(error.message))</p>"
            + "<p><a href=\"/web/login\">Back to the login page</a></p></body></html>"
        return WebUIPages.response(html, status: status)
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for index in x.indices { diff |= x[index] ^ y[index] }
        return diff == 0
    }
}
