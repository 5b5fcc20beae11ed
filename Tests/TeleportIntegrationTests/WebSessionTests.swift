import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// The web UI's sessions against a real cluster, driven with the real `curl`: the cookie's exact
/// flags, `/webapi/me`, CSRF and Origin checks, logout ending the session in the backend, idle
/// expiry, the shared lockout, and the security headers.
@Suite("web sessions (curl against a real cluster)", .serialized)
struct WebSessionTests {
    static let password = "correct horse battery staple 7"

    @Test("login sets an exact __Host- cookie; /webapi/me; CSRF and Origin are checked; logout ends the session; headers")
    func loginCSRFOriginLogout() async throws {
        try await withCluster(try ClusterFixture(clusterName: "websession.example")) { cluster in
            try await cluster.start()
            let web = WebDriver(cluster: cluster)
            let alice = try await WebUser.signUp(cluster, web, name: "alice")
            let bob = try await WebUser.signUp(cluster, web, name: "bob")

            // The login page: labelled fields, no inline script, the headers.
            let page = try await WebClient(cluster: cluster).send("GET", "/web/login")
            #expect(page.status == 200, "\(page)")
            for field in ["for=\"user\"", "for=\"password\"", "for=\"otp_code\"", "<script src=\"/web/app.js\" defer></script>"] {
                #expect(page.body.contains(field), "\(page.body)")
            }
            #expect(!page.body.contains("<script>") && !page.body.contains("style=\""))
            WebSessionTests.expectSecurityHeaders(page)
            let script = try await WebClient(cluster: cluster).send("GET", "/web/app.js")
            #expect(script.status == 200 && script.header("content-type")?.hasPrefix("text/javascript") == true, "\(script)")

            // JSON login: the cookie's flags exactly.
            let aliceClient = WebClient(cluster: cluster)
            let login = try await aliceClient.login(alice)
            #expect(login.status == 200, "\(login)")
            let setCookie = try #require(login.header("set-cookie"), "\(login)")
            let cookieRegex = try NSRegularExpression(pattern: "^__Host-session=[0-9a-f]{64}; Secure; HttpOnly; SameSite=Strict; Path=/$")
            #expect(cookieRegex.firstMatch(in: setCookie, range: NSRange(setCookie.startIndex..., in: setCookie)) != nil, "\(setCookie)")
            #expect(!setCookie.lowercased().contains("domain"))
            let aliceSession = try ResourceCodec.jsonDecoder().decode(AuthAPI.WebSessionInfo.self, from: Data(login.body.utf8))
            #expect(aliceSession.user == "alice")
            #expect(aliceSession.sessionID == nil, "the secret id is only in the cookie")
            #expect(aliceSession.csrfToken.count == 64)
            #expect(login.header("cache-control") == "no-store")

            let me = try await aliceClient.send("GET", "/webapi/me")
            #expect(me.status == 200, "\(me)")
            let info = try ResourceCodec.jsonDecoder().decode(AuthAPI.WebSessionInfo.self, from: Data(me.body.utf8))
            #expect(info.user == "alice")
            #expect(info.roles.contains("admin") || info.roles.contains("access"), "\(info)")
            #expect(Set(info.logins).isSuperset(of: ["alice", "root"]), "\(info)")
            WebSessionTests.expectSecurityHeaders(me)
            let home = try await aliceClient.send("GET", "/web/")
            #expect(home.status == 200 && home.body.contains("Signed in as <span id=\"home-user\">alice</span>"), "\(home)")

            // The form login (no script): 303 to /web/ with the cookie.
            let bobClient = WebClient(cluster: cluster)
            let bobLogin = try await bobClient.send(
                "POST", "/webapi/sessions", form: ["user": "bob", "password": Self.password, "otp_code": try bob.nextCode()])
            #expect(bobLogin.status == 303 && bobLogin.header("location") == "/web/", "\(bobLogin)")
            let bobMe = try await bobClient.send("GET", "/webapi/me")
            let bobSession = try ResourceCodec.jsonDecoder().decode(AuthAPI.WebSessionInfo.self, from: Data(bobMe.body.utf8))
            #expect(bobSession.user == "bob")

            // Logout without a CSRF token, with bob's, or from another origin: refused, session intact.
            let noToken = try await aliceClient.send("DELETE", "/webapi/sessions")
            #expect(noToken.status == 403, "\(noToken)")
            let bobsToken = try await aliceClient.send("DELETE", "/webapi/sessions", headers: ["X-CSRF-Token": bobSession.csrfToken])
            #expect(bobsToken.status == 403, "\(bobsToken)")
            let foreign = try await aliceClient.send(
                "DELETE", "/webapi/sessions", headers: ["X-CSRF-Token": aliceSession.csrfToken, "Origin": "https://evil.example"])
            #expect(foreign.status == 403, "\(foreign)")
            WebSessionTests.expectSecurityHeaders(foreign)
            let crossSite = try await aliceClient.send(
                "DELETE", "/webapi/sessions", headers: ["X-CSRF-Token": aliceSession.csrfToken, "Sec-Fetch-Site": "cross-site"])
            #expect(crossSite.status == 403, "\(crossSite)")
            let foreignLogin = try await WebClient(cluster: cluster).send(
                "POST", "/webapi/sessions", form: ["user": "alice", "password": Self.password, "otp_code": "000000"],
                headers: ["Origin": "https://evil.example"])
            #expect(foreignLogin.status == 403, "a cross-origin login form is refused before the auth service: \(foreignLogin)")
            #expect(try await aliceClient.send("GET", "/webapi/me").status == 200, "the session survived the refused requests")

            // Logout with the token from the same origin: the old cookie is refused afterwards.
            let oldCookie = try aliceClient.cookieHeader()
            let logout = try await aliceClient.send(
                "DELETE", "/webapi/sessions",
                headers: ["X-CSRF-Token": aliceSession.csrfToken, "Origin": "https://127.0.0.1:\(cluster.webPort)"])
            #expect(logout.status == 200, "\(logout)")
            #expect(logout.header("set-cookie")?.hasPrefix("__Host-session=; Max-Age=0") == true, "\(logout)")
            let replay = try await WebClient(cluster: cluster).send("GET", "/webapi/me", headers: ["Cookie": oldCookie])
            #expect(replay.status == 401, "\(replay)")
            let replayedHome = try await WebClient(cluster: cluster).send("GET", "/web/", headers: ["Cookie": oldCookie])
            #expect(replayedHome.status == 303 && replayedHome.header("location") == "/web/login", "\(replayedHome)")
            #expect(try await bobClient.send("GET", "/webapi/me").status == 200, "bob's session is not affected")
            let noCookie = try await WebClient(cluster: cluster).send("GET", "/webapi/me")
            #expect(noCookie.status == 401, "\(noCookie)")
            let forged = try await WebClient(cluster: cluster).send("GET", "/webapi/me", headers: ["Cookie": "__Host-session=" + String(repeating: "ab", count: 32)])
            #expect(forged.status == 401, "\(forged)")
        }
    }

