import Foundation
import TeleportTestSupport
import Testing

/// An app launched from the web UI in a real browser: Tests/browser/web_apps.py drives Debian's
/// chromium with Playwright (sign in, Applications, Launch, the echo app's page, the JWT verified
/// with PyJWT against the JWKS, logout ends the app session). Skipped, with the reason printed,
/// when chromium or the playwright module is missing.
@Suite("apps in a browser (Playwright + chromium)", .serialized)
struct WebAppsBrowserTests {
    static var script: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("browser").appendingPathComponent("web_apps.py")
    }

    @Test(
        "launch the echo app from /web/apps and see its page with the user from the JWT",
        .enabled(if: WebBrowserTests.missing == nil, "needs /usr/bin/chromium and the playwright module (scripts/install-test-deps.sh)"),
        .timeLimit(.minutes(3)))
    func launchFromTheWebUI() async throws {
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
                try await run(cluster, app: app)
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

    @Test(
        "a WebSocket round trip in chromium after launching the app from /web/apps",
        .enabled(if: WebBrowserTests.missing == nil, "needs /usr/bin/chromium and the playwright module (scripts/install-test-deps.sh)"),
        .timeLimit(.minutes(3)))
    func webSocketAfterLaunch() async throws {
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
                try await run(cluster, app: app, webSocket: true)
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

    func run(_ cluster: ClusterFixture, app: AppAccessTests.EchoApp, webSocket: Bool = false) async throws {
        let rolesFile = cluster.directory.appendingPathComponent("roles.yaml")
        try TestSupport.write(AppAccessTests.role(allowed: true), to: rolesFile)
        let created = try await cluster.tctl(["create", rolesFile.path])
        try #require(created.exitCode == 0, "\(created)")
        let added = try await cluster.tctl(["users", "add", "bob", "--roles=apps-dev"])
        try #require(added.exitCode == 0, "\(added)")
        let web = WebDriver(cluster: cluster)
        let enrolled = try await SignupHelper.enrol(web, try SignupHelper.link(in: added.stdout, kind: "newuser"), password: WebSessionTests.password)
        // Wait for the application service's heartbeat.
        var listed = try await cluster.tctl(["get", "apps"])
        for _ in 0..<60 where !listed.stdout.contains("name: echo") {
            try await Task.sleep(for: .milliseconds(500))
            listed = try await cluster.tctl(["get", "apps"])
        }
        #expect(listed.stdout.contains("name: echo"), "\(listed)")
        let artifacts = try TestSupport.makeTemporaryDirectory(prefix: "web-apps-screenshots")
        print("WebAppsBrowserTests: screenshots in \(artifacts.path)")
        let script = webSocket ? Self.script.deletingLastPathComponent().appendingPathComponent("web_apps_ws.py") : Self.script
        let extra = webSocket ? ["--app", "echo"] : ["--app", "echo", "--audience", "http://127.0.0.1:\(app.port)", "--cluster", "apps.example"]
        let result = try await TestSupport.runBrowser(
            "/usr/bin/env",
            [
                "python3", script.path, "--url", "https://localhost:\(cluster.webPort)", "--user", "bob",
                "--password", WebSessionTests.password, "--secret", enrolled.secret,
                "--after", String(enrolled.time.timeIntervalSince1970), "--artifacts", artifacts.path,
            ] + extra, timeout: .seconds(120))
        print(result.stdout)
        if result.exitCode == 77 {
            print("SKIP WebAppsBrowserTests: \(result.stdout)")
            return
        }
        #expect(result.exitCode == 0, "\(result)\n\(cluster.log.suffix(4000))")
        let expected =
            webSocket
            ? [
                "ok: chromium's WebSocket round trip through the proxy", "ok: the app saw the WebSocket handshake",
                "ok: the handshake carries the JWT assertion", "ok: the app session cookie is not forwarded",
                "ok: after logout a WebSocket to the app is refused",
            ]
            : [
            "ok: /web/apps lists echo", "ok: the echo app's page is shown", "ok: the app's JWT verifies and names bob",
            "ok: after logout the app origin sends the browser to the login page",
            ]
        for line in expected {
            #expect(result.stdout.contains(line), "\(line) in \(result)")
        }
    }
}
