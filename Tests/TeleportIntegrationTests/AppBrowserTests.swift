import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// Browser access to apps (issue 17, item 2): the web UI's app list, the launch redirect with a
/// one-time token, its redemption on the app's origin (`__Host-teleport-app-session`), requests
/// forwarded with the user's JWT assertion and without the cookie, and the refusals: a replayed
/// token, a token or cookie of another app, no cookie, and a cookie after the web session's
/// logout. curl plays the browser (`--resolve` maps `APP.localhost` to loopback).
@Suite("application access: browser launch and app sessions", .serialized)
struct AppBrowserTests {
    /// One reply from an app origin.
    struct Reply: CustomStringConvertible {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: String
        func header(_ name: String) -> String? { headers.first { $0.name == name }?.value }
        var description: String { "HTTP \(status)\n\(headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n"))\n\n\(body)" }
    }

    /// GET `https://HOST:PORT/PATH` on an app origin with curl.
    static func appGET(_ host: String, port: UInt16, _ path: String, headers: [String] = []) async throws -> Reply {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "appcurl")
        defer { try? FileManager.default.removeItem(at: directory) }
        let headersURL = directory.appendingPathComponent("headers")
        let bodyURL = directory.appendingPathComponent("body")
        var arguments = ["-s", "-k", "-m", "30", "--resolve", "\(host):\(port):127.0.0.1", "-D", headersURL.path, "-o", bodyURL.path,
            "-w", "%{http_code}"]
        for header in headers { arguments += ["-H", header] }
        arguments.append("https://\(host):\(port)\(path)")
        let result = try await TestSupport.run("/usr/bin/curl", arguments)
        let headerText = (try? String(contentsOf: headersURL, encoding: .utf8)) ?? ""
        let lines = headerText.split(separator: "\r\n").dropFirst().compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return Reply(
            status: Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, headers: lines,
            body: (try? String(contentsOf: bodyURL, encoding: .utf8)) ?? "")
    }

    /// The token of a launch redirect's `Location`.
    static func token(_ location: String) -> String {
        String(location.split(separator: "token=").last ?? "")
    }

    /// The cookie's value from a `Set-Cookie`.
    static func cookieValue(_ setCookie: String) -> String {
        String(setCookie.prefix { $0 != ";" })
    }

    /// The JWT's payload, decoded (the signature is checked by `AppAccessTests` with PyJWT).
    static func claims(_ token: String) -> [String: Any] {
        let parts = token.split(separator: ".")
        guard parts.count == 3 else { return [:] }
        var text = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text) else { return [:] }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    @Test(.timeLimit(.minutes(3)))
    func launchRedeemForwardAndRefusals() async throws {
        let cluster = try ClusterFixture(
            clusterName: "apps.example", authSection: "  tokens: [\"app:\(AppAccessTests.token)\"]", proxySection: "  public_addr: localhost")
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            let app = try await AppAccessTests.EchoApp.start()
            let agent: AppAccessTests.AppAgent
            do {
                agent = try AppAccessTests.AppAgent.start(cluster: cluster, appPort: app.port)
            } catch {
                await app.stop()
                throw error
            }
            do {
                try await exercise(cluster, app: app)
            } catch {
                Issue.record("app agent log:\n\(agent.log)")
                await agent.stop()
                await app.stop()
                throw error
            }
            await agent.stop()
            await app.stop()
        }
    }

    func exercise(_ cluster: ClusterFixture, app: AppAccessTests.EchoApp) async throws {
        let dir = try TestSupport.makeTemporaryDirectory(prefix: "appweb")
        defer { try? FileManager.default.removeItem(at: dir) }
        let rolesFile = dir.appendingPathComponent("roles.yaml")
        try TestSupport.write(AppAccessTests.role(allowed: true), to: rolesFile)
        let created = try await cluster.tctl(["create", rolesFile.path])
        try #require(created.exitCode == 0, "\(created)")
        let added = try await cluster.tctl(["users", "add", "bob", "--roles=apps-dev"])
        try #require(added.exitCode == 0, "\(added)")
        let web = WebDriver(cluster: cluster)
        let enrolled = try await SignupHelper.enrol(web, try SignupHelper.link(in: added.stdout, kind: "newuser"), password: WebSessionTests.password)
        let bob = WebUser(name: "bob", secret: enrolled.secret, lastStep: enrolled.time)
        let port = cluster.webPort

        // Signed out: the page sends the browser to the login page.
        let signedOut = try await WebClient(cluster: cluster).send("GET", "/web/apps")
        #expect(signedOut.status == 303 && signedOut.header("location") == "/web/login", "\(signedOut)")

        let browser = WebClient(cluster: cluster)
        let login = try await browser.login(bob)
        try #require(login.status == 200, "\(login)")
        let session = try ResourceCodec.jsonDecoder().decode(AuthAPI.WebSessionInfo.self, from: Data(login.body.utf8))

        // The page lists both apps (once the service heartbeats), escaped, with Launch links.
        var page = try await browser.send("GET", "/web/apps")
        for _ in 0..<60 where !(page.body.contains("data-name=\"echo\"") && page.body.contains("data-name=\"other\"")) {
            try await Task.sleep(for: .milliseconds(500))
            page = try await browser.send("GET", "/web/apps")
        }
        #expect(page.status == 200, "\(page)")
        for text in ["href=\"/web/launch/echo\"", "https://echo.localhost:\(port)", "Echo app", "env=dev", "href=\"/web/apps\" aria-current=\"page\""] {
            #expect(page.body.contains(text), "\(text) not in \(page.body)")
        }

        // The launch: a redirect to the app's origin with a one-time token.
        let launch = try await browser.send("GET", "/web/launch/echo")
        #expect(launch.status == 302, "\(launch)")
        let location = launch.header("location") ?? ""
        #expect(location.hasPrefix("https://echo.localhost:\(port)/x-teleport-auth?token="), "\(launch)")
        let token = Self.token(location)
        #expect(token.count == 64, "\(location)")
        let unknown = try await browser.send("GET", "/web/launch/nosuchapp")
        #expect(unknown.status == 404, "\(unknown)")

        // Redeemed once on the app's origin: the cookie, then 302 to /.
        let redeemed = try await Self.appGET("echo.localhost", port: port, "/x-teleport-auth?token=\(token)")
        #expect(redeemed.status == 302 && redeemed.header("location") == "/", "\(redeemed)")
        let setCookie = redeemed.header("set-cookie") ?? ""
        let cookieRegex = try NSRegularExpression(pattern: "^__Host-teleport-app-session=[0-9a-f]{64}; Secure; HttpOnly; SameSite=Lax; Path=/$")
        #expect(cookieRegex.firstMatch(in: setCookie, range: NSRange(setCookie.startIndex..., in: setCookie)) != nil, "\(setCookie)")
        let cookie = Self.cookieValue(setCookie)
        let replayed = try await Self.appGET("echo.localhost", port: port, "/x-teleport-auth?token=\(token)")
        #expect(replayed.status == 403 && replayed.body.contains("already used"), "\(replayed)")
        #expect(!(replayed.header("set-cookie") ?? "").contains("=" + String(cookie.split(separator: "=").last ?? "")))

        // A request with the cookie reaches the app: the JWT names bob, the cookie is gone, the app's own cookie stays.
        let forwarded = try await Self.appGET(
            "echo.localhost", port: port, "/hello?x=1",
            headers: ["Cookie: theme=dark; \(cookie)", "teleport-jwt-assertion: forged.token.here", "X-Forwarded-For: 10.9.9.9"])
        #expect(forwarded.status == 200, "\(forwarded)")
        let headers = AppAccessTests.received(forwarded.body)
        #expect(headers["cookie"] == ["theme=dark"], "\(headers)")
        #expect(headers["x-forwarded-for"] == ["127.0.0.1"] && headers["host"] == ["127.0.0.1:\(app.port)"], "\(headers)")
        let assertions = headers["teleport-jwt-assertion"] ?? []
        #expect(assertions.count == 1 && assertions.first != "forged.token.here", "\(headers)")
        let claims = Self.claims(assertions.first ?? "")
        #expect(claims["username"] as? String == "bob" && claims["roles"] as? [String] == ["apps-dev"], "\(claims)")
        #expect(claims["aud"] as? [String] == ["http://127.0.0.1:\(app.port)"] && claims["iss"] as? String == "apps.example", "\(claims)")
        if let exp = claims["exp"] as? Double {
            #expect(exp <= session.expires.timeIntervalSince1970 + 1, "the JWT outlives the web session: \(claims)")
        }

        // Keep-alive: four requests in one curl run share one connection (curl's num_connects is
        // 1, then 0), a POST's body among them, each answered with its own path.
        let twice = try await TestSupport.run(
            "/usr/bin/curl",
            ["-sk", "-m", "20", "--resolve", "echo.localhost:\(port):127.0.0.1", "-H", "Cookie: \(cookie)", "-w", "\n%{http_code} connects=%{num_connects}\n",
             "https://echo.localhost:\(port)/one", "https://echo.localhost:\(port)/two", "https://echo.localhost:\(port)/three",
             "--next", "-sk", "-m", "20", "--resolve", "echo.localhost:\(port):127.0.0.1", "-H", "Cookie: \(cookie)", "--data-binary", "12345",
             "-w", "\n%{http_code} connects=%{num_connects}\n", "https://echo.localhost:\(port)/post"])
        #expect(twice.stdout.contains("\"path\": \"/one\"") && twice.stdout.contains("\"path\": \"/three\""), "\(twice)")
        #expect(twice.stdout.contains("\"received\": 5"), "\(twice)")
        let connects = twice.stdout.split(separator: "\n").filter { $0.hasPrefix("200 connects=") }
        #expect(connects == ["200 connects=1", "200 connects=0", "200 connects=0", "200 connects=0"], "\(twice)")
        // ... and the application service kept its connection to the app for them too (one client port at the app).
        let peers = try NSRegularExpression(pattern: "\"peer\": (\\d+)").matches(in: twice.stdout, range: NSRange(twice.stdout.startIndex..., in: twice.stdout))
            .compactMap { Range($0.range(at: 1), in: twice.stdout).map { String(twice.stdout[$0]) } }
        #expect(peers.count == 3 && Set(peers).count == 1, "app-side ports \(peers)")

        // Two requests in one write (pipelined): both answered, in order, on one connection.
        let pipelined = try await TestSupport.run(
            "/usr/bin/env",
            ["python3", AppAccessTests.fixtures.appendingPathComponent("raw_tls.py").path, "pipelined", "--port", "\(port)",
             "--server-name", "echo.localhost", "--header", "Cookie: \(cookie)"], timeout: .seconds(60))
        let first = pipelined.stdout.range(of: "\"path\": \"/p1\""), second = pipelined.stdout.range(of: "\"path\": \"/p2\"")
        #expect(first != nil && second != nil && (first?.lowerBound ?? pipelined.stdout.endIndex) < (second?.lowerBound ?? pipelined.stdout.startIndex), "\(pipelined)")
        #expect(pipelined.stdout.components(separatedBy: "HTTP/1.1 200").count == 3, "\(pipelined)")

        // Another app's token redeemed on this origin, and another app's cookie here: refused.
        let otherLaunch = try await browser.send("GET", "/web/launch/other")
        let otherToken = Self.token(otherLaunch.header("location") ?? "")
        let crossRedeem = try await Self.appGET("echo.localhost", port: port, "/x-teleport-auth?token=\(otherToken)")
        #expect(crossRedeem.status == 403 && crossRedeem.body.contains("for app other, not echo"), "\(crossRedeem)")
        let otherLaunch2 = try await browser.send("GET", "/web/launch/other")
        let otherRedeemed = try await Self.appGET(
            "other.localhost", port: port, "/x-teleport-auth?token=\(Self.token(otherLaunch2.header("location") ?? ""))")
        #expect(otherRedeemed.status == 302, "\(otherRedeemed)")
        let otherCookie = Self.cookieValue(otherRedeemed.header("set-cookie") ?? "")
        let crossCookie = try await Self.appGET("echo.localhost", port: port, "/", headers: ["Cookie: \(otherCookie)"])
        #expect(crossCookie.status == 401 && crossCookie.body.contains("for app other, not echo"), "\(crossCookie)")
        let crossBrowser = try await Self.appGET(
            "echo.localhost", port: port, "/", headers: ["Cookie: \(otherCookie)", "Accept: text/html,application/xhtml+xml"])
        #expect(crossBrowser.status == 302 && crossBrowser.header("location") == "https://localhost:\(port)/web/login", "\(crossBrowser)")
        let noCookie = try await Self.appGET("echo.localhost", port: port, "/")
        #expect(noCookie.status == 401 && noCookie.body.contains("/web/apps"), "\(noCookie)")
        let forged = try await Self.appGET("echo.localhost", port: port, "/", headers: ["Cookie: __Host-teleport-app-session=\(String(repeating: "a", count: 64))"])
        #expect(forged.status == 401, "\(forged)")

        // Logout ends the app session.
        let logout = try await browser.send(
            "DELETE", "/webapi/sessions", headers: ["X-CSRF-Token": session.csrfToken, "Origin": "https://127.0.0.1:\(port)"])
        #expect(logout.status == 200, "\(logout)")
        let afterLogout = try await Self.appGET("echo.localhost", port: port, "/", headers: ["Cookie: \(cookie)"])
        #expect(afterLogout.status == 401 && afterLogout.body.contains("launch the app again"), "\(afterLogout)")

        // The refusals are in the audit log.
        let texts = ["already used", "for app other, not echo", "needs a session", "expired or was ended", "app \\\"nosuchapp\\\" is not registered"]
        let lines = try await DatabaseAccessPostgresTests.auditLines(cluster) { lines in
            texts.allSatisfy { text in lines.contains { $0.contains("\"TAP00W\"") && $0.contains(text) } }
        }
        for text in texts {
            #expect(lines.contains { $0.contains("\"TAP00W\"") && $0.contains(text) }, "\(text) not audited")
        }
    }
}
