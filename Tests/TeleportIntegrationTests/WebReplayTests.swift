import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// The web UI's recordings, player and audit log against a real cluster: a real `tsh ssh` session
/// on a joined node first, then curl with session cookies (the JSON routes: who may list and read
/// a recording, 403 and an audit event for someone else's, audit filters by type, user and session,
/// hostile output and commands inert), and a real browser (Tests/browser/web_replay.py).
@Suite("web UI: recordings, player and audit log", .serialized)
struct WebReplayTests {
    static let hostileCommand = "echo '<script>alert(1)</script>'"

    /// A user signed up through the signup page with `roles`.
    static func webUser(_ cluster: ClusterFixture, name: String, logins: String, roles: String) async throws -> WebUser {
        let added = try await cluster.tctl(["users", "add", name, "--logins=\(logins)", "--roles=\(roles)"])
        try #require(added.exitCode == 0, "\(added)")
        let link = try SignupHelper.link(in: added.stdout, kind: "newuser")
        let enrolled = try await SignupHelper.enrol(WebDriver(cluster: cluster), link, password: WebSessionTests.password)
        return WebUser(name: name, secret: enrolled.secret, lastStep: enrolled.time)
    }

    /// Runs a recorded interactive session as `user` on db1 (typing the marker command) and a
    /// hostile exec; returns the session id once the recording is uploaded.
    static func recordSession(_ setup: SSHAccessTests.Setup, user: String, marker: String) async throws -> (sid: String, identity: String) {
        let cluster = setup.cluster
        let identity = cluster.directory.appendingPathComponent("\(user).id").path
        let signed = try await cluster.tctl(["auth", "sign", "--user=\(user)", "--out=\(identity)"])
        try #require(signed.exitCode == 0, "\(signed)")
        let tsh = try ClusterFixture.binary("tsh")
        let session = try TSHTerminal(
            tsh, try RecordingTests.tshArguments(setup, identity: identity) + ["ssh", "-t", "root@db1"],
            environment: ProcessInfo.processInfo.environment.merging(["TERM": "xterm"]) { $1 })
        try await session.expect("# ")
        // The typed text is echoed at once: expect what only the shell's output holds.
        session.sendLine("sleep 2.5; echo \(marker)-$((40+2)); printf '<b>\\033[31mred\\033[0m\\n'")
        try await session.expect("\(marker)-42")
        session.sendLine("exit")
        #expect(try await session.wait() == 0)
        let exec = try await TestSupport.run(tsh, try RecordingTests.tshArguments(setup, identity: identity) + ["ssh", "root@db1", hostileCommand])
        #expect(exec.stdout.contains("<script>alert(1)</script>"), "\(exec)")
        let list = try await RecordingTests.waitForRecording(setup, identity: identity)
        guard case .string(let sid)? = list.first?["sid"] else { throw TestSupportError("no recording listed: \(list)") }
        return (sid, identity)
    }

    struct RecordingPage: Decodable {
        var items: [AuthAPI.RecordingInfo]
        var total: Int
    }

    struct Recording: Decodable {
        struct Frame: Decodable {
            var ms: Int
            var o: Data?
        }
        var header: [String: JSONValue]
        var frames: [Frame]
    }

    static func decode<T: Decodable>(_ type: T.Type, _ reply: WebReply) throws -> T {
        try ResourceCodec.jsonDecoder().decode(T.self, from: Data(reply.body.utf8))
    }