    @Test("fifty wrong one-time codes: locked after five, every attempt refused and audited, the right code no help, others unaffected")
    func lockout() async throws {
        try await withCluster(try ClusterFixture(clusterName: "weblock.example")) { cluster in
            try await cluster.start()
            let web = WebDriver(cluster: cluster)
            let carol = try await WebUser.signUp(cluster, web, name: "carol")
            let dave = try await WebUser.signUp(cluster, web, name: "dave")
            let client = WebClient(cluster: cluster)
            let good = try carol.nextCode()
            let wrong = good == "000000" ? "111111" : "000000"
            for attempt in 1...50 {
                let refused = try await client.send(
                    "POST", "/webapi/sessions", json: ["user": "carol", "password": Self.password, "otp_code": wrong])
                #expect(refused.status == 401, "attempt \(attempt): \(refused)")
                #expect(refused.header("set-cookie") == nil)
                if attempt > 5 { #expect(refused.body.contains("locked"), "attempt \(attempt): \(refused)") }
            }
            let locked = try await client.send("POST", "/webapi/sessions", json: ["user": "carol", "password": Self.password, "otp_code": good])
            #expect(locked.status == 401, "the right code no longer helps: \(locked)")
            #expect(locked.body.contains("locked"), "\(locked)")
            // tsh's login is locked too: the same account state.
            let tsh = try await web.login(LoginKeys().request(user: "carol", password: Self.password, otp: good))
            #expect(tsh.status == 403 || tsh.status == 401, "\(tsh)")
            // Another user logs in as usual.
            let daveLogin = try await WebClient(cluster: cluster).login(dave)
            #expect(daveLogin.status == 200, "\(daveLogin)")
            let audit = try SignupHelper.auditLog(cluster)
            #expect(audit.contains("\"user.locked\""), "\(audit)")
            let failures = audit.split(separator: "\n").filter { $0.contains("\"T1000W\"") && $0.contains("\"carol\"") }
            #expect(failures.count >= 51, "every refused attempt is audited: \(failures.count)")
            #expect(failures.contains { $0.contains("invalid one-time code") }, "\(audit)")
        }
    }

    @Test("a hostile user name (<script>, ANSI escapes, invalid UTF-8) at login stays inert in the page, the reply and the audit JSON")
    func hostileUserName() async throws {
        try await withCluster(try ClusterFixture(clusterName: "webhostile.example")) { cluster in
            try await cluster.start()
            let hostile = "<script>alert(1)</script>\u{1b}[31m\u{1b}]0;pwned\u{07}x"
            let client = WebClient(cluster: cluster)
            // The form login (the page answers with the form and an error): nothing of it as markup.
            let form = try await client.send(
                "POST", "/webapi/sessions", form: ["user": hostile, "password": "wrong password here", "otp_code": "000000"])
            #expect(form.status == 401 || form.status == 400, "\(form)")
            #expect(!form.body.contains("<script>alert") && !form.body.contains("\u{1b}"), "\(form.body)")
            // JSON login: the error is JSON with no raw control byte.
            let json = try await client.send("POST", "/webapi/sessions", json: ["user": hostile, "password": "wrong password here", "otp_code": "000000"])
            #expect(json.status == 401 || json.status == 400, "\(json)")
            #expect(!json.body.contains("\u{1b}") && !json.body.contains("<script>"), "\(json.body)")
            #expect((try? JSONSerialization.jsonObject(with: Data(json.body.utf8))) != nil, "\(json.body)")
            // Invalid UTF-8 in the form: refused with a sentence, nothing stored.
            let invalid = try await client.send(
                "POST", "/webapi/sessions", rawForm: "user=%FF%FEroot%C0%AF&password=x&otp_code=000000")
            #expect(invalid.status == 400 && invalid.body.contains("UTF-8"), "\(invalid)")
            // The audit log: each line valid JSON, no raw ESC or BEL, the name kept as data.
            let audit = try SignupHelper.auditLog(cluster)
            let lines = audit.split(separator: "\n")
            #expect(lines.contains { $0.contains("alert(1)") }, "the refused login is audited: \(audit)")
            for line in lines {
                #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "\(line)")
                #expect(!line.contains("\u{1b}") && !line.contains("\u{07}"), "\(line)")
            }
        }
    }

    @Test("a web session ends after web_idle_timeout without use and lives on while used")
    func idleExpiry() async throws {
        try await withCluster(try ClusterFixture(clusterName: "webidle.example", authSection: "  web_idle_timeout: 10s")) { cluster in
            try await cluster.start()
            let web = WebDriver(cluster: cluster)
            let dan = try await WebUser.signUp(cluster, web, name: "dan")
            let client = WebClient(cluster: cluster)
            let login = try await client.login(dan)
            #expect(login.status == 200, "\(login)")
            // Used every second for longer than the idle timeout: still valid (each use renews it).
            // 10 s leaves room for a request that a loaded machine makes slow.
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .seconds(15) {
                let me = try await client.send("GET", "/webapi/me")
                #expect(me.status == 200, "renewed while used: \(me)")
                try await Task.sleep(for: .seconds(1))
            }
            // Then left alone past the timeout (nothing to wait for but time itself): refused.
            try await Task.sleep(for: .seconds(12))
            let expired = try await client.send("GET", "/webapi/me")
            #expect(expired.status == 401, "\(expired)")
        }
    }

    @Test("a session made on one proxy works on another, and a logout on the second ends it on the first", .timeLimit(.minutes(4)))
    func logoutOnEveryProxy() async throws {
        let token = "0123456789abcdef0123456789abcdef"
        let cluster = try ClusterFixture(clusterName: "webproxies.example", authSection: "  tokens: [\"proxy:\(token)\"]")
        let second = try TestSupport.makeTemporaryDirectory(prefix: "proxy-b")
        let webB = try TestSupport.freeLoopbackPort()
        let diagB = try TestSupport.freeLoopbackPort()
        var pidB: pid_t?
        defer {
            if let pidB { kill(pidB, SIGKILL) }
            try? FileManager.default.removeItem(at: second)
        }
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            let web = WebDriver(cluster: cluster)
            let frank = try await WebUser.signUp(cluster, web, name: "frank")
            // Proxy B: proxy only, joined to the same auth service (and so the same backend).
            let config = second.appendingPathComponent("teleport.yaml")
            try TestSupport.write(
                """
                version: v3
                teleport:
                  nodename: proxy-b
                  data_dir: \(second.appendingPathComponent("data").path)
                  auth_token: \(token)
                  auth_servers: [127.0.0.1:\(cluster.authPort)]
                  log:
                    severity: DEBUG
                auth_service:
                  enabled: false
                ssh_service:
                  enabled: false
                proxy_service:
                  enabled: true
                  listen_addr: 127.0.0.1:\(try TestSupport.freeLoopbackPort())
                  web_listen_addr: 127.0.0.1:\(webB)
                  tunnel_listen_addr: 127.0.0.1:\(try TestSupport.freeLoopbackPort())
                """, to: config)
            let logB = second.appendingPathComponent("proxy-b.log")
            pidB = try TestSupport.spawnDaemon(
                try ClusterFixture.binary("teleport"), ["start", "-c", config.path, "--diag-addr", "127.0.0.1:\(diagB)"], logPath: logB.path)
            var ready = false
            let deadline = ContinuousClock.now + .seconds(60)
            while !ready, ContinuousClock.now < deadline {
                let probe = try await TestSupport.run(
                    "/usr/bin/curl", ["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(diagB)/readyz"])
                ready = probe.stdout == "200"
                if !ready { try await Task.sleep(for: .milliseconds(250)) }
            }
            try #require(ready, "proxy B did not become ready:\n\((try? String(contentsOf: logB, encoding: .utf8)) ?? "")")

            let onA = WebClient(cluster: cluster)
            let login = try await onA.login(frank)
            #expect(login.status == 200, "\(login)")
            let session = try ResourceCodec.jsonDecoder().decode(AuthAPI.WebSessionInfo.self, from: Data(login.body.utf8))
            let onB = onA.on(port: webB)
            let seenOnB = try await onB.send("GET", "/webapi/me")
            #expect(seenOnB.status == 200 && seenOnB.body.contains("\"user\":\"frank\""), "the session is in the backend: \(seenOnB)")
            let cookie = try onA.cookieHeader()

            let logout = try await onB.send(
                "DELETE", "/webapi/sessions", headers: ["X-CSRF-Token": session.csrfToken, "Origin": "https://127.0.0.1:\(webB)"])
            #expect(logout.status == 200, "\(logout)")
            let replayA = try await WebClient(cluster: cluster).send("GET", "/webapi/me", headers: ["Cookie": cookie])
            #expect(replayA.status == 401, "logged out on B, refused on A: \(replayA)")
            let replayB = try await WebClient(cluster: cluster, port: webB).send("GET", "/webapi/me", headers: ["Cookie": cookie])
            #expect(replayB.status == 401, "\(replayB)")
            if let pid = pidB { _ = await TestSupport.stopDaemon(pid) }
            pidB = nil
        }
    }

