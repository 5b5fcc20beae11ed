import Foundation
import Hummingbird
import Logging
import NIOCore
import TeleportAPI
import TeleportCrypto

/// The web UI's sessions and its first pages:
///
/// - `GET /web/login`: the login page (user, password, TOTP code);
/// - `POST /webapi/sessions`: logs in (JSON from the page's script, or the plain form without
///   script) through the auth service, which checks the credentials exactly as for `tsh login` and
///   stores the session in the backend; sets the ``WebSessionCookie``;
/// - `DELETE /webapi/sessions`: logs out (ends the session in the backend, for every proxy);
/// - `GET /webapi/me`: who the session is (user, roles, logins) and its CSRF token;
/// - `GET /web` (and `/web/`): the signed-in page; `GET /web/nodes`: the servers the user may reach
///   (data from `GET /webapi/nodes`, ``NodesRoute``); `GET /web/app.js`, `/web/app.css`: its assets.
///
/// Every request made with the cookie that changes state must carry the session's CSRF token in
/// `X-CSRF-Token` (``WebSessionCookie/csrfHeader``); ``WebSecurityMiddleware`` refuses foreign origins.
struct WebSessionRoutes<Auth: ProxyAuthAccess>: Sendable {
    let auth: Auth
    let clusterName: String
    let logger: Logger
    /// Called with the user after a logout on this proxy (the app session cookies it remembers go).
    var onLogout: @Sendable (String) -> Void = { _ in }

    /// Adds the routes to `router`.
    func register(on router: Router<ProxyRequestContext>) {
        router.get("web/login") { _, _ in WebUIPages.response(await loginPage()) }
        router.get("web") { request, context in await home(request, context: context) }
        router.get("web/nodes") { request, context in await nodesPage(request, context: context) }
        router.get("web/app.js") { _, _ in WebUIPages.asset(WebUIPages.appJS, type: "text/javascript; charset=utf-8") }
        router.get("web/app.css") { _, _ in WebUIPages.asset(WebUIPages.appCSS, type: "text/css; charset=utf-8") }
        router.post("webapi/sessions") { request, context in await login(request, context: context) }
        router.delete("webapi/sessions") { request, context in await logout(request, context: context) }
        router.get("webapi/me") { request, context in await me(request, context: context) }
    }

    /// The login page with a button per single sign-on connector; the password form is hidden
    /// when `local_auth` is false. Without an answer from the auth service, the plain form.
    func loginPage(error: String? = nil) async -> String {
        let preference = try? await auth.authPreference()
        return WebUIPages.login(
            clusterName: clusterName, error: error, connectors: preference?.connectors ?? [], localAuth: preference?.localAuth ?? true)
    }

    // MARK: Sessions

    var gate: WebSessionGate<Auth> { WebSessionGate(auth: auth, logger: logger) }

    func session(_ request: Request, context: ProxyRequestContext, stateChanging: Bool) async -> Result<(id: String, info: AuthAPI.WebSessionInfo), PageFailure> {
        await gate.session(request, context: context, stateChanging: stateChanging)
    }

