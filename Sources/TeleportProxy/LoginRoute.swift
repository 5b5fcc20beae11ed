import Foundation
import Hummingbird
import Logging
import NIOCore
import TeleportAPI

/// `POST /webapi/ssh/certs` (``WebAPI/loginPath``): `tsh login`'s password (and TOTP) login. The
/// proxy forwards the request to the auth service with the client's real address and returns the
/// certificates; errors are ``AuthAPI/ErrorResponse`` JSON.
struct LoginRoute<Auth: ProxyAuthAccess>: Sendable {
    let auth: Auth
    let logger: Logger

    /// Adds the route to `router`.
    func register(on router: Router<ProxyRequestContext>) {
        router.post(RouterPath(WebAPI.loginPath)) { request, context in await login(request, context: context) }
    }

    func login(_ request: Request, context: ProxyRequestContext) async -> Response {
        var request = request
        var login: AuthAPI.LoginRequest
        do {
            // A browser can post these types cross-site without a preflight; tsh sends JSON.
            if let type = request.mediaType, ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"].contains(type) {
                return WebResponse.jsonError(
                    TeleportError.badParameter("the login request must be JSON (Content-Type: application/json)"),
                    status: .unsupportedMediaType)
            }
            let body = try await request.boundedBody(limit: ProxyRequestContext.maxBodyBytes)
            login = try ResourceCodec.jsonDecoder().decode(AuthAPI.LoginRequest.self, from: Data(body.readableBytesView))
        } catch let error as TeleportError {
            return WebResponse.jsonError(error, status: error.code == .limitExceeded ? .contentTooLarge : nil)
        } catch let error as DecodingError {
            return WebResponse.jsonError(TeleportError.badParameter("the login request is not valid: \(Self.describe(error))"))
        } catch {
            return WebResponse.jsonError(TeleportError.badParameter("the login request could not be read"))
        }
        login.clientAddress = context.clientAddress
        do {
            let reply = try await auth.login(login)
            return WebResponse.json(try ResourceCodec.json(reply))
        } catch let error as TeleportError {
            if error.code == .accessDenied || error.code == .badParameter || error.code == .limitExceeded {
                logger.info(
                    "login refused",
                    metadata: ["tp.user": "\(login.user)", "tp.error": "\(error.message)", "tp.client.addr": "\(context.clientAddress ?? "")"])
            } else {
                logger.warning("login failed", metadata: ["tp.user": "\(login.user)", "tp.error": "\(error.message)"])
            }
            return WebResponse.jsonError(error)
        } catch {
            logger.error("login failed", metadata: ["tp.user": "\(login.user)", "tp.error": "\(error)"])
            return WebResponse.jsonError(TeleportError.internalError("internal error; see the proxy's log"))
        }
    }

    /// A short reason for a malformed login request, naming the field.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String { keys.map(\.stringValue).joined(separator: ".") }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context.codingPath + [key])) is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(path(context.codingPath)) has the wrong type"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "the body is not JSON" : "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "the body does not match the login request"
        }
    }
}