    @Test("list and read one's recordings; another user gets 403 and an audit event; audit filters; hostile text inert", .timeLimit(.minutes(6)))
    func jsonRoutes() async throws {
        try await SSHAccessTests.withSetup { setup in
            let cluster = setup.cluster
            let wendy = try await Self.webUser(cluster, name: "wendy", logins: "root", roles: "access")
            let mallory = try await Self.webUser(cluster, name: "mallory", logins: "mallory", roles: "access")
            let audrey = try await Self.webUser(cluster, name: "audrey", logins: "audrey", roles: "auditor")
            let (sid, _) = try await Self.recordSession(setup, user: "wendy", marker: "replay-marker")

            // The owner: listed (filters applied), readable, the marker in the frames.
            let owner = WebClient(cluster: cluster)
            try #require(try await owner.login(wendy).status == 200)
            let listed = try await owner.send("GET", "/webapi/recordings")
            #expect(listed.status == 200, "\(listed)")
            let page = try Self.decode(RecordingPage.self, listed)
            #expect(page.items.map(\.sid) == [sid] && page.total == 1, "\(listed.body)")
            #expect(try Self.decode(RecordingPage.self, try await owner.send("GET", "/webapi/recordings?node=DB1&user=wen")).items.map(\.sid) == [sid])
            #expect(try Self.decode(RecordingPage.self, try await owner.send("GET", "/webapi/recordings?user=mallory")).items.isEmpty)
            #expect(try Self.decode(RecordingPage.self, try await owner.send("GET", "/webapi/recordings?node=web1")).items.isEmpty)
            #expect(try Self.decode(RecordingPage.self, try await owner.send("GET", "/webapi/recordings?to=2001-01-01")).items.isEmpty)
            let badTime = try await owner.send("GET", "/webapi/recordings?from=yesterday")
            #expect(badTime.status == 400 && badTime.body.contains("is not a date"), "\(badTime)")
            let read = try await owner.send("GET", "/webapi/recordings/\(sid)")
            #expect(read.status == 200, "\(read)")
            #expect(!read.body.contains("<") && !read.body.contains(">") && !read.body.contains("&"), "\(read.body.prefix(300))")
            let recording = try Self.decode(Recording.self, read)
            let output = String(decoding: recording.frames.reduce(into: Data()) { $0.append($1.o ?? Data()) }, as: UTF8.self)
            #expect(output.contains("replay-marker-42") && output.contains("<b>\u{1B}[31mred"), "\(output.debugDescription)")
            #expect(recording.header["user"] == .string("wendy"))
            let player = try await owner.send("GET", "/web/recordings/\(sid)")
            #expect(player.status == 200 && player.body.contains("data-sid=\"\(sid)\"") && player.body.contains("/web/js/player.js"), "\(player)")
            #expect(!player.body.contains("<script>") && !player.body.contains("style=\""))
            WebSessionTests.expectSecurityHeaders(player)
            let list = try await owner.send("GET", "/web/recordings")
            #expect(list.status == 200 && list.body.contains("id=\"recordings-body\""), "\(list)")
            // A plain access user may not read the audit log: a sentence, not a stack.
            let ownerEvents = try await owner.send("GET", "/webapi/audit/events")
            #expect(ownerEvents.status == 403 && ownerEvents.body.contains("may not list event"), "\(ownerEvents)")
            let bad = try await owner.send("GET", "/webapi/recordings/..%2F..%2Fetc%2Fpasswd")
            #expect(bad.status == 400 || bad.status == 404, "\(bad)")

            // Another user without read on session: nothing listed, 403 on the URL, audited.
            let other = WebClient(cluster: cluster)
            try #require(try await other.login(mallory).status == 200)
            #expect(try Self.decode(RecordingPage.self, try await other.send("GET", "/webapi/recordings")).items.isEmpty)
            let denied = try await other.send("GET", "/webapi/recordings/\(sid)")
            #expect(denied.status == 403 && denied.body.contains("may not read the recording"), "\(denied)")
            #expect(!denied.body.contains("replay-marker"))
            let refusals = try await AuditEventsTests.events(cluster, ["--type=session.recording.access"])
            #expect(refusals.contains { $0["code"] == .string("T2012W") && $0["user"] == .string("mallory") && $0["sid"] == .string(sid) }, "\(refusals)")
            #expect(refusals.contains { $0["code"] == .string("T2012I") && $0["user"] == .string("wendy") && $0["sid"] == .string(sid) })
            // Without a session: 401.
            #expect(try await WebClient(cluster: cluster).send("GET", "/webapi/recordings/\(sid)").status == 401)
            #expect(try await WebClient(cluster: cluster).send("GET", "/webapi/audit/events").status == 401)

            // An auditor: reads the recording and the audit log, filtered by type, session and user.
            let auditor = WebClient(cluster: cluster)
            try #require(try await auditor.login(audrey).status == 200)
            #expect(try await auditor.send("GET", "/webapi/recordings/\(sid)").status == 200)
            let sessionEvents = try await auditor.send("GET", "/webapi/audit/events?type=session.start,session.end&sid=\(sid)")
            #expect(sessionEvents.status == 200, "\(sessionEvents)")
            let events = try Self.decode(AuthAPI.EventsPage.self, sessionEvents).events
            #expect(Set(events.compactMap { if case .string(let type)? = $0["event"] { type } else { nil } }) == ["session.start", "session.end"], "\(events)")
            #expect(events.allSatisfy { $0["sid"] == .string(sid) }, "\(events)")
            let execs = try await auditor.send("GET", "/webapi/audit/events?type=exec&user=wendy")
            #expect(execs.status == 200 && !execs.body.contains("<") && execs.body.contains("\\u003cscript\\u003e"), "\(execs)")
            #expect((try JSONSerialization.jsonObject(with: Data(execs.body.utf8))) is [String: Any])
            let execEvents = try Self.decode(AuthAPI.EventsPage.self, execs).events
            #expect(execEvents.contains { $0["command"] == .string(Self.hostileCommand) }, "\(execEvents)")
            #expect(try Self.decode(AuthAPI.EventsPage.self, try await auditor.send("GET", "/webapi/audit/events?type=exec&user=mallory")).events.isEmpty)
            let paged = try Self.decode(AuthAPI.EventsPage.self, try await auditor.send("GET", "/webapi/audit/events?limit=1"))
            #expect(paged.events.count == 1 && paged.nextKey != nil, "\(paged)")
            let audit = try await auditor.send("GET", "/web/audit")
            #expect(audit.status == 200 && audit.body.contains("id=\"events-body\""), "\(audit)")
        }
    }

