import NIOHTTP1
import TeleportAPI
import Testing

@testable import TeleportApp

@Suite("app request rules: headers, Host and Location")
struct AppRequestRulesTests {
    @Test(arguments: [
        ("teleport-jwt-assertion", true), ("Teleport-JWT-Assertion", true), ("X-Forwarded-For", true), ("x-forwarded-host", true),
        ("X-Teleport-Login", true), ("Forwarded", true), ("Connection", true), ("Upgrade", true), ("Accept", false), ("Cookie", false),
        ("X-Forwarder", false), ("Authorization", false),
    ])
    func stripped(name: String, expected: Bool) {
        #expect(AppRequestRules.isStripped(name) == expected)
    }

    @Test(arguments: [
        ("grafana.proxy.example", "grafana.proxy.example", true), ("Grafana.Proxy.Example:3080", "grafana.proxy.example", true),
        ("other.proxy.example", "grafana.proxy.example", false), ("", "grafana.proxy.example", false),
        ("grafana.proxy.example.evil", "grafana.proxy.example", false), ("[::1]:443", "[::1]", true),
    ])
    func host(header: String, publicAddr: String, expected: Bool) {
        #expect(AppRequestRules.hostMatches(header, publicAddr: publicAddr) == expected)
    }

    @Test(arguments: [
        (HTTPMethod.GET, "Upgrade", "websocket", true), (.GET, "keep-alive, Upgrade", "WebSocket", true), (.POST, "Upgrade", "websocket", false),
        (.GET, "keep-alive", "websocket", false), (.GET, "Upgrade", "h2c", false), (.GET, "Upgrade", "websocket, h2c", false), (.GET, "", "", false),
    ])
    func webSocketUpgrade(method: HTTPMethod, connection: String, upgrade: String, expected: Bool) {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: "/ws")
        if !connection.isEmpty { head.headers.add(name: "Connection", value: connection) }
        if !upgrade.isEmpty { head.headers.add(name: "Upgrade", value: upgrade) }
        #expect(AppRequestRules.isWebSocketUpgrade(head) == expected)
    }

    @Test func webSocketHeadsKeepTheirUpgrade() {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/ws")
        head.headers.add(name: "Host", value: "app.proxy.example")
        head.headers.add(name: "Connection", value: "Upgrade")
        head.headers.add(name: "Upgrade", value: "websocket")
        head.headers.add(name: "Sec-WebSocket-Key", value: "dGhlIHNhbXBsZSBub25jZQ==")
        head.headers.add(name: "Sec-WebSocket-Version", value: "13")
        let upstream = AppRequestRules.upstreamHead(
            head, internalHost: "localhost:8080", clientAddress: "127.0.0.1:5", publicHost: "app.proxy.example", assertion: "signed", extraHeaders: [])
        #expect(upstream.headers["connection"] == ["Upgrade"] && upstream.headers["upgrade"] == ["websocket"])
        #expect(upstream.headers["sec-websocket-key"] == ["dGhlIHNhbXBsZSBub25jZQ=="] && upstream.headers["sec-websocket-version"] == ["13"])
        // Another protocol's upgrade is stripped: the app gets a plain request that closes.
        head.headers.replaceOrAdd(name: "Upgrade", value: "h2c")
        let plain = AppRequestRules.upstreamHead(
            head, internalHost: "localhost:8080", clientAddress: "127.0.0.1:5", publicHost: "app.proxy.example", assertion: "signed", extraHeaders: [])
        #expect(plain.headers["connection"] == ["close"] && plain.headers["upgrade"].isEmpty)
        #expect(AppRequestRules.asksUpgrade(head))
        // The app's 101 keeps its Upgrade; any other answer loses the hop-by-hop headers.
        var switching = HTTPResponseHead(version: .http1_1, status: .switchingProtocols)
        switching.headers.add(name: "Connection", value: "upgrade")
        switching.headers.add(name: "Upgrade", value: "websocket")
        switching.headers.add(name: "Sec-WebSocket-Accept", value: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        let answered = AppRequestRules.clientHead(switching, internalHosts: [], publicHost: "app.proxy.example")
        #expect(answered.headers["connection"] == ["Upgrade"] && answered.headers["upgrade"] == ["websocket"])
        #expect(answered.headers["sec-websocket-accept"] == ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="])
        var refused = HTTPResponseHead(version: .http1_1, status: .badRequest)
        refused.headers.add(name: "Upgrade", value: "websocket")
        #expect(AppRequestRules.clientHead(refused, internalHosts: [], publicHost: "x").headers["upgrade"].isEmpty)
    }

    @Test func upstreamHeadStripsSpoofedHeadersAndSetsOurs() {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/submit?x=1")
        head.headers.add(name: "Host", value: "app.proxy.example:3080")
        head.headers.add(name: "teleport-jwt-assertion", value: "forged")
        head.headers.add(name: "X-Forwarded-For", value: "6.6.6.6")
        head.headers.add(name: "X-Teleport-User", value: "root")
        head.headers.add(name: "Connection", value: "keep-alive, X-Secret")
        head.headers.add(name: "X-Secret", value: "hop")
        head.headers.add(name: "Cookie", value: "a=b")
        head.headers.add(name: "Content-Length", value: "3")
        let upstream = AppRequestRules.upstreamHead(
            head, internalHost: "localhost:8080", clientAddress: "[IPv4]127.0.0.5/127.0.0.5:5555", publicHost: "app.proxy.example:3080",
            assertion: "signed", extraHeaders: [(name: "X-Env", value: "test")])
        #expect(upstream.method == .POST && upstream.uri == "/submit?x=1")
        #expect(upstream.headers["teleport-jwt-assertion"] == ["signed"])
        #expect(upstream.headers["X-Forwarded-For"] == ["127.0.0.5"])
        #expect(upstream.headers["X-Forwarded-Proto"] == ["https"])
        #expect(upstream.headers["X-Forwarded-Host"] == ["app.proxy.example:3080"])
        #expect(upstream.headers["Host"] == ["localhost:8080"])
        #expect(upstream.headers["X-Teleport-User"].isEmpty && upstream.headers["X-Secret"].isEmpty)
        #expect(upstream.headers["Cookie"] == ["a=b"] && upstream.headers["Content-Length"] == ["3"])
        #expect(upstream.headers["X-Env"] == ["test"] && upstream.headers["Connection"].isEmpty)
    }

    @Test(arguments: [
        ("http://localhost:8080/login?next=%2F", "https://app.proxy.example:3080/login?next=%2F"),
        ("http://LOCALHOST/", "https://app.proxy.example:3080/"),
        ("http://internal.corp/x", "https://app.proxy.example:3080/x"),
        ("https://elsewhere.example/", nil), ("/relative", nil), ("http://localhost.evil/", nil),
    ] as [(String, String?)])
    func location(location: String, expected: String?) {
        let rewritten = AppRequestRules.rewriteLocation(
            location, internalHosts: ["localhost", "internal.corp"], publicHost: "app.proxy.example:3080")
        #expect(rewritten == expected)
    }

    @Test(arguments: [
        ("http://localhost:3000", true), ("https://grafana.internal", true), ("http://169.254.169.254/latest/meta-data", false),
        ("http://169.254.10.1", false), ("tcp://localhost:5432", true), ("tcp://localhost", false), ("tcp://localhost:5432/db", false), ("tcp://169.254.169.254:80", false), ("ftp://x", false), ("http://", false), ("localhost:3000", false),
    ])
    func uris(uri: String, accepted: Bool) {
        #expect(((try? AppURI.check(uri, source: "uri", allowMetadataAddress: false)) != nil) == accepted)
    }

    @Test func defaultPublicAddress() {
        let app = AppService.App(name: "grafana", uri: "http://localhost:3000")
        #expect(AppService.publicAddr(of: app, proxyPublicAddr: "Proxy.Example:3080") == "grafana.proxy.example")
        #expect(AppService.publicAddr(of: app, proxyPublicAddr: nil) == nil)
        var own = app
        own.publicAddr = "grafana.corp.example"
        #expect(AppService.publicAddr(of: own, proxyPublicAddr: nil) == "grafana.corp.example")
    }
}
