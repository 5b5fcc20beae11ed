import Foundation
import TeleportAPI
import TeleportClient
import Testing

/// Pure tables: proxy addresses, TTLs, the profile file, the status text.
@Suite("tsh parsing and formatting")
struct ClientParsingTests {
    @Test(
        "--proxy forms",
        arguments: [
            ("proxy.example.com", "proxy.example.com", 3080), ("proxy.example.com:443", "proxy.example.com", 443),
            ("https://proxy.example.com:3080/", "proxy.example.com", 3080), ("127.0.0.1:3080", "127.0.0.1", 3080),
            ("[::1]:3080", "::1", 3080),
        ])
    func proxyAddress(_ text: String, _ host: String, _ port: Int) throws {
        let address = try ProxyAddress(parsing: text)
        #expect(address.host == host && address.port == port)
        #expect(address.profileName == host)
    }

    @Test("bad --proxy values", arguments: ["", ":3080", "host:99999", "a b", "host:0"])
    func badProxy(_ text: String) {
        #expect(throws: TeleportError.self) { try ProxyAddress(parsing: text) }
    }

    @Test("--ttl forms", arguments: [(nil, 43200.0), ("8h", 28800), ("90m", 5400), ("1h30m", 5400), ("120", 7200)])
    func ttl(_ text: String?, _ seconds: Double) throws {
        #expect(try LoginOptions(ttl: text).ttlSeconds() == seconds)
    }

    @Test("bad --ttl values", arguments: ["soon", "0", "30s", "-1h", "h"])
    func badTTL(_ text: String) {
        #expect(throws: TeleportError.self) { try LoginOptions(ttl: text).ttlSeconds() }
    }

    @Test("the profile file round-trips, quoting what needs it")
    func profileYAML() throws {
        let profile = Profile(
            webProxyAddress: ProxyAddress(host: "proxy.example.com", port: 3080), sshProxyAddress: "proxy.example.com:3023",
            user: "joe: \"the\" #admin", cluster: "example.com", insecure: true)
        let text = profile.yamlText
        #expect(text.hasPrefix("web_proxy_addr: \"proxy.example.com:3080\"\n"))
        #expect(try Profile(yamlText: text, source: "f") == profile)
    }

    @Test("hand-written profile files: plain and single-quoted values, comments, unknown keys")
    func handWritten() throws {
        let text = """
            # a comment
            web_proxy_addr: proxy.example.com:3080 # trailing comment
            user: 'joe'
            cluster: example.com
            kube_proxy_addr: ignored
            """
        let profile = try Profile(yamlText: text, source: "f")
        #expect(profile.user == "joe" && profile.cluster == "example.com" && !profile.insecure && profile.sshProxyAddress == nil)
    }

    @Test("status text: aligned rows, the time left rounded down to the minute, EXPIRED after the end")
    func statusText() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let facts = CertificateFacts(
            username: "joe", clusterName: "example.com", roles: ["access", "editor"], logins: ["joe", "root"],
            validAfter: now, validBefore: now.addingTimeInterval(12 * 3600 - 50))
        let report = StatusReport(profileURL: "https://proxy.example.com:3080", facts: facts)
        #expect(
            report.text(now: now) == """
                > Profile URL:        https://proxy.example.com:3080
                  Logged in as:       joe
                  Cluster:            example.com
                  Roles:              access, editor
                  Logins:             joe, root
                  Valid until:        2027-01-15T19:59:10Z [11h59m left]

                """)
        #expect(report.text(now: now.addingTimeInterval(12 * 3600)).contains("2027-01-15T19:59:10Z [EXPIRED]"))
        // Three hours later it says what is left, not the certificate's lifetime.
        #expect(report.text(now: now.addingTimeInterval(3 * 3600 + 10)).contains("2027-01-15T19:59:10Z [8h59m left]"))
    }

    static let timeLeftCases: [(Double, String)] = [
        (43_200, "12h0m left"), (43_199, "11h59m left"), (3_659, "1h0m left"), (3_599, "59m left"),
        (42, "42s left"), (0.5, "0s left"), (-5, "0s left"),
    ]

    @Test("time left: rounded down, never the whole TTL right after login", arguments: timeLeftCases)
    func timeLeft(seconds: Double, expected: String) {
        #expect(StatusReport.timeLeft(seconds) == expected)
    }
}
