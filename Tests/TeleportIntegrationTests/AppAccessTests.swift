import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Application access through the proxy's web port: a cluster whose proxy's public address is
/// `localhost`, an application service in its own process that joins with an `app` token and
/// serves a real Python `http.server` echo app (it answers with the headers it received), a user
/// logged in with `tsh login`, the real `curl` with `tsh apps config --format=curl`'s line, and
/// PyJWT verifying the `teleport-jwt-assertion` against the proxy's JWKS.
@Suite("application access: HTTP apps through the proxy", .serialized)
struct AppAccessTests {
    static let token = "app0123456789abcdef0123456789abc"
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static func role(allowed: Bool) -> String {
        """
        kind: role
        version: v5
        metadata:
          name: apps-dev
        spec:
          allow:
            app_labels:
              env: \(allowed ? "dev" : "nowhere")

        """
    }

    /// The echo app: `Fixtures/echo_app.py PORT`, stopped by PID.
    struct EchoApp {
        let pid: pid_t
        let port: UInt16
        let directory: URL

        /// `script`: `echo_app.py` (HTTP) or `ws_echo_app.py` (WebSocket echo and its page).
        static func start(script: String = "echo_app.py") async throws -> EchoApp {
            let directory = try TestSupport.makeTemporaryDirectory(prefix: "echoapp")
            let port = try TestSupport.freeLoopbackPort()
            let pid = try TestSupport.spawnDaemon(
                // `env python3`: the interpreter scripts/install-test-deps.sh installed the PyPI modules for.
                "/usr/bin/env", ["python3", AppAccessTests.fixtures.appendingPathComponent(script).path, "\(port)"],
                logPath: directory.appendingPathComponent("app.log").path)
            let listening = await TestSupport.waitForPort(port)
            if !listening { await TestSupport.stopDaemon(pid) }
            try #require(listening, "the echo app did not listen on \(port)")
            return EchoApp(pid: pid, port: port, directory: directory)
        }

