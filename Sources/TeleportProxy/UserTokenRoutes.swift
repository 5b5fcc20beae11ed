import Foundation
import Hummingbird
import Logging
import NIOCore
import TeleportAPI

/// The signup and reset pages: `GET` shows the form for the token in the path, `POST` completes it
/// through the auth service. The token is the only credential; CSRF is checked with
/// ``CSRFCookie`` before anything reaches the auth service.
struct UserTokenRoutes<Auth: ProxyAuthAccess>: Sendable {
    /// The path prefixes, one per token kind (the page follows the token's own kind).
    static var paths: [String] { ["web/newuser", "web/reset"] }

    let auth: Auth
    /// The address users give `tsh login --proxy=`.
    let publicAddr: String
    /// Whether the proxy's HTTPS certificate is self-signed (the login command then needs `--insecure`).
    var selfSignedCertificate = false
    let logger: Logger

    /// Adds `GET` and `POST` of both paths to `router`.
    func register(on router: Router<ProxyRequestContext>) {
        for path in Self.paths {
            router.get("\(path)/:token") { _, context in await show(context: context) }
            router.post("\(path)/:token") { request, context in await submit(request, context: context) }
        }
    }

    /// `GET`: the form, and a fresh CSRF cookie.
    func show(context: ProxyRequestContext) async -> Response {
        guard let token = token(from: context) else { return invalid(detail: nil) }
        let info: AuthAPI.UserTokenInfo
        switch await lookUp(token) {
        case .success(let found): info = found
        case .failure(let failure): return failure.response
        }
        let csrf = CSRFCookie.randomToken()
        return WebResponse.html(UserTokenPage.form(info, csrfToken: csrf), status: .ok, setCookie: CSRFCookie.setCookie(csrf))
    }

    /// `POST`: checks the form and completes the token.
    func submit(_ request: Request, context: ProxyRequestContext) async -> Response {
        guard let token = token(from: context) else { return invalid(detail: nil) }
        var request = request
        let form: URLEncodedForm
        do {
            guard request.mediaType == "application/x-www-form-urlencoded" else {
                return page(.unsupportedMediaType, "Unsupported form", "The form must be sent as application/x-www-form-urlencoded.")
            }
            let body = try await request.boundedBody(limit: ProxyRequestContext.maxBodyBytes)
            form = try URLEncodedForm(decoding: body.readableBytesView)
        } catch let error as TeleportError {
            let status: HTTPResponse.Status = error.code == .limitExceeded ? .contentTooLarge : .badRequest
            return page(status, "Form not accepted", error.message)
        } catch {
            return page(.badRequest, "Form not accepted", "The form could not be read.")
        }

        let csrf = form[CSRFCookie.field]
        guard CSRFCookie.verify(cookie: CSRFCookie.value(in: request), field: csrf), let csrf else {
            logger.info("signup form refused: CSRF check failed", metadata: ["tp.client.addr": "\(context.clientAddress ?? "")"])
            return page(
                .forbidden, "Form not accepted",
                "The form's security check failed: the form is stale or was sent from another site. Open the link again and resubmit.")
        }

        let info: AuthAPI.UserTokenInfo
        switch await lookUp(token) {
        case .success(let found): info = found
        case .failure(let failure): return failure.response
        }
        let password = form["password"] ?? ""
        guard !password.isEmpty else { return retry(info, csrf, .badRequest, "Choose a password.") }
        guard password == form["password_confirm"] else {
            return retry(info, csrf, .badRequest, "The passwords do not match; type the same password twice.")
        }
        var otpCode: String?
        if info.totpSecret != nil {
            let code = (form["otp_code"] ?? "").filter { !$0.isWhitespace }
            guard !code.isEmpty else { return retry(info, csrf, .badRequest, "Enter the code your authenticator app shows.") }
            otpCode = code
        }

        do {
            try await auth.completeUserToken(
                AuthAPI.CompleteUserTokenRequest(token: token, password: password, otpCode: otpCode, clientAddress: context.clientAddress))
        } catch let error as TeleportError {
            logger.info(
                "signup form refused by the auth service",
                metadata: ["tp.user": "\(info.user)", "tp.error": "\(error.message)", "tp.client.addr": "\(context.clientAddress ?? "")"])
            switch error.code {
            case .badParameter, .accessDenied:
                // A weak password or a wrong code: the user can correct it on the same form.
                return retry(info, csrf, HTTPResponse.Status(code: error.code.httpStatus), error.message)
            case .notFound:
                return invalid(detail: error.message)
            default:
                return unavailable(error)
            }
        } catch {
            return unavailable(error)
        }
        logger.info("user token completed", metadata: ["tp.user": "\(info.user)", "tp.token.kind": "\(info.kind.rawValue)"])
        return WebResponse.html(
            UserTokenPage.success(info, publicAddr: publicAddr, selfSignedCertificate: selfSignedCertificate), status: .ok, setCookie: CSRFCookie.clearCookie)
    }

    /// The token from the path, percent-decoded.
    func token(from context: ProxyRequestContext) -> String? {
        guard let raw = context.parameters.get("token"), let token = raw.removingPercentEncoding, !token.isEmpty else {
            return nil
        }
        return token
    }

    /// Looks `token` up; an unknown, expired, used or malformed token is the 404 page.
    func lookUp(_ token: String) async -> Result<AuthAPI.UserTokenInfo, PageFailure> {
        do {
            return .success(try await auth.userToken(token))
        } catch let error as TeleportError where [.notFound, .accessDenied, .badParameter].contains(error.code) {
            return .failure(PageFailure(response: invalid(detail: error.message)))
        } catch {
            return .failure(PageFailure(response: unavailable(error)))
        }
    }

    /// The form again, with `message` above it.
    func retry(_ info: AuthAPI.UserTokenInfo, _ csrf: String, _ status: HTTPResponse.Status, _ message: String) -> Response {
        WebResponse.html(UserTokenPage.form(info, csrfToken: csrf, error: message), status: status)
    }

    func invalid(detail: String?) -> Response {
        WebResponse.html(UserTokenPage.invalid(detail: detail), status: .notFound)
    }

    func page(_ status: HTTPResponse.Status, _ title: String, _ message: String) -> Response {
        WebResponse.html(UserTokenPage.error(title: title, message: message), status: status)
    }

    /// A failure that is not the user's: the auth service is unreachable, or a bug. Details go to
    /// the log, not the page.
    func unavailable(_ error: any Error) -> Response {
        if let error = error as? TeleportError, error.code != .internalError {
            logger.warning("user token request failed", metadata: ["tp.error": "\(error.message)"])
            let message = error.code == .connectionProblem
                ? "The proxy cannot reach the auth service right now; try again in a minute."
                : error.message
            return page(HTTPResponse.Status(code: error.code.httpStatus), "Try again later", message)
        }
        logger.error("user token request failed", metadata: ["tp.error": "\(error)"])
        return page(.internalServerError, "Something went wrong", "The request failed on the server; the proxy's log has the details.")
    }
}

/// A page to answer with instead of going on (the `Failure` of a lookup).
struct PageFailure: Error {
    let response: Response
}
