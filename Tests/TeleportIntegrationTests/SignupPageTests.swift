import Crypto
import Foundation
import TeleportAPI
import TeleportCrypto
import TeleportTestSupport
import Testing

/// The proxy's signup and reset pages and `tsh login`'s `POST /webapi/ssh/certs`, driven with the
/// real `curl` against a real cluster: the whole invitation flow, CSRF, errors and escaping.
@Suite("signup pages and web login", .serialized)
struct SignupPageTests {
    @Test("the TOTP helper of these tests matches RFC 6238's SHA-1 vectors")
    func totpVectors() {
        let secret = Array("12345678901234567890".utf8)
        #expect(TestTOTP.code(secret: secret, time: 59) == "287082")
        #expect(TestTOTP.code(secret: secret, time: 1_111_111_109) == "081804")
        #expect(TestTOTP.code(secret: secret, time: 2_000_000_000) == "279037")
        #expect(TestTOTP.base32Decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") == secret)
    }

    @Test("invitation: the page shows the user and TOTP secret, the form completes it once, then tsh's login works")
    func signupFlow() async throws {
        try await withCluster(try ClusterFixture(clusterName: "signup.example")) { cluster in
            try await cluster.start()
            let web = WebDriver(cluster: cluster)
            let link = try await SignupHelper.addUser(cluster, name: "joe", logins: "joe,root")
            #expect(link.path.hasPrefix("/web/newuser/"))

            let page = try await web.request(link.path, jar: web.jar)
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("joe"))
            #expect(page.body.contains("otpauth://totp/signup.example:joe?secret="), "\(page.body)")
            let secret = try #require(page.totpSecret, "\(page.body)")
            #expect(page.body.contains(secret))
            #expect(page.body.contains("name=\"password_confirm\"") && page.body.contains("name=\"otp_code\""))
            #expect(page.header("cache-control") == "no-store")
            #expect(page.header("x-frame-options") == "DENY")
            #expect(page.header("referrer-policy") == "no-referrer")
            #expect(page.header("content-security-policy") == "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
            let setCookie = try #require(page.header("set-cookie"))
            #expect(setCookie.hasPrefix("__Host-csrf="))
            for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] { #expect(setCookie.contains(attribute), "\(setCookie)") }
            let csrf = try #require(page.csrfToken)
            #expect(setCookie.hasPrefix("__Host-csrf=\(csrf);"))

            let password = "correct horse battery staple 7"
            let code = try TestTOTP.code(base32: secret, time: Date().timeIntervalSince1970)
            let done = try await web.request(
                link.path, form: ["csrf_token": csrf, "password": password, "password_confirm": password, "otp_code": code], jar: web.jar)
            #expect(done.status == 200, "\(done)")
            #expect(done.body.contains("Your account is ready"), "\(done.body)")
            #expect(done.body.contains("tsh login --proxy="), "\(done.body)")
            #expect(done.body.contains("--user=joe"))
            // The test proxy's certificate is self-signed: the command says --insecure and the page says why;
            // the code just entered is used up, so the page says to wait for the next one.
            #expect(done.body.contains("--user=joe --insecure</pre>"), "\(done.body)")
            #expect(done.body.contains("self-signed HTTPS certificate"), "\(done.body)")
            #expect(done.body.contains("wait for the next code"), "\(done.body)")
            #expect(!(try String(contentsOf: web.jar, encoding: .utf8)).contains("__Host-csrf"), "the form's cookie is removed")

            // The token is used up: the page and a second submission are the invalid-invitation page.
            let again = try await web.request(link.path)
            #expect(again.status == 404, "\(again)")
            #expect(again.body.lowercased().contains("this invitation is invalid or has expired; ask your administrator for a new one"))
            let twice = try await web.request(
                link.path, form: ["csrf_token": "same", "password": password, "password_confirm": password, "otp_code": code],
                cookie: "__Host-csrf=same")
            #expect(twice.status == 404, "\(twice)")
            #expect(twice.body.contains("invalid or has expired"), "\(twice.body)")

            // tsh's login: a code of the next step (the enrolment used this one; codes are good once).
            let keys = try LoginKeys()
            let step = Date().timeIntervalSince1970 + 30
            let login = try await web.login(keys.request(user: "joe", password: password, otp: try TestTOTP.code(base32: secret, time: step)))
            #expect(login.status == 200, "\(login)")
            let certs = try ResourceCodec.jsonDecoder().decode(AuthAPI.LoginResponse.self, from: Data(login.body.utf8))
            #expect(certs.username == "joe")
            #expect(certs.clusterName == "signup.example")
            #expect(Set(certs.logins).isSuperset(of: ["joe", "root"]))
            #expect(login.header("cache-control") == "no-store")
            let audit = try SignupHelper.auditLog(cluster)
            #expect(!audit.contains("203.0.113.9"), "the proxy replaces the client_address a client sends")

            // Wrong password and unknown user look the same: 403 with auth's message.
            let wrong = try await web.login(keys.request(user: "joe", password: "not it", otp: try TestTOTP.code(base32: secret, time: step + 30)))
            #expect(wrong.status == 403, "\(wrong)")
            let wrongError = try ResourceCodec.jsonDecoder().decode(AuthAPI.ErrorResponse.self, from: Data(wrong.body.utf8))
            #expect(wrongError.error.code == "access_denied")
            let nobody = try await web.login(keys.request(user: "nobody", password: "not it", otp: "123456"))
            #expect(nobody.status == 403, "\(nobody)")
            let nobodyError = try ResourceCodec.jsonDecoder().decode(AuthAPI.ErrorResponse.self, from: Data(nobody.body.utf8))
            #expect(nobodyError.error.code == "access_denied")
            #expect(nobodyError.error.message == wrongError.error.message)

            // The right password with a wrong or an expired code is refused too, and audited.
            let wrongCode = try await web.login(keys.request(user: "joe", password: password, otp: "000000"))
            #expect(wrongCode.status == 403, "\(wrongCode)")
            let stale = try TestTOTP.code(base32: secret, time: Date().timeIntervalSince1970 - 600)
            let expiredCode = try await web.login(keys.request(user: "joe", password: password, otp: stale))
            #expect(expiredCode.status == 403, "\(expiredCode)")
            let failures = try SignupHelper.auditLog(cluster).split(separator: "\n").filter { $0.contains("\"user.login\"") && $0.contains("T1000W") }
            #expect(failures.count >= 4, "wrong password, unknown user, wrong code, expired code: \(failures.count)")

            // A weak password is refused on the form with the rule; the invitation stays usable.
            let second = try await SignupHelper.addUser(cluster, name: "kim", logins: "kim")
            let form = try await web.request(second.path, jar: web.jar)
            let kimSecret = try #require(form.totpSecret)
            let weak = try await web.request(
                second.path,
                form: ["csrf_token": try #require(form.csrfToken), "password": "short1", "password_confirm": "short1",
                       "otp_code": try TestTOTP.code(base32: kimSecret, time: Date().timeIntervalSince1970)],
                jar: web.jar)
            #expect(weak.status == 400 && weak.body.contains("too short"), "\(weak.status) \(weak.body.prefix(300))")
            let still = try await web.request(second.path, jar: web.jar)
            #expect(still.status == 200, "the invitation is not used up by a refused form")

            // An invitation that expired.
            let shortLived = try await cluster.tctl(["users", "add", "lee", "--logins=lee", "--ttl=1s"])
            #expect(shortLived.exitCode == 0, "\(shortLived)")
            let path = try #require(shortLived.stdout.split(separator: "\n").compactMap { line in
                line.range(of: "/web/newuser/").map { String(line[$0.lowerBound...]).trimmingCharacters(in: .whitespaces) }
            }.first, "\(shortLived)")
            try await Task.sleep(for: .seconds(2))
            let expired = try await web.request(path, jar: web.jar)
            #expect(expired.status == 404 && expired.body.contains("invalid or has expired"), "\(expired.status)")
        }
    }

    @Test("a reset link sets a new password through the same form")
    func resetFlow() async throws {
        try await withCluster(try ClusterFixture(clusterName: "reset.example")) { cluster in
            try await cluster.start()
            let web = WebDriver(cluster: cluster)
            let signup = try await SignupHelper.addUser(cluster, name: "ann", logins: "ann")
            try await web.complete(signup, password: "first password 123", expecting: "Your account is ready")

            let reset = try await SignupHelper.resetUser(cluster, name: "ann")
            #expect(reset.path.hasPrefix("/web/reset/"), "\(reset)")
            try await web.complete(reset, password: "second password 456", expecting: "Your password has been reset")
        }
    }

    @Test("refusals: no CSRF cookie or field is 403, different passwords re-show the form with 400, a made-up token is 404")
    func refusals() async throws {
        try await withCluster(try ClusterFixture()) { cluster in
            try await cluster.start()
            let web = WebDriver(cluster: cluster)
            let link = try await SignupHelper.addUser(cluster, name: "bob", logins: "bob")
            let page = try await web.request(link.path, jar: web.jar)
            #expect(page.status == 200, "\(page)")
            let csrf = try #require(page.csrfToken)
            let fields = ["password": "a good password 1", "password_confirm": "a good password 1", "otp_code": "000000"]

            let noCookie = try await web.request(link.path, form: fields.merging(["csrf_token": csrf]) { $1 })
            #expect(noCookie.status == 403, "\(noCookie)")
            #expect(noCookie.body.contains("security check failed"))
            let noField = try await web.request(link.path, form: fields, jar: web.jar)
            #expect(noField.status == 403, "\(noField)")
            let otherValue = try await web.request(link.path, form: fields.merging(["csrf_token": csrf + "0"]) { $1 }, jar: web.jar)
            #expect(otherValue.status == 403, "\(otherValue)")
            #expect(noCookie.header("x-frame-options") == "DENY")

            let mismatch = try await web.request(
                link.path, form: ["csrf_token": csrf, "password": "one password 1", "password_confirm": "another one 2", "otp_code": "000000"],
                jar: web.jar)
            #expect(mismatch.status == 400, "\(mismatch)")
            #expect(mismatch.body.contains("The passwords do not match"))
            #expect(mismatch.body.contains("name=\"password_confirm\""), "the form is shown again")
            #expect(mismatch.csrfToken == csrf)

            // A wrong TOTP code: auth refuses, the form comes back with its message, the token still works.
            let wrongCode = try await web.request(
                link.path, form: ["csrf_token": csrf, "password": "a good password 1", "password_confirm": "a good password 1", "otp_code": "000000"],
                jar: web.jar)
            #expect([400, 403].contains(wrongCode.status), "\(wrongCode)")
            #expect(wrongCode.body.contains("class=\"error\""))
            #expect(try await web.request(link.path).status == 200)

            let madeUp = try await web.request("/web/newuser/0123456789abcdef0123456789abcdef")
            #expect(madeUp.status == 404, "\(madeUp)")
            #expect(madeUp.body.contains("This invitation is invalid or has expired; ask your administrator for a new one."))
            let madeUpReset = try await web.request("/web/reset/0123456789abcdef0123456789abcdef")
            #expect(madeUpReset.status == 404, "\(madeUpReset)")
            #expect(cluster.log.contains("Fatal error") == false)
        }
    }

    @Test("text from the request is escaped on the page; ping and the landing page still answer; bad login bodies are refused")
    func escapingPingAndBadBodies() async throws {
        try await withCluster(try ClusterFixture(clusterName: "escape.example")) { cluster in
            try await cluster.start()
            let web = WebDriver(cluster: cluster)

            let script = try await web.request("/web/newuser/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
            #expect(script.status == 404, "\(script)")
            #expect(!script.body.contains("<script"), "\(script.body)")
            #expect(script.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "\(script.body)")
            let quoted = try await web.request("/web/reset/%22%3E%3Cimg%20src%3Dx%3E")
            #expect(quoted.status == 404)
            #expect(!quoted.body.contains("<img"), "\(quoted.body)")

            let ping = try await web.request("/webapi/ping")
            #expect(ping.status == 200, "\(ping)")
            let decoded = try ResourceCodec.jsonDecoder().decode(WebAPI.PingResponse.self, from: Data(ping.body.utf8))
            #expect(decoded.clusterName == "escape.example")
            #expect(decoded.auth.secondFactor == "otp")
            let landing = try await web.request("/")
            #expect(landing.status == 200 && landing.body.contains("escape.example"))

            let notJSON = try await web.request(WebAPI.loginPath, raw: "{not json", contentType: "application/json")
            #expect(notJSON.status == 400, "\(notJSON)")
            #expect(try ResourceCodec.jsonDecoder().decode(AuthAPI.ErrorResponse.self, from: Data(notJSON.body.utf8)).error.code == "bad_parameter")
            let missing = try await web.request(WebAPI.loginPath, raw: "{\"user\":\"joe\"}", contentType: "application/json")
            #expect(missing.status == 400, "\(missing)")
            let form = try await web.request(WebAPI.loginPath, raw: "user=joe", contentType: "application/x-www-form-urlencoded")
            #expect(form.status == 415, "\(form)")
            let huge = try await web.request(
                WebAPI.loginPath, raw: "{\"user\":\"" + String(repeating: "a", count: 70 * 1024) + "\"}", contentType: "application/json")
            #expect(huge.status == 413, "\(huge)")
            let hugeForm = try await web.request(
                "/web/newuser/0123456789abcdef0123456789abcdef", raw: "password=" + String(repeating: "a", count: 70 * 1024),
                contentType: "application/x-www-form-urlencoded")
            #expect(hugeForm.status == 413, "\(hugeForm)")
            #expect(try await web.request("/webapi/ping").status == 200, "the proxy still answers")
        }
    }
}

