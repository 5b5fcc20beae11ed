import Foundation
import TeleportTestSupport
import Testing

/// WebSockets through application access with the app certificate: the real Python `websockets`
/// client (`Fixtures/ws_client.py`) against a real `websockets` echo server
/// (`Fixtures/ws_echo_app.py`) behind an application service in its own process. The upgrade
/// goes through the proxy and the service with the JWT assertion added and spoofed headers
/// stripped; after the 101 both directions stream (a 4 MiB binary message, 200 messages in a
/// row). Refused: no certificate (401), another app's certificate (403); a plain request to the
/// app's WebSocket path gets the app's own refusal. (The browser's cookie path, with chromium,
/// is in `WebAppsBrowserTests`.)
@Suite("application access: WebSockets", .serialized)
struct AppWebSocketTests {
    @Test(.timeLimit(.minutes(5)))
    func webSocketWithTheAppCertificate() async throws {
        let cluster = try ClusterFixture(
            clusterName: "apps.example", authSection: "  tokens: [\"app:\(AppAccessTests.token)\"]", proxySection: "  public_addr: localhost")
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            let app = try await AppAccessTests.EchoApp.start(script: "ws_echo_app.py")
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

    static func client(_ arguments: [String]) async throws -> CommandResult {
        try await TestSupport.run(
            "/usr/bin/env", ["python3", AppAccessTests.fixtures.appendingPathComponent("ws_client.py").path] + arguments, timeout: .seconds(120))
    }

    func exercise(_ cluster: ClusterFixture, app: AppAccessTests.EchoApp) async throws {
        let dir = try TestSupport.makeTemporaryDirectory(prefix: "apps-ws")
        defer { try? FileManager.default.removeItem(at: dir) }
        let rolesFile = dir.appendingPathComponent("roles.yaml")
        try TestSupport.write(AppAccessTests.role(allowed: true), to: rolesFile)
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
        var listed = try await tsh.run(["apps", "ls"])
        for _ in 0..<60 where !(listed.stdout.contains("echo ") && listed.stdout.contains("other ")) {
            try await Task.sleep(for: .milliseconds(500))
            listed = try await tsh.run(["apps", "ls"])
        }
        try #require(listed.stdout.contains("echo "), "\(listed)")

        let url = "wss://echo.localhost:\(cluster.webPort)/ws"
        // Without a certificate (and without a cookie): refused before anything reaches the app.
        let anonymous = try await Self.client([url])
        #expect(anonymous.exitCode == 2 && anonymous.stdout.contains("status: 401"), "\(anonymous)")

        let appLogin = try await tsh.run(["apps", "login", "echo"])
        try #require(appLogin.exitCode == 0, "\(appLogin)")
        let keys = tsh.tshHome.appendingPathComponent("keys/localhost")
        let certificate = keys.appendingPathComponent("bob-app/echo-x509.pem").path
        let key = keys.appendingPathComponent("bob.tls.key").path
        let result = try await Self.client([
            url, "--cert", certificate, "--key", key, "--header", "X-Forwarded-For: 6.6.6.6", "--header", "teleport-jwt-assertion: forged.token",
            "--header", "X-Teleport-User: root",
        ])
        print(result.stdout.split(separator: "\n").filter { $0.hasPrefix("timing") || $0.hasPrefix("ok") }.joined(separator: "\n"))
        #expect(result.exitCode == 0, "\(result)")
        for line in ["ok: text round trip", "ok: 4 MiB binary round trip", "ok: 200 messages in order"] {
            #expect(result.stdout.contains(line), "\(line) in \(result)")
        }
        // The handshake the app received: the assertion added once, spoofed headers replaced.
        let hello = result.stdout.split(separator: "\n").first { $0.hasPrefix("hello: ") }.map { String($0.dropFirst(7)) } ?? ""
        let headers = AppAccessTests.received(hello)
        #expect(headers["x-forwarded-for"] == ["127.0.0.1"] && headers["x-teleport-user"] == nil, "\(headers)")
        #expect(headers["teleport-jwt-assertion"]?.count == 1 && headers["teleport-jwt-assertion"]?.first != "forged.token", "\(headers)")
        #expect(headers["upgrade"] == ["websocket"] && headers["host"] == ["127.0.0.1:\(app.port)"], "\(headers)")
        #expect(headers["sec-websocket-key"]?.count == 1, "\(headers)")

        // Another app's certificate is refused at the proxy.
        let otherLogin = try await tsh.run(["apps", "login", "other"])
        try #require(otherLogin.exitCode == 0, "\(otherLogin)")
        let crossed = try await Self.client([
            url, "--cert", keys.appendingPathComponent("bob-app/other-x509.pem").path, "--key", key,
        ])
        #expect(crossed.exitCode == 2 && crossed.stdout.contains("status: 403") && crossed.stdout.contains("is for app other"), "\(crossed)")

        // A plain GET of the WebSocket path reaches the app, whose refusal comes back.
        let plain = try await AppAccessTests.shell(
            "curl -sk --cert \(certificate) --key \(key) -w '\\n%{http_code}' https://echo.localhost:\(cluster.webPort)/ws --resolve echo.localhost:\(cluster.webPort):127.0.0.1")
        #expect(plain.stdout.hasSuffix("426"), "\(plain)")

        // The audit log has the upgrade as a request with status 101.
        let lines = try await DatabaseAccessPostgresTests.auditLines(cluster) { lines in
            lines.contains { $0.contains("\"app.session.request\"") && $0.contains("\"status_code\":101") }
        }
        let upgrades = lines.filter { $0.contains("\"app.session.request\"") && $0.contains("\"status_code\":101") }
        #expect(upgrades.contains { $0.contains("/ws\"") && $0.contains("\"user\":\"bob\"") }, "\(lines.filter { $0.contains("app.session") })")
    }
}
