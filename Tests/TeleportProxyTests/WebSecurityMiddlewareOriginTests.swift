import HTTPTypes
import Hummingbird
import NIOCore
import Testing

@testable import TeleportProxy

/// Which state-changing requests ``WebSecurityMiddleware`` refuses as cross-origin.
@Suite("cross-origin refusal")
struct WebSecurityMiddlewareOriginTests {
    static func request(_ headers: [String: String]) -> Request {
        var fields = HTTPFields()
        for (name, value) in headers { if let field = HTTPField.Name(name) { fields[field] = value } }
        let head = HTTPRequest(method: .post, scheme: "https", authority: "proxy.example:3080", path: "/web/newuser/abc", headerFields: fields)
        return Request(head: head, body: RequestBody(buffer: ByteBuffer()))
    }

    @Test(
        "a form from a no-referrer page (Origin: null) passes only when the browser says same-origin",
        arguments: [
            ([:], true),
            (["Origin": "https://proxy.example:3080"], true),
            (["Origin": "https://evil.example"], false),
            (["Origin": "null", "Sec-Fetch-Site": "same-origin"], true),
            (["Origin": "null"], false),
            (["Origin": "null", "Sec-Fetch-Site": "cross-site"], false),
            (["Origin": "null", "Sec-Fetch-Site": "same-site"], false),
            (["Origin": "https://proxy.example:3080", "Sec-Fetch-Site": "cross-site"], false),
        ] as [([String: String], Bool)])
    func origin(headers: [String: String], allowed: Bool) {
        #expect((WebSecurityMiddleware.crossOriginRefusal(Self.request(headers)) == nil) == allowed, "\(headers)")
    }
}
