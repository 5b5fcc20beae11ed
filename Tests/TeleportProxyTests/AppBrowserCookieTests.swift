import NIOHTTP1
@testable import TeleportProxy
import Testing

/// The app session cookie on the app's origin: found among others, and removed before the
/// request goes to the app (the app's own cookies stay).
@Suite("app origin: the app session cookie")
struct AppBrowserCookieTests {
    @Test(
        "the cookie is found and stripped",
        arguments: [
            (["__Host-teleport-app-session=abc"], "abc", [String]()),
            (["theme=dark; __Host-teleport-app-session=abc; lang=en"], "abc", ["theme=dark; lang=en"]),
            (["theme=dark", "__Host-teleport-app-session=abc"], "abc", ["theme=dark"]),
            (["theme=dark"], nil, ["theme=dark"]),
            (["x__Host-teleport-app-session=abc"], nil, ["x__Host-teleport-app-session=abc"]),
            ([" ;\ttheme=dark ;; __Host-teleport-app-session=abc\t; ", "a=1"], "abc", ["theme=dark; a=1"]),
            (["__Host-teleport-app-session="], "", [String]()),
            (["__host-teleport-app-session=abc"], nil, ["__host-teleport-app-session=abc"]),
        ] as [([String], String?, [String])])
    func cookie(fields: [String], found: String?, kept: [String]) {
        var headers = HTTPHeaders()
        for field in fields { headers.add(name: "Cookie", value: field) }
        headers.add(name: "Accept", value: "*/*")
        #expect(AppBrowserFront.cookie(in: headers) == found)
        let stripped = AppBrowserFront.strippingCookie(headers)
        #expect(stripped["cookie"] == (kept.isEmpty ? [] : [kept.joined(separator: "; ")]))
        #expect(stripped["accept"] == ["*/*"])
    }

    @Test("origins and ports for the launch redirect")
    func origins() {
        #expect(AppLaunchRoute.port(of: "localhost:3080") == 3080)
        #expect(AppLaunchRoute.port(of: "localhost") == nil)
        #expect(AppLaunchRoute.port(of: "[::1]") == nil)
        #expect(AppLaunchRoute.origin(host: "echo.example", port: 443) == "https://echo.example")
        #expect(AppLaunchRoute.origin(host: "echo.example", port: 3080) == "https://echo.example:3080")
    }
}
