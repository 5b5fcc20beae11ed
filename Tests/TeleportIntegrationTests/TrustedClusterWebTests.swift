import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// Trusted clusters in the web UI (issue 20) with two real `teleport` processes: the root's proxy
/// serves `GET /webapi/sites` (root and leaves, with status) and `GET /webapi/sites/LEAF/nodes` to
/// a session cookie, and the web terminal on a leaf's node (`cluster=LEAF`). curl checks the routes
/// and their refusals (no cookie, an unknown leaf, the root's own name, a user whose roles map to
/// nothing, refused and audited on the leaf, a foreign Origin, a cookie on tsh's POST); chromium
/// (Tests/browser/web_leaf.py) chooses the leaf in the cluster selector, connects to its node,
/// joins that session as observer from Active sessions with the leaf chosen, and the leaf's audit
/// log holds that session (and the join) with the root user's name and cluster.
@Suite("trusted clusters: the web UI's cluster selector and a leaf's terminal (two real clusters)", .serialized)
struct TrustedClusterWebIntegrationTests {
    typealias Base = TrustedClusterIntegrationTests

    static var script: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("browser").appendingPathComponent("web_leaf.py")
    }

    @Test("/webapi/sites and a leaf's nodes for a cookie; refusals; the selector and a leaf terminal in chromium", .timeLimit(.minutes(8)))
    func webLeaf() async throws {
        let root = try ClusterFixture(clusterName: "root.example")
        let leaf = try ClusterFixture(clusterName: "leaf.example")
        do {
            try await run(root: root, leaf: leaf)
        } catch {
            TrustedClusterAccessIntegrationTests.recordCrash(root, "root")
            TrustedClusterAccessIntegrationTests.recordCrash(leaf, "leaf")
            await root.cleanUp()
            await leaf.cleanUp()
            throw error
        }
        TrustedClusterAccessIntegrationTests.recordCrash(root, "root")
        TrustedClusterAccessIntegrationTests.recordCrash(leaf, "leaf")
        await root.cleanUp()
        await leaf.cleanUp()
    }

    /// Polls `body` until it returns true, up to `seconds`.
    func eventually(_ seconds: Int = 60, _ body: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await body() { return true }
            try await Task.sleep(for: .milliseconds(500))
        }
        return false
    }

    /// A root user with `roles` and the login `root`, signed up with password + TOTP.
    func webUser(_ root: ClusterFixture, _ name: String, roles: String) async throws -> (user: WebUser, enrolled: Date) {
        let added = try await root.tctl(["users", "add", name, "--logins=root", "--roles=\(roles)"])
        try #require(added.exitCode == 0, "\(added)")
        let link = try SignupHelper.link(in: added.stdout, kind: "newuser")
        let enrolled = try await SignupHelper.enrol(WebDriver(cluster: root), link, password: WebSessionTests.password)
        return (WebUser(name: name, secret: enrolled.secret, lastStep: enrolled.time), enrolled.time)
    }

    func run(root: ClusterFixture, leaf: ClusterFixture) async throws {
        try await root.start()
        try await leaf.start()
        let base = Base()
        let added = try await root.tctl(["tokens", "add", "--type=trusted_cluster", "--ttl=15m"])
        let value = try base.token(from: added.stdout)
        let created = try await leaf.tctl(
            ["create", try base.write(Base.trustYAML(token: value, webProxy: "127.0.0.1:\(root.webPort)"), "tc.yaml", in: leaf)])
        try #require(created.exitCode == 0, "\(created)\n\(leaf.log.suffix(3000))")
        try #require(try await eventually { try await root.tctl(["get", "rc"]).stdout.contains("connection: online") }, "\(root.log.suffix(3000))")

        // jim and joe (access → access on the leaf), ann (editor: the role map gives nothing).
        let jim = try await webUser(root, "jim", roles: "access").user
        let ann = try await webUser(root, "ann", roles: "editor").user
        let joe = try await webUser(root, "joe", roles: "access")

        let anonymous = WebClient(cluster: root)
        let noCookie = try await anonymous.send("GET", "/webapi/sites")
        #expect(noCookie.status == 401, "\(noCookie)")
        let noCookieNodes = try await anonymous.send("GET", "/webapi/sites/leaf.example/nodes")
        #expect(noCookieNodes.status == 401, "\(noCookieNodes)")

        let web = WebClient(cluster: root)
        let login = try await web.login(jim)
        try #require(login.status == 200, "\(login)")
        let sites = try await web.send("GET", "/webapi/sites")
        #expect(sites.status == 200, "\(sites)")
        let entries = try ResourceCodec.jsonDecoder().decode([WebAPI.ClusterEntry].self, from: Data(sites.body.utf8))
        #expect(entries.map(\.name) == ["root.example", "leaf.example"], "\(sites.body)")
        #expect(entries.map(\.status) == ["online", "online"] && entries.map(\.type) == ["root", "leaf"], "\(sites.body)")

        // The leaf's nodes for jim, with the login the leaf allows.
        var nodes = WebReply(status: 0, headers: [], body: "")
        #expect(try await eventually {
            nodes = try await web.send("GET", "/webapi/sites/leaf.example/nodes?limit=10")
            return nodes.status == 200 && nodes.body.contains("testnode")
        }, "\(nodes)\n\(root.log.suffix(3000))")
        let page = try #require(try JSONSerialization.jsonObject(with: Data(nodes.body.utf8)) as? [String: Any], "\(nodes.body)")
        let items = try #require(page["items"] as? [[String: Any]], "\(nodes.body)")
        #expect(items.count == 1, "\(nodes.body)")
        #expect(items.first?["address"] as? String == "127.0.0.1:\(leaf.sshPort)", "\(nodes.body)")
        #expect(items.first?["logins"] as? [String] == ["root"], "\(nodes.body)")
        let leafSessions = try await web.send("GET", "/webapi/sites/leaf.example/sessions")
        #expect(leafSessions.status == 200 && leafSessions.body.hasPrefix("["), "\(leafSessions)")
        let searched = try await web.send("GET", "/webapi/sites/leaf.example/nodes?search=nothing-like-this")
        #expect(searched.status == 200 && searched.body.contains("\"items\":[]"), "\(searched)")

        // Refusals: an unknown leaf (404 with the clusters), the root's own name (400), another
        // request (404), a bad sort (400), a cookie on tsh's POST (no client certificate: 403),
        // a POST from a foreign origin (403 before anything else).
        let unknown = try await web.send("GET", "/webapi/sites/nosuch.example/nodes")
        #expect(unknown.status == 404 && unknown.body.contains("is not known") && unknown.body.contains("leaf.example"), "\(unknown)")
        let own = try await web.send("GET", "/webapi/sites/root.example/nodes")
        #expect(own.status == 400 && own.body.contains("/webapi/nodes"), "\(own)")
        let other = try await web.send("GET", "/webapi/sites/leaf.example/apps")
        #expect(other.status == 404, "\(other)")
        let badSort = try await web.send("GET", "/webapi/sites/leaf.example/nodes?sort=size")
        #expect(badSort.status == 400, "\(badSort)")
        let posted = try await web.send("POST", "/webapi/sites/leaf.example/nodes", json: ["certificate": "x"])
        #expect(posted.status == 403 && posted.body.contains("tsh login"), "\(posted)")
        let foreign = try await web.send(
            "POST", "/webapi/sites/leaf.example/nodes", json: ["certificate": "x"], headers: ["Origin": "https://evil.example"])
        #expect(foreign.status == 403 && foreign.body.contains("another origin"), "\(foreign)")

        // ann's roles map to nothing on the leaf: refused there, and audited there.
        let annWeb = WebClient(cluster: root)
        try #require(try await annWeb.login(ann).status == 200)
        let annSites = try await annWeb.send("GET", "/webapi/sites")
        #expect(annSites.status == 200 && annSites.body.contains("leaf.example"), "\(annSites)")
        let annNodes = try await annWeb.send("GET", "/webapi/sites/leaf.example/nodes")
        #expect(annNodes.status == 403 && annNodes.body.contains("has no roles in cluster leaf.example"), "\(annNodes)")
        let annSessions = try await annWeb.send("GET", "/webapi/sites/leaf.example/sessions")
        #expect(annSessions.status == 403 && annSessions.body.contains("has no roles in cluster leaf.example"), "\(annSessions)")
        var denied = ""
        #expect(try await eventually {
            denied = try await leaf.tctl(["events", "ls", "--type=trusted_cluster.user.denied", "--format=json"]).stdout
            return denied.contains("\"ann\"")
        }, "\(denied)")
        #expect(denied.contains("T7010W") && denied.contains("root.example"), "\(denied)")

        // The browser: the selector, the leaf's node, a terminal there; the WebSocket's refusals.
        if WebBrowserTests.missing == nil {
            try await browser(root: root, leaf: leaf, joe: joe, deniedCookie: try annWeb.cookieHeader())
        }

        // The trust disabled on the leaf: the leaf is listed offline and its nodes are refused as offline.
        let disabled = try await leaf.tctl(
            ["create", "-f", try base.write(Base.trustYAML(token: "", webProxy: "127.0.0.1:\(root.webPort)", enabled: false), "off.yaml", in: leaf)])
        #expect(disabled.exitCode == 0, "\(disabled)")
        #expect(try await eventually { try await root.tctl(["get", "rc"]).stdout.contains("connection: offline") })
        let offSites = try await web.send("GET", "/webapi/sites")
        #expect(offSites.status == 200 && offSites.body.contains("offline"), "\(offSites)")
        let offNodes = try await web.send("GET", "/webapi/sites/leaf.example/nodes")
        #expect(offNodes.status == 502 && offNodes.body.contains("leaf cluster leaf.example is offline"), "\(offNodes)")
    }

    func browser(root: ClusterFixture, leaf: ClusterFixture, joe: (user: WebUser, enrolled: Date), deniedCookie: String) async throws {
        let artifacts = try TestSupport.makeTemporaryDirectory(prefix: "web-leaf-screenshots")
        print("TrustedClusterWebIntegrationTests: screenshots in \(artifacts.path)")
        let result = try await TestSupport.runBrowser(
            "/usr/bin/env",
            [
                "python3", Self.script.path, "--url", "https://127.0.0.1:\(root.webPort)", "--user", "joe",
                "--password", WebSessionTests.password, "--secret", joe.user.secret,
                "--after", String(joe.enrolled.timeIntervalSince1970), "--artifacts", artifacts.path,
                "--root", "root.example", "--leaf", "leaf.example", "--node", "testnode", "--login", "root",
                "--root-addr", "127.0.0.1:\(root.sshPort)", "--leaf-addr", "127.0.0.1:\(leaf.sshPort)",
                "--denied-cookie", deniedCookie,
            ], timeout: .seconds(300))
        print(result.stdout)
        if result.exitCode == 77 {
            print("SKIP TrustedClusterWebIntegrationTests (browser): \(result.stdout)")
            return
        }
        #expect(result.exitCode == 0, "\(result)\n\(root.log.suffix(3000))\n\(leaf.log.suffix(3000))")
        for line in [
            "ok: the cluster selector lists the root and the leaf", "ok: the root's servers first, not the leaf's",
            "ok: choosing the leaf lists the leaf's node, not the root's", "ok: a reload keeps the leaf chosen",
            "ok: Connect opens a shell on the leaf's node in the browser", "ok: the shell runs on the leaf's node as the root user",
            "ok: Active sessions lists the leaf's session", "ok: the join names the leaf",
            "ok: an observer joined from the leaf's Active sessions sees the typed text", "ok: the observer's terminal ends with the session",
            "ok: joining a session the leaf does not have is refused with 4404",
            "ok: exit 3 on the leaf shows the exit status", "ok: choosing the root lists the root's servers",
            "ok: an unknown cluster is refused with 4404", "ok: a foreign Origin is refused with 4403 for a leaf",
            "ok: an unknown node of the leaf is refused with 4404", "ok: a user whose roles map to nothing is refused with 4403",
            "ok: no cookie is refused with 4401 for a leaf",
        ] {
            #expect(result.stdout.contains(line), "\(line)")
        }
        // The leaf recorded and audited joe's browser session, with the root user's name and cluster.
        var events: [[String: JSONValue]] = []
        #expect(try await eventually {
            events = try await AuditEventsTests.events(leaf, ["--type=session.start,session.join,session.end"])
            return events.contains { $0["event"] == .string("session.end") && $0["user"] == .string("joe") }
        }, "\(events)")
        #expect(
            events.contains {
                $0["event"] == .string("session.start") && $0["user"] == .string("joe") && $0["user_cluster"] == .string("root.example")
            }, "\(events)")
        #expect(events.contains { $0["event"] == .string("session.join") && $0["user"] == .string("joe") }, "\(events)")
        #expect(!(try await root.tctl(["events", "ls", "--type=session.start", "--format=json"])).stdout.contains("\"joe\""))
    }
}
