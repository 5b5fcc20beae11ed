import Foundation
import TeleportAPI
@testable import TeleportAuthClient
import Testing

/// `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` as agents read them (the seed's "HTTP CONNECT Proxies").
@Suite("proxy environment")
struct ProxyEnvironmentTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let environment: [String: String]
        let host: String
        let port: Int
        /// `http://host:port` of the proxy used, or nil for a direct connection.
        let expected: String?
        var testDescription: String { "\(environment) → \(host):\(port) via \(expected ?? "direct")" }
    }

    static let proxy = ["HTTPS_PROXY": "http://proxy.example.com:8080"]
    static func with(_ noProxy: String) -> [String: String] { proxy.merging(["NO_PROXY": noProxy]) { $1 } }

    static let cases: [Case] = [
        // Which variable, and how its value is read.
        Case(environment: [:], host: "auth.example.com", port: 3025, expected: nil),
        Case(environment: proxy, host: "auth.example.com", port: 3025, expected: "http://proxy.example.com:8080"),
        Case(environment: ["HTTPS_PROXY": "proxy.example.com:3128"], host: "a", port: 3080, expected: "http://proxy.example.com:3128"),
        Case(environment: ["HTTPS_PROXY": "http://proxy.example.com"], host: "a", port: 3080, expected: "http://proxy.example.com:80"),
        Case(environment: ["HTTPS_PROXY": "http://proxy.example.com:8080/"], host: "a", port: 3080, expected: "http://proxy.example.com:8080"),
        Case(environment: ["https_proxy": "10.0.0.1:3128"], host: "a", port: 3080, expected: "http://10.0.0.1:3128"),
        Case(environment: ["HTTP_PROXY": "http://p2:1"], host: "a", port: 3080, expected: "http://p2:1"),
        Case(environment: ["http_proxy": "p3:2"], host: "a", port: 3080, expected: "http://p3:2"),
        Case(environment: ["HTTPS_PROXY": "http://p1:1", "HTTP_PROXY": "http://p2:2"], host: "a", port: 3080, expected: "http://p1:1"),
        Case(environment: ["HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"], host: "a", port: 1, expected: "http://upper:1"),
        Case(environment: ["HTTPS_PROXY": "", "https_proxy": "http://lower:2"], host: "a", port: 1, expected: "http://lower:2"),
        Case(environment: ["HTTPS_PROXY": "[fd00::1]:3128"], host: "a", port: 1, expected: "http://[fd00::1]:3128"),
        Case(environment: ["HTTPS_PROXY": "http://user:p%40ss@proxy:3128"], host: "a", port: 1, expected: "http://proxy:3128"),
        // NO_PROXY: names, domains, wildcards.
        Case(environment: with("*"), host: "anything", port: 1, expected: nil),
        Case(environment: with("auth.example.com"), host: "auth.example.com", port: 3025, expected: nil),
        Case(environment: with("AUTH.example.com"), host: "auth.EXAMPLE.com.", port: 3025, expected: nil),
        Case(environment: with("example.com"), host: "auth.example.com", port: 3025, expected: nil),
        Case(environment: with("example.com"), host: "notexample.com", port: 3025, expected: "http://proxy.example.com:8080"),
        Case(environment: with(".example.com"), host: "auth.example.com", port: 3025, expected: nil),
        Case(environment: with(".example.com"), host: "example.com", port: 3025, expected: nil),
        Case(environment: with("*.example.com"), host: "a.b.example.com", port: 3025, expected: nil),
        Case(environment: with("other.com, example.org"), host: "auth.example.com", port: 3025, expected: "http://proxy.example.com:8080"),
        Case(environment: with("other.com,,  example.com "), host: "auth.example.com", port: 3025, expected: nil),
        Case(environment: with("localhost"), host: "localhost", port: 3025, expected: nil),
        Case(environment: proxy, host: "localhost", port: 3025, expected: "http://proxy.example.com:8080"),
        // Ports.
        Case(environment: with("auth.example.com:3025"), host: "auth.example.com", port: 3025, expected: nil),
        Case(environment: with("auth.example.com:3025"), host: "auth.example.com", port: 3080, expected: "http://proxy.example.com:8080"),
        Case(environment: with("10.1.2.3:3025"), host: "10.1.2.3", port: 3025, expected: nil),
        Case(environment: with("10.1.2.3:3025"), host: "10.1.2.3", port: 3024, expected: "http://proxy.example.com:8080"),
        Case(environment: with("[::1]:3025"), host: "::1", port: 3025, expected: nil),
        Case(environment: with("[::1]:3025"), host: "[::1]", port: 3080, expected: "http://proxy.example.com:8080"),
        // IP addresses and CIDR ranges (the seed's systemd example).
        Case(environment: with("localhost,127.0.0.1,192.168.0.0/16,172.16.0.0/12,10.0.0.0/8"), host: "127.0.0.1", port: 3025, expected: nil),
        Case(environment: with("localhost,127.0.0.1,192.168.0.0/16,172.16.0.0/12,10.0.0.0/8"), host: "172.31.255.1", port: 1, expected: nil),
        Case(environment: with("localhost,127.0.0.1,192.168.0.0/16,172.16.0.0/12,10.0.0.0/8"), host: "172.32.0.1", port: 1,
            expected: "http://proxy.example.com:8080"),
        Case(environment: with("10.0.0.0/8"), host: "10.200.3.4", port: 3080, expected: nil),
        Case(environment: with("10.0.0.0/8"), host: "11.0.0.1", port: 3080, expected: "http://proxy.example.com:8080"),
        Case(environment: with("10.1.2.3/8"), host: "10.9.9.9", port: 3080, expected: nil),
        Case(environment: with("10.0.0.0/8"), host: "ten.example.com", port: 3080, expected: "http://proxy.example.com:8080"),
        Case(environment: with("0.0.0.0/0"), host: "203.0.113.9", port: 3080, expected: nil),
        Case(environment: with("0.0.0.0/0"), host: "2001:db8::1", port: 3080, expected: "http://proxy.example.com:8080"),
        Case(environment: with("2001:db8::/32"), host: "2001:db8:1::5", port: 3080, expected: nil),
        Case(environment: with("2001:db8::/32"), host: "[2001:db8:1::5]", port: 3080, expected: nil),
        Case(environment: with("2001:db8::/32"), host: "2001:db9::5", port: 3080, expected: "http://proxy.example.com:8080"),
        Case(environment: with("::1"), host: "::1", port: 3080, expected: nil),
        Case(environment: with("fe80::/10"), host: "fe80::1", port: 3080, expected: nil),
        Case(environment: with("127.0.0.1"), host: "::ffff:127.0.0.1", port: 3080, expected: nil),
        Case(environment: with("127.0.0.1"), host: "127.0.0.2", port: 3080, expected: "http://proxy.example.com:8080"),
        Case(environment: with("127.0.0.0/8"), host: "127.0.0.2", port: 3080, expected: nil),
        Case(environment: ["HTTP_PROXY": "p:1", "no_proxy": "example.com"], host: "x.example.com", port: 1, expected: nil),
        Case(environment: ["HTTP_PROXY": "p:1", "NO_PROXY": "a.com", "no_proxy": "example.com"], host: "x.example.com", port: 1, expected: "http://p:1"),
    ]

    @Test("which proxy a target goes through", arguments: cases)
    func decides(_ testCase: Case) throws {
        let environment = try ProxyEnvironment(environment: testCase.environment)
        #expect(environment.proxy(forHost: testCase.host, port: testCase.port)?.description == testCase.expected)
    }

    @Test(
        "bad values are one-line errors naming the variable and the fix",
        arguments: [
            (["HTTPS_PROXY": "https://proxy:3128"], "HTTPS_PROXY=https://proxy:3128: a proxy reached over TLS (https://) is not supported; use http://"),
            (["HTTPS_PROXY": "socks5://proxy:1080"], "the scheme socks5:// is not supported"),
            (["HTTP_PROXY": "http://proxy:99999"], "HTTP_PROXY=http://proxy:99999: has an invalid port \"99999\""),
            (["HTTP_PROXY": "http://proxy:port"], "invalid port \"port\""),
            (["HTTPS_PROXY": "http://"], "the host is missing"),
            (["HTTPS_PROXY": "http://proxy:3128/path"], "a proxy URL has no path"),
            (["HTTPS_PROXY": "fd00::1:3128"], "write it in brackets"),
            (["HTTPS_PROXY": "http://user:secret@proxy:bad"], "HTTPS_PROXY=http://user:***@proxy:bad"),
            (["HTTPS_PROXY": "p:1", "NO_PROXY": "10.0.0.0/33"], "NO_PROXY: the entry \"10.0.0.0/33\" has an invalid prefix length"),
            (["HTTPS_PROXY": "p:1", "NO_PROXY": "10.0.0/8"], "NO_PROXY: the entry \"10.0.0/8\" is not a valid CIDR range"),
            (["HTTPS_PROXY": "p:1", "no_proxy": "exa$mple.com"], "no_proxy: the entry \"exa$mple.com\" is not a host name"),
            (["HTTPS_PROXY": "p:1", "NO_PROXY": "host:0"], "invalid port \"0\""),
        ])
    func refuses(_ environment: [String: String], _ message: String) {
        do {
            _ = try ProxyEnvironment(environment: environment)
            Issue.record("accepted \(environment)")
        } catch let error as TeleportError {
            #expect(error.code == .badParameter)
            #expect(error.message.contains(message), "\(error.message)")
            #expect(!error.message.contains("\n"))
            #expect(!error.message.contains("secret"))
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test("credentials are percent-decoded, sent as basic auth and never printed")
    func credentials() throws {
        let environment = try ProxyEnvironment(environment: ["HTTPS_PROXY": "http://us%3Aer:p%40ss@proxy:3128"])
        let proxy = try #require(environment.httpsProxy)
        #expect(proxy.username == "us:er")
        #expect(proxy.password == "p@ss")
        #expect(!proxy.description.contains("p@ss"))
        let request = OutboundDial.connectRequest(authority: "auth.example.com:3025", proxy: proxy)
        let basic = Data("us:er:p@ss".utf8).base64EncodedString()
        #expect(request == "CONNECT auth.example.com:3025 HTTP/1.1\r\nHost: auth.example.com:3025\r\nProxy-Authorization: Basic \(basic)\r\n\r\n")
        let plain = try #require(try ProxyEnvironment(environment: ["HTTPS_PROXY": "proxy:3128"]).httpsProxy)
        #expect(OutboundDial.connectRequest(authority: "[::1]:3025", proxy: plain) == "CONNECT [::1]:3025 HTTP/1.1\r\nHost: [::1]:3025\r\n\r\n")
    }

    @Test("only a 200 answer opens the tunnel; any other is one line naming the proxy and its status line")
    func answers() throws {
        let proxy = try #require(try ProxyEnvironment(environment: ["HTTPS_PROXY": "proxy:3128"]).httpsProxy)
        #expect(OutboundDial.check(answer: "HTTP/1.1 200 Connection established\r\n\r\n", authority: "a:1", proxy: proxy) == nil)
        #expect(OutboundDial.check(answer: "HTTP/1.0 200 OK\r\nProxy-agent: x\r\n\r\n", authority: "a:1", proxy: proxy) == nil)
        for answer in ["HTTP/1.0 403 Access violation\r\n\r\n", "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", "SSH-2.0-OpenSSH\r\n\r\n",
            "HTTP/1.1 2000 x\r\n\r\n"]
        {
            let error = try #require(OutboundDial.check(answer: answer, authority: "auth:3025", proxy: proxy))
            #expect(error.code == .connectionProblem)
            #expect(error.message.hasPrefix("the HTTP CONNECT proxy http://proxy:3128 (HTTPS_PROXY) refused the connection to auth:3025: \""))
            #expect(error.message.contains("\"" + answer.components(separatedBy: "\r\n")[0] + "\""))
            #expect(!error.message.contains("\n"))
        }
    }

    @Test("the startup line names the proxy or says direct")
    func describes() throws {
        let environment = try ProxyEnvironment(environment: Self.with("10.0.0.0/8"))
        #expect(environment.describe(address: "auth.example.com", port: 3025)
            == "auth.example.com:3025: through the HTTP CONNECT proxy http://proxy.example.com:8080 (HTTPS_PROXY)")
        #expect(environment.describe(address: "10.0.0.5", port: 3025) == "10.0.0.5:3025: direct (NO_PROXY)")
    }
}