/// A reply as curl saw it.
struct WebReply: CustomStringConvertible {
    var status: Int
    /// Header lines (name lower-cased, value), in order.
    var headers: [(name: String, value: String)]
    var body: String

    func header(_ name: String) -> String? { headers.first { $0.name == name }?.value }

    /// The hidden `csrf_token` field of a form page.
    var csrfToken: String? { capture(#"name="csrf_token" value="([0-9a-f]+)""#) }
    /// The base32 TOTP secret in the otpauth URI.
    var totpSecret: String? { capture(#"secret=([A-Z2-7]+)"#) }

    func capture(_ pattern: String) -> String? {
        guard let regex = try? NSRegularExpression(pattern: pattern),
            let match = regex.firstMatch(in: body, range: NSRange(body.startIndex..., in: body)),
            let range = Range(match.range(at: 1), in: body)
        else { return nil }
        return String(body[range])
    }

    var description: String { "HTTP \(status)\n\(headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n"))\n\n\(body)" }
}

/// Drives the proxy's HTTPS listener with curl (`-k`: its certificate is self-signed).
struct WebDriver {
    let cluster: ClusterFixture
    /// A cookie jar for a browser-like session.
    let jar: URL

    init(cluster: ClusterFixture) {
        self.cluster = cluster
        jar = cluster.directory.appendingPathComponent("cookies-\(UUID().uuidString).txt")
    }

    /// GET `path`, or POST `form` (url-encoded by curl) / `raw` with `contentType`; `jar` reads and
    /// writes cookies, `cookie` sends one literally.
    func request(
        _ path: String, form: [String: String]? = nil, raw: String? = nil, contentType: String? = nil, jar: URL? = nil,
        cookie: String? = nil
    ) async throws -> WebReply {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "curl")
        defer { try? FileManager.default.removeItem(at: directory) }
        let headersURL = directory.appendingPathComponent("headers")
        let bodyURL = directory.appendingPathComponent("body")
        var arguments = ["-s", "-k", "-m", "30", "-D", headersURL.path, "-o", bodyURL.path, "-w", "%{http_code}"]
        if let jar { arguments += ["-b", jar.path, "-c", jar.path] }
        if let cookie { arguments += ["-b", cookie] }
        if let form {
            for (name, value) in form.sorted(by: { $0.key < $1.key }) { arguments += ["--data-urlencode", "\(name)=\(value)"] }
        }
        if let raw {
            let rawURL = directory.appendingPathComponent("raw")
            try TestSupport.write(raw, to: rawURL)
            arguments += ["--data-binary", "@\(rawURL.path)"]
        }
        if let contentType { arguments += ["-H", "Content-Type: \(contentType)"] }
        arguments.append("https://127.0.0.1:\(cluster.webPort)\(path)")
        let result = try await TestSupport.run("/usr/bin/curl", arguments)
        let status = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(status != 0, "curl failed: \(result)")
        let headerText = (try? String(contentsOf: headersURL, encoding: .utf8)) ?? ""
        let headers = headerText.split(separator: "\r\n").dropFirst().compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let body = (try? String(contentsOf: bodyURL, encoding: .utf8)) ?? ""
        #expect(status != 500, "the proxy answered 500 to \(path): \(body)")
        return WebReply(status: status, headers: headers, body: body)
    }

    /// `POST /webapi/ssh/certs` with `request` as JSON.
    func login(_ request: AuthAPI.LoginRequest) async throws -> WebReply {
        let json = String(decoding: try ResourceCodec.json(request), as: UTF8.self)
        return try await self.request(WebAPI.loginPath, raw: json, contentType: "application/json")
    }

    /// Opens `link` in a fresh session, enrols its TOTP secret and submits `password`; expects
    /// the success page with `expecting`.
    func complete(_ link: SignupHelper.Link, password: String, expecting: String) async throws {
        let session = cluster.directory.appendingPathComponent("session-\(UUID().uuidString).txt")
        let page = try await request(link.path, jar: session)
        #expect(page.status == 200, "\(page)")
        let csrf = try #require(page.csrfToken, "\(page.body)")
        var form = ["csrf_token": csrf, "password": password, "password_confirm": password]
        if let secret = page.totpSecret { form["otp_code"] = try TestTOTP.code(base32: secret, time: Date().timeIntervalSince1970) }
        let done = try await request(link.path, form: form, jar: session)
        #expect(done.status == 200, "\(done)")
        #expect(done.body.contains(expecting), "\(done.body)")
    }
}

/// Creates users and reset links: with `tctl users add/reset` when this tctl has them, else
/// straight through the auth API with the admin identity (curl with mutual TLS).
enum SignupHelper {
    /// A signup or reset link.
    struct Link: CustomStringConvertible {
        var path: String
        var description: String { path }
    }

    static func tctlHasUsers(_ cluster: ClusterFixture) async throws -> Bool {
        let help = try await cluster.tctl(["users", "--help"])
        return help.exitCode == 0 && help.stdout.contains("USAGE: tctl users")
    }

    static func addUser(_ cluster: ClusterFixture, name: String, logins: String) async throws -> Link {
        if try await tctlHasUsers(cluster) {
            let result = try await cluster.tctl(["users", "add", name, "--logins=\(logins)"])
            #expect(result.exitCode == 0, "\(result)")
            return try link(in: result.stdout, kind: "newuser")
        }
        let user = User(name: name, roles: ["admin"], logins: logins.split(separator: ",").map(String.init))
        let body = try ResourceCodec.json(AuthAPI.CreateUserRequest(user: user, ttlSeconds: 3600))
        return try await viaAuthAPI(cluster, "/v1/users", body: body, kind: "newuser")
    }

    /// Opens the form of `link`, sets `password` and enrols TOTP with a code for now: the user's
    /// TOTP secret and the time of that code (a later login needs a later step).
    static func enrol(_ web: WebDriver, _ link: Link, password: String) async throws -> (secret: String, time: Date) {
        let page = try await web.request(link.path, jar: web.jar)
        #expect(page.status == 200, "\(page)")
        let secret = try #require(page.totpSecret, "\(page.body)")
        let csrf = try #require(page.csrfToken, "\(page.body)")
        let now = Date()
        let code = try TestTOTP.code(base32: secret, time: now.timeIntervalSince1970)
        let done = try await web.request(
            link.path, form: ["csrf_token": csrf, "password": password, "password_confirm": password, "otp_code": code], jar: web.jar)
        #expect(done.status == 200, "\(done)")
        return (secret, now)
    }

    static func resetUser(_ cluster: ClusterFixture, name: String) async throws -> Link {
        if try await tctlHasUsers(cluster) {
            let result = try await cluster.tctl(["users", "reset", name])
            #expect(result.exitCode == 0, "\(result)")
            return try link(in: result.stdout, kind: "reset")
        }
        return try await viaAuthAPI(cluster, "/v1/users/\(name)/reset", body: try ResourceCodec.json(["ttl_seconds": 3600.0]), kind: "reset")
    }

    /// Everything in the audit log so far.
    static func auditLog(_ cluster: ClusterFixture) throws -> String {
        let directory = cluster.dataDir.appendingPathComponent("log")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.compactMap { try? String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8) }.joined()
    }

    static func link(in output: String, kind: String) throws -> Link {
        let regex = try NSRegularExpression(pattern: "https://[^\\s/]+(/web/\(kind)/[0-9A-Za-z]+)")
        let match = try #require(regex.firstMatch(in: output, range: NSRange(output.startIndex..., in: output)), "no link in: \(output)")
        let range = try #require(Range(match.range(at: 1), in: output))
        return Link(path: String(output[range]))
    }

    static func viaAuthAPI(_ cluster: ClusterFixture, _ path: String, body: Data, kind: String) async throws -> Link {
        let keys = cluster.dataDir.appendingPathComponent("keys")
        let bodyURL = cluster.directory.appendingPathComponent("request-\(UUID().uuidString).json")
        try body.write(to: bodyURL)
        let result = try await TestSupport.run(
            "/usr/bin/curl",
            [
                "-s", "--cert", keys.appendingPathComponent("admin.crt").path, "--key", keys.appendingPathComponent("admin.key").path,
                "--cacert", keys.appendingPathComponent("ca.crt").path, "-H", "Content-Type: application/json",
                "--data-binary", "@\(bodyURL.path)", "https://127.0.0.1:\(cluster.authPort)\(path)",
            ])
        let info = try ResourceCodec.jsonDecoder().decode(AuthAPI.UserTokenInfo.self, from: Data(result.stdout.utf8))
        return Link(path: "/web/\(kind)/\(info.token)")
    }
}

/// Keys for a login request: an Ed25519 SSH key and a P-256 TLS key.
struct LoginKeys {
    let ssh = Curve25519.Signing.PrivateKey()
    let tls = P256.Signing.PrivateKey()