    static func expectSecurityHeaders(_ reply: WebReply, sourceLocation: SourceLocation = #_sourceLocation) {
        let csp = reply.header("content-security-policy") ?? ""
        #expect(csp.contains("default-src 'self'"), "\(reply)", sourceLocation: sourceLocation)
        #expect(csp.contains("frame-ancestors 'none'"), "\(reply)", sourceLocation: sourceLocation)
        #expect(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "\(reply)", sourceLocation: sourceLocation)
        #expect(reply.header("x-frame-options") == "DENY", "\(reply)", sourceLocation: sourceLocation)
        #expect(reply.header("x-content-type-options") == "nosniff", "\(reply)", sourceLocation: sourceLocation)
        #expect(reply.header("referrer-policy") == "no-referrer", "\(reply)", sourceLocation: sourceLocation)
    }
}

/// A user signed up through the real signup page, with its TOTP secret: each login needs a code
/// of a later step than the last one used (codes are good once; the server accepts ±1 step).
final class WebUser: @unchecked Sendable {
    let name: String
    let secret: String
    private var lastStep: Date

    init(name: String, secret: String, lastStep: Date) {
        self.name = name
        self.secret = secret
        self.lastStep = lastStep
    }

    static func signUp(_ cluster: ClusterFixture, _ web: WebDriver, name: String) async throws -> WebUser {
        let link = try await SignupHelper.addUser(cluster, name: name, logins: "\(name),root")
        let enrolled = try await SignupHelper.enrol(web, link, password: WebSessionTests.password)
        return WebUser(name: name, secret: enrolled.secret, lastStep: enrolled.time)
    }

