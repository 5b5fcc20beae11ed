import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// The web terminal and joining live sessions in a real browser against a real cluster with a
/// joined node (Tests/browser/web_terminal.py): Connect from the Servers table, `echo $((6*7))`,
/// `stty size` following the window, `top`, an observer from a second browser context, the exit
/// status, the recording; the WebSocket's refusals (foreign Origin, no cookie, logged-out cookie,
/// a login the roles do not allow, unknown node) and a dropped WebSocket ending the SSH session.
@Suite("web UI: terminal and live sessions", .serialized)
struct WebTerminalTests {
    static var script: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("browser").appendingPathComponent("web_terminal.py")
    }

    @Test(
        "in a browser: connect, 42, stty size follows, top, observer joins, exit status, recording; refusals; a dropped WebSocket ends the session",
        .enabled(if: WebBrowserTests.missing == nil, "needs /usr/bin/chromium and the playwright module (scripts/install-test-deps.sh)"),
        .timeLimit(.minutes(8)))
    func browser() async throws {
        try await SSHAccessTests.withSetup { setup in
            let cluster = setup.cluster
            func enrol(_ name: String, roles: String) async throws -> (name: String, secret: String, lastStep: Date) {
                let added = try await cluster.tctl(["users", "add", name, "--logins=root", "--roles=\(roles)"])
                try #require(added.exitCode == 0, "\(added)")
                let link = try SignupHelper.link(in: added.stdout, kind: "newuser")
                let enrolled = try await SignupHelper.enrol(WebDriver(cluster: cluster), link, password: WebSessionTests.password)
                return (name, enrolled.secret, enrolled.time)
            }
            let wendy = try await enrol("wendy", roles: "access")
            let audrey = try await enrol("audrey", roles: "access,auditor")
            let artifacts = try TestSupport.makeTemporaryDirectory(prefix: "web-terminal-screenshots")
            print("WebTerminalTests: screenshots in \(artifacts.path)")
            let result = try await TestSupport.runBrowser(
                "/usr/bin/env",
                [
                    "python3", Self.script.path, "--url", "https://127.0.0.1:\(cluster.webPort)", "--user", wendy.name,
                    "--password", WebSessionTests.password, "--secret", wendy.secret,
                    "--after", String(wendy.lastStep.timeIntervalSince1970), "--artifacts", artifacts.path,
                    "--node", "db1", "--login", "root", "--bad-login", "nobody-here",
                    "--user2", audrey.name, "--secret2", audrey.secret, "--after2", String(audrey.lastStep.timeIntervalSince1970),
                ], timeout: .seconds(420))
            print(result.stdout)
            if result.exitCode == 77 {
                print("SKIP WebTerminalTests: \(result.stdout)")
                return
            }
            #expect(result.exitCode == 0, "\(result)\n\(cluster.log.suffix(3000))")
            for line in [
                "ok: Connect opens a shell in the browser", "ok: echo $((6*7)) prints 42", "ok: stty size follows the terminal's size",
                "ok: resizing the window changes the size", "ok: top runs and quits with q", "ok: the observer sees the typed text",
                "ok: exit 3 shows the exit status", "ok: the recording holds the session's text",
                "ok: a foreign Origin is refused with 4403", "ok: no cookie is refused with 4401",
                "ok: a login the roles do not allow is refused with 4403", "ok: an unknown node is refused with 4404",
                "ok: a logged-out cookie is refused with 4401", "ok: a dropped WebSocket ends the SSH session",
            ] {
                #expect(result.stdout.contains(line), "\(line)")
            }
            // The browser session ran on the node as wendy: started, joined by audrey, ended, and
            // the web terminal's certificates were issued as such.
            let sid = result.stdout.split(separator: "\n").first { $0.hasPrefix("sid: ") }.map { String($0.dropFirst(5)) } ?? ""
            let events = try await AuditEventsTests.events(cluster, ["--type=session.start,session.join,session.end,cert.create,auth"])
            #expect(events.contains { $0["event"] == .string("session.start") && $0["sid"] == .string(sid) && $0["user"] == .string("wendy") }, "\(sid)")
            #expect(events.contains { $0["event"] == .string("session.join") && $0["sid"] == .string(sid) && $0["user"] == .string("audrey") })
            #expect(events.contains { $0["event"] == .string("session.end") && $0["sid"] == .string(sid) })
            #expect(events.contains { $0["event"] == .string("cert.create") && $0["method"] == .string("web_session") && $0["user"] == .string("wendy") })
            // The login the roles do not allow: refused by SSH authentication, audited.
            #expect(
                events.contains { $0["event"] == .string("auth") && $0["success"] == .bool(false) && $0["login"] == .string("nobody-here") },
                "\(events.filter { $0["event"] == .string("auth") })")
            #expect(FileManager.default.fileExists(atPath: artifacts.appendingPathComponent("terminal-1280.png").path), "terminal-1280.png saved")
        }
    }
}
