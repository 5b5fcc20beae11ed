import Foundation
import Hummingbird
import NIOCore
import TeleportAPI

/// The responses of the proxy's HTTPS listener: HTML pages with the security headers every page
/// carries, and JSON replies and errors for `tsh`.
enum WebResponse {
    /// The content security policy of the proxy's pages: nothing external, inline styles only,
    /// forms post back to the proxy.
    static let contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

    /// An HTML page that is never cached, framed or leaks its URL (which holds a token) as a referrer.
    static func html(_ html: String, status: HTTPResponse.Status, setCookie: String? = nil) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        set(&headers, "X-Frame-Options", "DENY")
        set(&headers, "Referrer-Policy", "no-referrer")
        if let setCookie { headers[.setCookie] = setCookie }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// A JSON reply; never cached (login replies hold certificates).
    static func json(_ data: Data, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        headers[.xContentTypeOptions] = "nosniff"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `error` as an ``AuthAPI/ErrorResponse`` with the status of its code, or `status` when given.
    static func jsonError(_ error: TeleportError, status: HTTPResponse.Status? = nil) -> Response {
        let body = AuthAPI.ErrorResponse(code: error.code.rawValue, message: error.message)
        let data = (try? ResourceCodec.json(body)) ?? Data()
        return json(data, status: status ?? HTTPResponse.Status(code: error.code.httpStatus))
    }

    private static func set(_ headers: inout HTTPFields, _ name: String, _ value: String) {
        if let field = HTTPFields.Element.Name(name) { headers[field] = value }
    }
}
