import Hummingbird
import Logging
import TeleportAPI

/// Runs before every route of the proxy's HTTPS listener (and its 404s):
///
/// - refuses a state-changing request (any method but GET, HEAD and OPTIONS) that a browser sent
///   from another origin: an `Origin` header that is not this proxy's own `https://HOST[:PORT]`
///   (as the request's Host names it), or `Sec-Fetch-Site: cross-site`. Clients that are not
///   browsers (tsh, curl) send no `Origin` and are not affected;
/// - adds the security headers to every response that lacks them: a Content-Security-Policy with
///   no inline script and nothing from other origins, `X-Frame-Options: DENY`,
///   `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`.
struct WebSecurityMiddleware: RouterMiddleware {
    typealias Context = ProxyRequestContext

    /// The policy of the web UI's pages: scripts, styles and everything else from this origin
    /// only (so no inline script), never framed, forms post back here.
    static let contentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        + "form-action 'self'; frame-ancestors 'none'"

    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        if let refusal = Self.crossOriginRefusal(request) {
            logger.info(
                "cross-origin request refused",
                metadata: ["tp.client.addr": "\(context.clientAddress ?? "")", "tp.error": "\(refusal)", "tp.path": "\(request.uri.path)"])
            response = WebResponse.jsonError(TeleportError.accessDenied(refusal), status: .forbidden)
        } else {
            do {
                response = try await next(request, context)
            } catch let error as HTTPError {
                // Hummingbird's own refusals (no route, a body over the limit): the same JSON errors.
                response = WebResponse.jsonError(Self.teleportError(error), status: error.status)
            }
        }
        Self.addSecurityHeaders(&response.headers)
        return response
    }

    /// `error` as a ``TeleportError`` whose code matches its status.
    static func teleportError(_ error: HTTPError) -> TeleportError {
        let message = error.body ?? error.status.reasonPhrase.lowercased()
        switch error.status.code {
        case 404: return .notFound(message)
        case 401, 403: return .accessDenied(message)
        case 413, 429: return .limitExceeded(message)
        case 400..<500: return .badParameter(message)
        default: return .internalError(message)
        }
    }

    /// Why `request` must be refused as cross-origin, or nil.
    static func crossOriginRefusal(_ request: Request) -> String? {
        guard ![.get, .head, .options].contains(request.method) else { return nil }
        func header(_ name: String) -> String? { HTTPFields.Element.Name(name).flatMap { request.headers[$0] } }
        if header("Sec-Fetch-Site")?.lowercased() == "cross-site" {
            return "a request from another site may not change anything here"
        }
        guard let origin = header("Origin") else { return nil }
        // A form posted from a page whose Referrer-Policy is no-referrer (the signup page) carries
        // `Origin: null`; then the browser's own Sec-Fetch-Site (no page can set it) tells.
        if origin == "null", header("Sec-Fetch-Site")?.lowercased() == "same-origin" { return nil }
        let host = request.head.authority ?? header("Host") ?? ""
        guard !host.isEmpty, origin.lowercased() == "https://\(host.lowercased())" else {
            return "a request from another origin may not change anything here"
        }
        return nil
    }

    /// Sets each security header `headers` does not already have.
    static func addSecurityHeaders(_ headers: inout HTTPFields) {
        if headers[.contentSecurityPolicy] == nil { headers[.contentSecurityPolicy] = contentSecurityPolicy }
        if headers[.xContentTypeOptions] == nil { headers[.xContentTypeOptions] = "nosniff" }
        for (name, value) in [("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer")] {
            if let field = HTTPFields.Element.Name(name), headers[field] == nil { headers[field] = value }
        }
    }
}
