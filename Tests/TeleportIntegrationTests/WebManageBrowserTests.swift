import Foundation
import TeleportTestSupport
import Testing

/// The Management and Account pages in a real browser: Tests/browser/web_manage.py drives
/// Debian's chromium with Playwright against a real cluster (an administrator creates a user and
/// gets the invite link; a second browser context completes it and signs in; that user changes the
/// password on the Account page and signs in with the new one) and saves screenshots to a
/// temporary artifacts directory, printed here. Skipped, with the reason printed, when chromium or
/// the playwright module is missing.
@Suite("web management and account in a browser (Playwright + chromium)", .serialized)
struct WebManageBrowserTests {
    static var script: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("browser").appendingPathComponent("web_manage.py")
    }

    @Test(
        "an administrator creates a user in Management; the invite is completed in a second context; Account changes the password",
        .enabled(if: WebBrowserTests.missing == nil, "needs /usr/bin/chromium and the playwright module (scripts/install-test-deps.sh)"))
    func manageAndAccount() async throws {
        try await withCluster(try ClusterFixture(clusterName: "browser-manage.example")) { cluster in
            try await cluster.start()
            let web = WebDriver(cluster: cluster)
            let link = try await SignupHelper.addUser(cluster, name: "ada", logins: "ada,root")
            let enrolled = try await SignupHelper.enrol(web, link, password: WebSessionTests.password)
            let updated = try await cluster.tctl(["users", "update", "ada", "--set-roles=access,editor"])
            try #require(updated.exitCode == 0, "\(updated)")
            let artifacts = try TestSupport.makeTemporaryDirectory(prefix: "web-manage-screenshots")
            print("WebManageBrowserTests: screenshots in \(artifacts.path)")
            let result = try await TestSupport.runBrowser(
                "/usr/bin/env",
                [
                    "python3", Self.script.path, "--url", "https://127.0.0.1:\(cluster.webPort)", "--user", "ada",
                    "--password", WebSessionTests.password, "--secret", enrolled.secret,
                    "--after", String(enrolled.time.timeIntervalSince1970), "--new-user", "webnew", "--artifacts", artifacts.path,
                ], timeout: .seconds(300))
            print(result.stdout)
            if result.exitCode == 77 {
                print("SKIP WebManageBrowserTests: \(result.stdout)")
                return
            }
            #expect(result.exitCode == 0, "\(result)\n\(cluster.log.suffix(4000))")
            for line in [
                "ok: the invite link is shown", "ok: the invite link was completed in a second browser context",
                "ok: the new user webnew signs in", "ok: the password was changed on the Account page", "ok: the old password is refused",
                "ok: the new password signs in", "ok: Management tells a user without rights so in a sentence",
            ] {
                #expect(result.stdout.contains(line), "\(line): \(result)")
            }
            for name in ["manage-1280.png", "manage-400.png", "account-1280.png", "account-400.png"] {
                #expect(FileManager.default.fileExists(atPath: artifacts.appendingPathComponent(name).path), "\(name) saved")
            }
        }
    }
}
