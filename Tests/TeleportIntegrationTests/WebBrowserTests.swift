import Foundation
import TeleportTestSupport
import Testing

/// The web UI in a real browser: Tests/browser/web_login.py drives Debian's chromium with
/// Playwright against a real cluster (log in with password + TOTP, "Signed in as", the servers page
/// filtered by a label chip, log out, the
/// old cookie refused) and saves screenshots to a temporary artifacts directory, printed here.
/// Skipped, with the reason printed, when chromium or the playwright module is missing.
@Suite("web UI in a browser (Playwright + chromium)", .serialized)
struct WebBrowserTests {
    /// Why the browser test cannot run here (printed once), or nil.
    static let missing: String? = {
        let reason = probe()
        if let reason { print("SKIP WebBrowserTests: \(reason)") }
        return reason
    }()

    static func probe() -> String? {
        if !FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") {
            return "/usr/bin/chromium is missing (scripts/install-test-deps.sh installs Debian's chromium)"
        }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import playwright.sync_api"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        do {
            try probe.run()
            probe.waitUntilExit()
        } catch {
            return "python3 cannot be started: \(error)"
        }
        return probe.terminationStatus == 0 ? nil : "the playwright Python module is missing (scripts/install-test-deps.sh: pip install playwright)"
    }

    static var script: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("browser").appendingPathComponent("web_login.py")
    }

    @Test(
        "log in through the page with password + TOTP, see 'Signed in as', log out; screenshots saved",
        .enabled(if: WebBrowserTests.missing == nil, "needs /usr/bin/chromium and the playwright module (scripts/install-test-deps.sh)"))
    func loginLogout() async throws {
        try await withCluster(try ClusterFixture(clusterName: "browser.example")) { cluster in
            try await cluster.start()
            let web = WebDriver(cluster: cluster)
            let link = try await SignupHelper.addUser(cluster, name: "erin", logins: "erin,root")
            let enrolled = try await SignupHelper.enrol(web, link, password: WebSessionTests.password)
            // Two servers for the resources page: the chip env=dev must hide the prod one; a
            // hostile label value must stay text.
            for (index, (name, env)) in [("browser-dev", "dev"), ("browser-prod", "prod")].enumerated() {
                let file = cluster.directory.appendingPathComponent("node-\(name).yaml")
                try TestSupport.write(
                    WebNodesTests.nodeYAML(
                        name, uuid: "5a1e0c3d-0000-4000-8000-00000000000\(index)", port: 41000 + index,
                        labels: ["env": env, "note": WebNodesTests.hostile]), to: file)
                let created = try await cluster.tctl(["create", file.path])
                try #require(created.exitCode == 0, "\(created)")
            }
            let artifacts = try TestSupport.makeTemporaryDirectory(prefix: "web-ui-screenshots")
            print("WebBrowserTests: screenshots in \(artifacts.path)")
            let result = try await TestSupport.runBrowser(
                "/usr/bin/env",
                [
                    "python3", Self.script.path, "--url", "https://127.0.0.1:\(cluster.webPort)", "--user", "erin",
                    "--password", WebSessionTests.password, "--secret", enrolled.secret,
                    "--after", String(enrolled.time.timeIntervalSince1970), "--artifacts", artifacts.path,
                    "--node", "browser-dev", "--other-node", "browser-prod", "--chip", "env=dev",
                ], timeout: .seconds(120))
            print(result.stdout)
            if result.exitCode == 77 {
                print("SKIP WebBrowserTests: \(result.stdout)")
                return
            }
            #expect(result.exitCode == 0, "\(result)\n\(cluster.log.suffix(4000))")
            #expect(result.stdout.contains("ok: signed in as erin"), "\(result)")
            #expect(result.stdout.contains("ok: the old cookie is refused after logout"), "\(result)")
            #expect(result.stdout.contains("ok: /web/nodes lists browser-dev"), "\(result)")
            #expect(result.stdout.contains("ok: the label chip env=dev filters the list"), "\(result)")
            for name in ["login-1280.png", "login-400.png", "home-1280.png", "home-400.png", "nodes-1280.png", "nodes-400.png"] {
                #expect(FileManager.default.fileExists(atPath: artifacts.appendingPathComponent(name).path), "\(name) saved")
            }
        }
    }
}