    /// A code of the step after the last used one (one step ahead is within the server's skew), or of
    /// the current step when the last one is long past (a slow test must not fall outside the skew).
    func nextCode() throws -> String {
        lastStep = max(lastStep.addingTimeInterval(30), Date())
        return try TestTOTP.code(base32: secret, time: lastStep.timeIntervalSince1970)
    }
}

/// curl with a cookie jar of its own, any method, extra headers: a browser's requests to the proxy.
struct WebClient {
    let cluster: ClusterFixture
    let jar: URL
    /// The web port to talk to (the cluster's own proxy unless told).
    var port: UInt16

    init(cluster: ClusterFixture, port: UInt16? = nil) {
        self.cluster = cluster
        self.port = port ?? cluster.webPort
        jar = cluster.directory.appendingPathComponent("webclient-\(UUID().uuidString).txt")
    }

    /// The same browser (cookie jar) talking to another proxy.
    func on(port: UInt16) -> WebClient {
        var other = self
        other.port = port
        return other
    }

    /// `POST /webapi/sessions` as the login page's script does.
    func login(_ user: WebUser) async throws -> WebReply {
        try await send("POST", "/webapi/sessions", json: ["user": user.name, "password": WebSessionTests.password, "otp_code": try user.nextCode()])
    }

    /// The jar's session cookie as a `Cookie` header value.
    func cookieHeader() throws -> String {
        let text = try String(contentsOf: jar, encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.contains("__Host-session") }, "\(text)")
        let fields = line.split(separator: "\t")
        return "__Host-session=\(fields.last ?? "")"
    }

    func send(
        _ method: String, _ path: String, json: [String: String]? = nil, form: [String: String]? = nil, rawForm: String? = nil,
        headers: [String: String] = [:]
    ) async throws -> WebReply {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "curl")
        defer { try? FileManager.default.removeItem(at: directory) }
        let headersURL = directory.appendingPathComponent("headers")
        let bodyURL = directory.appendingPathComponent("body")
        var arguments = ["-s", "-k", "-m", "30", "-X", method, "-D", headersURL.path, "-o", bodyURL.path, "-w", "%{http_code}"]
        if headers["Cookie"] == nil { arguments += ["-b", jar.path, "-c", jar.path] }
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { arguments += ["-H", "\(name): \(value)"] }
        if let json {
            let rawURL = directory.appendingPathComponent("raw")
            try ResourceCodec.json(json).write(to: rawURL)
            arguments += ["-H", "Content-Type: application/json", "--data-binary", "@\(rawURL.path)"]
        }
        if let form {
            for (name, value) in form.sorted(by: { $0.key < $1.key }) { arguments += ["--data-urlencode", "\(name)=\(value)"] }
        }
        if let rawForm {
            arguments += ["-H", "Content-Type: application/x-www-form-urlencoded", "--data-binary", rawForm]
        }
        arguments.append("https://127.0.0.1:\(port)\(path)")
        let result = try await TestSupport.run("/usr/bin/curl", arguments)
        let status = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(status != 0, "curl failed: \(result)")
        let headerText = (try? String(contentsOf: headersURL, encoding: .utf8)) ?? ""
        let lines = headerText.split(separator: "\r\n").dropFirst().compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let body = (try? String(contentsOf: bodyURL, encoding: .utf8)) ?? ""
        #expect(status != 500, "the proxy answered 500 to \(method) \(path): \(body)")
        return WebReply(status: status, headers: lines, body: body)
    }
}