    static var script: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("browser").appendingPathComponent("web_replay.py")
    }

    @Test(
        "in a browser: the recording listed, played at x8 with the marker on the terminal, seek, speed; the session's audit events",
        .enabled(if: WebBrowserTests.missing == nil, "needs /usr/bin/chromium and the playwright module (scripts/install-test-deps.sh)"),
        .timeLimit(.minutes(6)))
    func browser() async throws {
        try await SSHAccessTests.withSetup { setup in
            let cluster = setup.cluster
            let added = try await cluster.tctl(["users", "add", "wendy", "--logins=root", "--roles=access,auditor"])
            try #require(added.exitCode == 0, "\(added)")
            let link = try SignupHelper.link(in: added.stdout, kind: "newuser")
            let enrolled = try await SignupHelper.enrol(WebDriver(cluster: cluster), link, password: WebSessionTests.password)
            let (sid, _) = try await Self.recordSession(setup, user: "wendy", marker: "replay-marker")
            let artifacts = try TestSupport.makeTemporaryDirectory(prefix: "web-replay-screenshots")
            print("WebReplayTests: screenshots in \(artifacts.path)")
            let result = try await TestSupport.runBrowser(
                "/usr/bin/env",
                [
                    "python3", Self.script.path, "--url", "https://127.0.0.1:\(cluster.webPort)", "--user", "wendy",
                    "--password", WebSessionTests.password, "--secret", enrolled.secret,
                    "--after", String(enrolled.time.timeIntervalSince1970), "--artifacts", artifacts.path,
                    "--sid", sid, "--marker", "replay-marker-42",
                ], timeout: .seconds(180))
            print(result.stdout)
            if result.exitCode == 77 {
                print("SKIP WebReplayTests: \(result.stdout)")
                return
            }
            #expect(result.exitCode == 0, "\(result)\n\(cluster.log.suffix(3000))")
            for line in [
                "ok: the recording is listed", "ok: the player shows replay-marker-42", "ok: seek to the start clears the terminal",
                "ok: speed x0.5 selected", "ok: skip idle time shortens the replay", "ok: the audit log shows session.start and session.end of the session",
            ] {
                #expect(result.stdout.contains(line), "\(line)")
            }
            for name in ["recordings-1280.png", "player-1280.png", "player-400.png", "audit-1280.png"] {
                #expect(FileManager.default.fileExists(atPath: artifacts.appendingPathComponent(name).path), "\(name) saved")
            }
        }
    }
}