        func stop() async {
            await TestSupport.stopDaemon(pid)
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// The application service's process: `teleport start -c FILE` with only `app_service`.
    struct AppAgent {
        let directory: URL
        let pid: pid_t
        var log: String { (try? TestSupport.read(directory.appendingPathComponent("teleport.log"))) ?? "" }

        /// `extraApps`: more entries of `app_service.apps` (YAML, indented as the list's items).
        static func start(cluster: ClusterFixture, appPort: UInt16, extraApps: String = "") throws -> AppAgent {
            let directory = try TestSupport.makeTemporaryDirectory(prefix: "appagent")
            let port = try TestSupport.freeLoopbackPort()
            let config = """
                version: v3
                teleport:
                  nodename: apphost
                  data_dir: \(directory.appendingPathComponent("data").path)
                  auth_token: \(AppAccessTests.token)
                  auth_servers: [127.0.0.1:\(cluster.authPort)]
                  log:
                    severity: DEBUG
                auth_service:
                  enabled: false
                proxy_service:
                  enabled: false
                ssh_service:
                  enabled: false
                app_service:
                  enabled: true
                  listen_addr: 127.0.0.1:\(port)
                  apps:
                  - name: echo
                    description: Echo app
                    uri: http://127.0.0.1:\(appPort)
                    labels:
                      env: dev
                  - name: other
                    description: The same app under another name
                    uri: http://127.0.0.1:\(appPort)
                    labels:
                      env: dev

                """ + extraApps
            let file = directory.appendingPathComponent("teleport.yaml")
            try TestSupport.write(config, to: file)
            let pid = try TestSupport.spawnDaemon(
                try ClusterFixture.binary("teleport"), ["start", "-c", file.path],
                logPath: directory.appendingPathComponent("teleport.log").path)
            return AppAgent(directory: directory, pid: pid)
        }

        func stop() async {
            await TestSupport.stopDaemon(pid)
            try? FileManager.default.removeItem(at: directory)
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func curlThroughTheProxy() async throws {
        let cluster = try ClusterFixture(
            clusterName: "apps.example", authSection: "  tokens: [\"app:\(Self.token)\"]", proxySection: "  public_addr: localhost")
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            let app = try await EchoApp.start()
            let agent: AppAgent
            do {
                agent = try AppAgent.start(cluster: cluster, appPort: app.port)
            } catch {
                await app.stop()
                throw error
            }
            do {
                try await exercise(cluster, app: app, agent: agent)
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

    /// Runs a shell line (tsh's curl line plus test options) and returns its output.
    static func shell(_ line: String) async throws -> CommandResult {
        try await TestSupport.run("/bin/sh", ["-c", line], timeout: .seconds(60))
    }

    /// The headers the echo app received, from its JSON answer.
    static func received(_ text: String) -> [String: [String]] {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            Issue.record("the echo app's answer is not JSON: \(text.prefix(2000))")
            return [:]
        }
        let pairs = object["headers"] as? [[String]] ?? []
        var headers: [String: [String]] = [:]
        for pair in pairs where pair.count == 2 { headers[pair[0].lowercased(), default: []].append(pair[1]) }
        return headers
    }

    func exercise(_ cluster: ClusterFixture, app: EchoApp, agent: AppAgent) async throws {
        let dir = try TestSupport.makeTemporaryDirectory(prefix: "apps")
        defer { try? FileManager.default.removeItem(at: dir) }
        let rolesFile = dir.appendingPathComponent("roles.yaml")
        try TestSupport.write(Self.role(allowed: true), to: rolesFile)
        let created = try await cluster.tctl(["create", rolesFile.path])
        try #require(created.exitCode == 0, "\(created)")
        let added = try await cluster.tctl(["users", "add", "bob", "--roles=apps-dev"])
        try #require(added.exitCode == 0, "\(added)")
        let enrolled = try await SignupHelper.enrol(
            WebDriver(cluster: cluster), try SignupHelper.link(in: added.stdout, kind: "newuser"), password: TSHLoginTests.password)
        var codes = TSHCodes(secret: enrolled.secret, usedAt: enrolled.time)
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        let login = try await TSHLoginTests.login(
            tsh, ["--proxy=localhost:\(cluster.webPort)", "--user=bob", "--insecure"], user: "bob", password: TSHLoginTests.password,
            code: try await codes.next())
        try #require(login.status == 0, "\(login.transcript)")

        // The application service joined with its token and heartbeats both apps.
        var listed = try await tsh.run(["apps", "ls"])
        for _ in 0..<60 where !(listed.stdout.contains("echo ") && listed.stdout.contains("other ")) {
            try await Task.sleep(for: .milliseconds(500))
            listed = try await tsh.run(["apps", "ls"])
        }
        #expect(listed.exitCode == 0 && listed.stdout.contains("Echo app") && listed.stdout.contains("echo.localhost"), "\(listed)\n\(agent.log)")
        #expect(listed.stdout.contains("env=dev"), "\(listed)")
        let record = try await cluster.tctl(["get", "app_server/echo", "--format=json"])
        #expect(record.stdout.contains("\"public_addr\" : \"echo.localhost\""), "\(record)")

        // No certificate: 401 naming the command to run (audited by the proxy).
        let base = "https://echo.localhost:\(cluster.webPort)"
        let anonymous = try await Self.shell("curl -sk -w '\\n%{http_code}' \(base)/")
        #expect(anonymous.stdout.hasSuffix("401") && anonymous.stdout.contains("tsh apps login echo"), "\(anonymous)")
        // The login certificate carries no app route.
        let keys = tsh.tshHome.appendingPathComponent("keys/localhost")
        let plain = try await Self.shell(
            "curl -sk -w '\\n%{http_code}' --cert \(keys.path)/bob-x509.pem --key \(keys.path)/bob.tls.key \(base)/")
        #expect(plain.stdout.hasSuffix("403") && plain.stdout.contains("no app route"), "\(plain)")

        // tsh apps login, then curl exactly as tsh apps config prints it, with spoofed headers.
        let appLogin = try await tsh.run(["apps", "login", "echo"])
        try #require(appLogin.exitCode == 0, "\(appLogin)")
        let config = try await tsh.run(["apps", "config", "echo", "--format=curl"])
        try #require(config.exitCode == 0, "\(config)")
        let curl = config.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(curl.hasPrefix("curl ") && curl.hasSuffix("\(base)/"), "\(curl)")
        let uri = try await tsh.run(["apps", "config", "echo", "--format=uri"])
        #expect(uri.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(base)/", "\(uri)")
        let fetched = try await Self.shell(
            "\(curl) -sS -H 'teleport-jwt-assertion: forged.token.here' -H 'X-Forwarded-For: 6.6.6.6' -H 'X-Teleport-User: root'")
        try #require(fetched.exitCode == 0, "\(fetched)\n\(agent.log)")
        let headers = Self.received(fetched.stdout)
        #expect(headers["x-forwarded-for"] == ["127.0.0.1"], "\(headers)")
        #expect(headers["x-forwarded-proto"] == ["https"] && headers["x-forwarded-host"] == ["echo.localhost:\(cluster.webPort)"], "\(headers)")
        #expect(headers["x-teleport-user"] == nil, "\(headers)")
        let assertions = headers["teleport-jwt-assertion"] ?? []
        #expect(assertions.count == 1 && assertions.first != "forged.token.here", "\(headers)")

        // PyJWT verifies the assertion against the published JWKS; the claims carry the user.
        let jwksFile = dir.appendingPathComponent("jwks.json")
        let jwks = try await Self.shell("curl -sSk https://localhost:\(cluster.webPort)/.well-known/jwks.json -o \(jwksFile.path)")
        try #require(jwks.exitCode == 0, "\(jwks)")
        let verified = try await TestSupport.run(
            "/usr/bin/python3",
            [Self.fixtures.appendingPathComponent("verify_jwt.py").path, jwksFile.path, assertions.first ?? "", "http://127.0.0.1:\(app.port)",
             "apps.example"])
        #expect(verified.exitCode == 0, "\(verified)")
        let claims = (try? JSONSerialization.jsonObject(with: Data(verified.stdout.utf8))) as? [String: Any] ?? [:]
        #expect(claims["username"] as? String == "bob" && claims["roles"] as? [String] == ["apps-dev"], "\(verified.stdout)")
        let now = Date().timeIntervalSince1970
        if let exp = claims["exp"] as? Double, let iat = claims["iat"] as? Double {
            #expect(iat <= now + 5 && exp > now && exp <= now + 12 * 3600 + 60, "\(claims)")
        } else {
            Issue.record("no exp/iat in \(verified.stdout)")
        }
        // A tampered token does not verify.
        let forgedToken = (assertions.first ?? "") + "x"
        let forged = try await TestSupport.run(
            "/usr/bin/python3",
            [Self.fixtures.appendingPathComponent("verify_jwt.py").path, jwksFile.path, forgedToken, "http://127.0.0.1:\(app.port)", "apps.example"])
        #expect(forged.exitCode != 0, "\(forged)")

        // Redirects to the internal address come back as the public one; a 5 MB upload streams through.
        func at(_ path: String) -> String { curl.replacingOccurrences(of: "\(base)/", with: "\(base)\(path)") }
        let redirect = try await Self.shell("\(at("/redirect")) -sS -o /dev/null -w '%{http_code} %{redirect_url}'")
        #expect(redirect.stdout == "302 https://echo.localhost:\(cluster.webPort)/landing?x=1", "\(redirect)")
        let upload = dir.appendingPathComponent("upload.bin")
        try Data(count: 5 << 20).write(to: upload)
        let posted = try await Self.shell("\(at("/upload")) -sS --data-binary @\(upload.path)")
        #expect(posted.stdout.contains("\"received\": \(5 << 20)"), "\(posted)")

        // tsh proxy app: a plain-HTTP listener on a fixed local port that adds the certificate.
        let localPort = try TestSupport.freeLoopbackPort()
        let proxyLog = dir.appendingPathComponent("proxy-app.log")
        let localProxy = try TestSupport.spawnDaemon(
            try ClusterFixture.binary("tsh"), ["proxy", "app", "echo", "--port", "\(localPort)"], logPath: proxyLog.path,
            environment: tsh.environment)
        let localListening = await TestSupport.waitForPort(localPort)
        if localListening {
            let local = try await Self.shell("curl -sS http://127.0.0.1:\(localPort)/local -H 'X-Forwarded-For: 6.6.6.6'")
            let localHeaders = Self.received(local.stdout)
            #expect(localHeaders["x-forwarded-for"] == ["127.0.0.1"] && localHeaders["teleport-jwt-assertion"]?.count == 1, "\(local)")
            #expect(localHeaders["x-forwarded-host"] == ["echo.localhost:\(cluster.webPort)"], "\(local)")
            let localRedirect = try await Self.shell("curl -sS -o /dev/null -w '%{redirect_url}' http://127.0.0.1:\(localPort)/redirect")
            #expect(localRedirect.stdout == "http://127.0.0.1:\(localPort)/landing?x=1", "\(localRedirect)")
        }
        await TestSupport.stopDaemon(localProxy)
        #expect(localListening, "tsh proxy app did not listen: \((try? TestSupport.read(proxyLog)) ?? "")")
        #expect(((try? TestSupport.read(proxyLog)) ?? "").contains("Proxying connections to echo on 127.0.0.1:\(localPort)"))

        // Another app's route, or a Host header naming another app: refused.
        let otherLogin = try await tsh.run(["apps", "login", "other"])
        try #require(otherLogin.exitCode == 0, "\(otherLogin)")
        let otherCurl = try await tsh.run(["apps", "config", "other", "--format=curl"])
        let otherLine = otherCurl.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "https://other.localhost", with: "https://echo.localhost")
        let crossed = try await Self.shell("\(otherLine) -sS -w '\\n%{http_code}'")
        #expect(crossed.stdout.hasSuffix("403") && crossed.stdout.contains("is for app other, not echo"), "\(crossed)")
        let hostSwap = try await Self.shell("\(curl) -sS -w '\\n%{http_code}' -H 'Host: other.localhost:\(cluster.webPort)'")
        #expect(hostSwap.stdout.hasSuffix("403") && hostSwap.stdout.contains("does not name app echo"), "\(hostSwap)")

        // Request smuggling: Content-Length with Transfer-Encoding is refused (400) and nothing
        // behind it reaches the app.
        let appKeys = keys.appendingPathComponent("bob-app")
        let smuggle = """
            import socket, ssl, sys
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.load_cert_chain(sys.argv[1], sys.argv[2])
            s = context.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[3])), timeout=20), server_hostname="echo.localhost")
            host = "echo.localhost:" + sys.argv[3]
            s.sendall(("POST / HTTP/1.1\\r\\nHost: " + host + "\\r\\nContent-Length: 4\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n"
                       "0\\r\\n\\r\\nGET /smuggled HTTP/1.1\\r\\nHost: " + host + "\\r\\n\\r\\n").encode())
            data = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (ConnectionError, ssl.SSLError, socket.timeout):
                    break
                if not chunk:
                    break
                data += chunk
            sys.stdout.write(data.decode("utf-8", "replace"))
            """
        let smuggled = try await TestSupport.run(
            "/usr/bin/python3",
            ["-c", smuggle, appKeys.appendingPathComponent("echo-x509.pem").path, keys.appendingPathComponent("bob.tls.key").path, "\(cluster.webPort)"])
        #expect(smuggled.stdout.hasPrefix("HTTP/1.1 400") && !smuggled.stdout.contains("smuggled"), "\(smuggled)")

        // tctl makes tokens for application services.
        let appToken = try await cluster.tctl(["tokens", "add", "--type=app"])
        #expect(appToken.exitCode == 0, "\(appToken)")

        // The role loses the app: the next connection is refused with the reason (roles as they are now).
        try TestSupport.write(Self.role(allowed: false), to: rolesFile)
        let updated = try await cluster.tctl(["create", "-f", rolesFile.path])
        try #require(updated.exitCode == 0, "\(updated)")
        var denied = try await Self.shell("\(curl) -sS -w '\\n%{http_code}'")
        for _ in 0..<40 where !denied.stdout.hasSuffix("403") {
            try await Task.sleep(for: .milliseconds(500))
            denied = try await Self.shell("\(curl) -sS -w '\\n%{http_code}'")
        }
        #expect(denied.stdout.hasSuffix("403") && denied.stdout.contains("access to app echo denied"), "\(denied)")
        let appsNow = try await tsh.run(["apps", "ls"])
        #expect(!appsNow.stdout.contains("echo "), "\(appsNow)")

        // The audit log: the session's start, its requests (method, path, status; no bodies or
        // headers), its end, and the refusals.
        let lines = try await DatabaseAccessPostgresTests.auditLines(cluster) { lines in
            lines.contains { $0.contains("\"app.session.request\"") && $0.contains("\"path\":\"\\/upload\"") }
                && lines.contains { $0.contains("\"app.session.end\"") }
                && lines.contains { $0.contains("\"TAP00W\"") && $0.contains("access to app echo denied") }
        }
        let request = lines.first { $0.contains("\"app.session.request\"") && $0.contains("\"method\":\"POST\"") }
        #expect(request != nil, "\(lines.filter { $0.contains("app.session") })")
        if let request {
            for field in ["\"app_name\":\"echo\"", "\"user\":\"bob\"", "\"status_code\":200", "\"app_public_addr\":\"echo.localhost\""] {
                #expect(request.contains(field), "\(field) in \(request)")
            }
            #expect(!request.contains("forged") && !request.contains("Cookie"), "\(request)")
        }
        #expect(lines.contains { $0.contains("\"TAP00I\"") && $0.contains("\"user\":\"bob\"") })
        #expect(lines.contains { $0.contains("\"TAP00W\"") && $0.contains("no app route") })

        // tsh apps logout removes the certificate; config then says how to log in.
        let logout = try await tsh.run(["apps", "logout"])
        #expect(logout.exitCode == 0 && logout.stdout.contains("Logged out of app echo"), "\(logout)")
        let after = try await tsh.run(["apps", "config", "echo"])
        #expect(after.exitCode != 0 && after.stderr.contains("tsh apps login echo"), "\(after)")
    }
}