    /// `POST /webapi/sessions`.
    func login(_ request: Request, context: ProxyRequestContext) async -> Response {
        var request = request
        let isForm = request.mediaType == "application/x-www-form-urlencoded"
        var create: AuthAPI.CreateWebSessionRequest
        do {
            let body = try await request.boundedBody(limit: ProxyRequestContext.maxBodyBytes)
            if isForm {
                let form = try URLEncodedForm(decoding: body.readableBytesView)
                create = AuthAPI.CreateWebSessionRequest(
                    user: form["user"] ?? "", password: form["password"] ?? "", otpCode: form["otp_code"], clientAddress: nil)
            } else if request.mediaType == "application/json" {
                create = try ResourceCodec.jsonDecoder().decode(AuthAPI.CreateWebSessionRequest.self, from: Data(body.readableBytesView))
            } else {
                return WebResponse.jsonError(
                    TeleportError.badParameter("the login must be JSON or a form (Content-Type: application/json)"), status: .unsupportedMediaType)
            }
        } catch let error as TeleportError {
            return WebResponse.jsonError(error, status: error.code == .limitExceeded ? .contentTooLarge : nil)
        } catch {
            return WebResponse.jsonError(TeleportError.badParameter("the login request could not be read"))
        }
        create.otpCode = create.otpCode.map { $0.filter { !$0.isWhitespace } }
        create.clientAddress = context.clientAddress
        guard !create.user.isEmpty, !create.password.isEmpty else {
            let error = TeleportError.badParameter("enter your user name and password")
            return isForm ? WebUIPages.response(await loginPage(error: error.message), status: .badRequest) : WebResponse.jsonError(error)
        }
        let info: AuthAPI.WebSessionInfo
        do {
            info = try await auth.createWebSession(create)
        } catch let error as TeleportError {
            logger.info(
                "web login refused",
                metadata: ["tp.user": "\(create.user)", "tp.error": "\(error.message)", "tp.client.addr": "\(context.clientAddress ?? "")"])
            let status: HTTPResponse.Status = error.code == .accessDenied ? .unauthorized : HTTPResponse.Status(code: error.code.httpStatus)
            return isForm
                ? WebUIPages.response(await loginPage(error: error.message), status: status)
                : WebResponse.jsonError(error, status: status)
        } catch {
            return unavailable(error)
        }
        guard let id = info.sessionID else { return unavailable(TeleportError.internalError("the auth service sent no session id")) }
        logger.info("web session created", metadata: ["tp.user": "\(info.user)", "tp.client.addr": "\(context.clientAddress ?? "")"])
        var response: Response
        if isForm {
            response = Response(status: .seeOther, headers: [.location: "/web/", .cacheControl: "no-store"])
        } else {
            var reply = info
            reply.sessionID = nil
            response = WebResponse.json((try? ResourceCodec.json(reply)) ?? Data())
        }
        response.headers[.setCookie] = WebSessionCookie.setCookie(id)
        return response
    }

    /// `DELETE /webapi/sessions`: needs the cookie and the CSRF token.
    func logout(_ request: Request, context: ProxyRequestContext) async -> Response {
        let id: String
        let user: String
        switch await session(request, context: context, stateChanging: true) {
        case .success(let found): (id, user) = (found.id, found.info.user)
        case .failure(let failure): return failure.response
        }
        do {
            try await auth.deleteWebSession(AuthAPI.WebSessionIDRequest(sessionID: id))
        } catch {
            return unavailable(error)
        }
        onLogout(user)
        logger.info("web session ended", metadata: ["tp.user": "\(user)", "tp.client.addr": "\(context.clientAddress ?? "")"])
        var response = WebResponse.json(Data("{}".utf8))
        response.headers[.setCookie] = WebSessionCookie.clearCookie
        return response
    }

    /// `GET /webapi/me`.
    func me(_ request: Request, context: ProxyRequestContext) async -> Response {
        switch await session(request, context: context, stateChanging: false) {
        case .success(let found): return WebResponse.json((try? ResourceCodec.json(found.info)) ?? Data())
        case .failure(let failure): return failure.response
        }
    }

    /// `GET /web`: the signed-in page, or a redirect to the login page.
    func home(_ request: Request, context: ProxyRequestContext) async -> Response {
        await gate.page(request, context: context) { WebUIPages.home($0, clusterName: clusterName) }
    }

    /// `GET /web/nodes`: the resources page, or a redirect to the login page.
    func nodesPage(_ request: Request, context: ProxyRequestContext) async -> Response {
        await gate.page(request, context: context) { WebUIPages.nodes($0, clusterName: clusterName) }
    }

    func unavailable(_ error: any Error) -> Response { gate.unavailable(error) }
}