    init() throws {}

    /// A login request for these keys, signed with them (proof of possession, as tsh signs).
    func request(user: String, password: String, otp: String) -> AuthAPI.LoginRequest {
        AuthAPI.LoginRequest(
            user: user, password: password, otpCode: otp, sshPublicKey: SSHPublicKey.ed25519(ssh.publicKey).authorizedKeyLine(),
            tlsPublicKeyPEM: tls.publicKey.pemRepresentation, ttlSeconds: 3600, clientAddress: "203.0.113.9:1",
            keyProof: try? LoginProof.sign(purpose: .login, user: user, sshKey: ssh, tlsKey: tls, now: Date()))
    }
}

/// RFC 6238 TOTP (HMAC-SHA1, 30 s, 6 digits) and RFC 4648 base32, written here independently of
/// the code under test.
enum TestTOTP {
    static func code(secret: [UInt8], time: TimeInterval) -> String {
        var counter = UInt64(time / 30).bigEndian
        let message = withUnsafeBytes(of: &counter) { Array($0) }
        let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
        let offset = Int(mac[19] & 0x0f)
        let value = (UInt32(mac[offset] & 0x7f) << 24 | UInt32(mac[offset + 1]) << 16 | UInt32(mac[offset + 2]) << 8 | UInt32(mac[offset + 3]))
            % 1_000_000
        let text = String(value)
        return String(repeating: "0", count: 6 - text.count) + text
    }

    static func code(base32: String, time: TimeInterval) throws -> String {
        code(secret: try #require(base32Decode(base32), "not base32: \(base32)"), time: time)
    }

    static func base32Decode(_ text: String) -> [UInt8]? {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var bits: UInt32 = 0
        var count = 0
        var output: [UInt8] = []
        for character in text.uppercased() where character != "=" {
            guard let index = alphabet.firstIndex(of: character) else { return nil }
            bits = bits << 5 | UInt32(index)
            count += 5
            if count >= 8 {
                count -= 8
                output.append(UInt8((bits >> UInt32(count)) & 0xff))
            }
        }
        return output
    }
}
