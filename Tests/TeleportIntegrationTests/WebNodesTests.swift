import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// The web UI's resource list against a real cluster, driven with the real `curl` and a session
/// cookie: the role filter of `tsh ls`, search, label filters, sorting, page tokens, 401 without a
/// session, and a hostile label value that comes back escaped.
@Suite("web UI: resources (curl against a real cluster)", .serialized)
struct WebNodesTests {
    static let role = """
        kind: role
        version: v7
        metadata:
          name: dev-only
        spec:
          allow:
            logins: ['{{internal.logins}}']
            node_labels:
              env: dev

        """

    static let hostile = "<script>alert(1)</script>"

    struct Page: Decodable {
        struct Node: Decodable {
            var name: String
            var id: String
            var address: String?
            var tunnel: Bool
            var labels: [String: String]
            var logins: [String]
        }
        var items: [Node]
        var nextPageToken: String?

        enum CodingKeys: String, CodingKey {
            case items
            case nextPageToken = "next_page_token"
        }
    }

    static func nodeYAML(_ name: String, uuid: String, port: Int, labels: [String: String]) -> String {
        var text = "kind: node\nversion: v2\nsub_kind: openssh\nmetadata:\n  name: \(uuid)\n  labels:\n"
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) { text += "    \(key): '\(value)'\n" }
        text += "spec:\n  addr: 127.0.0.1:\(port)\n  hostname: \(name)\n"
        return text
    }

    @Test("a dev-only user sees only env=dev; search, labels, sort, pages; 401 without a session; hostile labels escaped", .timeLimit(.minutes(5)))
    func devOnly() async throws {
        try await withCluster(try ClusterFixture(clusterName: "webnodes.example")) { cluster in
            try await cluster.start()
            let work = try TestSupport.makeTemporaryDirectory(prefix: "webnodes")
            defer { try? FileManager.default.removeItem(at: work) }
            var documents = [Self.role]
            documents.append(Self.nodeYAML("dev-web", uuid: "0b7d6a2e-0000-4000-8000-000000000001", port: 40000, labels: ["env": "dev", "team": "web"]))
            documents.append(
                Self.nodeYAML("dev-db", uuid: "0b7d6a2e-0000-4000-8000-000000000002", port: 40001, labels: ["env": "dev", "team": "db", "note": Self.hostile]))
            documents.append(Self.nodeYAML("prod-web", uuid: "0b7d6a2e-0000-4000-8000-000000000003", port: 40002, labels: ["env": "prod", "team": "web"]))
            for (index, document) in documents.enumerated() {
                let file = work.appendingPathComponent("r\(index).yaml")
                try TestSupport.write(document, to: file)
                let created = try await cluster.tctl(["create", file.path])
                try #require(created.exitCode == 0, "\(created)")
            }
            let added = try await cluster.tctl(["users", "add", "devon", "--logins=devon", "--roles=dev-only"])
            try #require(added.exitCode == 0, "\(added)")
            let link = try SignupHelper.link(in: added.stdout, kind: "newuser")
            let enrolled = try await SignupHelper.enrol(WebDriver(cluster: cluster), link, password: WebSessionTests.password)
            let devon = WebUser(name: "devon", secret: enrolled.secret, lastStep: enrolled.time)

            // Without a session: 401, in JSON.
            let anonymous = try await WebClient(cluster: cluster).send("GET", "/webapi/nodes")
            #expect(anonymous.status == 401, "\(anonymous)")
            let anonymousPage = try await WebClient(cluster: cluster).send("GET", "/web/nodes")
            #expect(anonymousPage.status == 303 && anonymousPage.header("location") == "/web/login", "\(anonymousPage)")

            let client = WebClient(cluster: cluster)
            let login = try await client.login(devon)
            try #require(login.status == 200, "\(login)")
            func list(_ query: String) async throws -> (reply: WebReply, page: Page) {
                let reply = try await client.send("GET", "/webapi/nodes" + query)
                #expect(reply.status == 200, "\(query): \(reply)")
                return (reply, try ResourceCodec.jsonDecoder().decode(Page.self, from: Data(reply.body.utf8)))
            }

            // Only env=dev, as tsh ls would list; the user's logins per node.
            let all = try await list("")
            #expect(all.page.items.map(\.name) == ["dev-db", "dev-web"], "\(all.reply.body)")
            #expect(all.page.items.allSatisfy { $0.logins == ["devon"] && !$0.tunnel }, "\(all.reply.body)")
            #expect(all.page.items.first?.address == "127.0.0.1:40001")
            #expect(all.page.items.first?.id == "0b7d6a2e-0000-4000-8000-000000000002")
            #expect(all.page.nextPageToken == nil)
            #expect(all.reply.header("content-type")?.hasPrefix("application/json") == true)
            WebSessionTests.expectSecurityHeaders(all.reply)

            // The hostile label: escaped in the body, intact once decoded.
            #expect(!all.reply.body.contains("<script>"), "\(all.reply.body)")
            #expect(all.reply.body.contains("\\u003cscript\\u003e"), "\(all.reply.body)")
            #expect(all.page.items.first { $0.name == "dev-db" }?.labels["note"] == Self.hostile)

            // Search and label filters (a prod node never shows, whatever the filter).
            #expect(try await list("?search=DB").page.items.map(\.name) == ["dev-db"])
            #expect(try await list("?labels=team%3Dweb").page.items.map(\.name) == ["dev-web"])
            #expect(try await list("?labels=env%3Dprod").page.items.isEmpty)
            #expect(try await list("?search=prod").page.items.isEmpty)
            #expect(try await list("?sort=addr").page.items.map(\.name) == ["dev-web", "dev-db"])
            let badSort = try await client.send("GET", "/webapi/nodes?sort=uptime")
            #expect(badSort.status == 400, "\(badSort)")

            // Pages of one, following the token.
            let first = try await list("?limit=1")
            #expect(first.page.items.map(\.name) == ["dev-db"])
            let token = try #require(first.page.nextPageToken, "\(first.reply.body)")
            let encoded = token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token
            let second = try await list("?limit=1&page_token=\(encoded)")
            #expect(second.page.items.map(\.name) == ["dev-web"])
            #expect(second.page.nextPageToken == nil, "\(second.reply.body)")

            // The page: linked from /web/, no inline script, the table the script fills.
            let home = try await client.send("GET", "/web/")
            #expect(home.body.contains("href=\"/web/nodes\""), "\(home)")
            let page = try await client.send("GET", "/web/nodes")
            #expect(page.status == 200 && page.body.contains("id=\"nodes-body\"") && page.body.contains("data-page=\"nodes\""), "\(page)")
            #expect(!page.body.contains("<script>") && !page.body.contains("style=\""))
            WebSessionTests.expectSecurityHeaders(page)

            // After logout the cookie lists nothing.
            let cookie = try client.cookieHeader()
            let me = try await client.send("GET", "/webapi/me")
            let csrf = try ResourceCodec.jsonDecoder().decode(AuthAPI.WebSessionInfo.self, from: Data(me.body.utf8)).csrfToken
            let logout = try await client.send("DELETE", "/webapi/sessions", headers: ["X-CSRF-Token": csrf])
            #expect(logout.status == 200, "\(logout)")
            let after = try await WebClient(cluster: cluster).send("GET", "/webapi/nodes", headers: ["Cookie": cookie])
            #expect(after.status == 401, "\(after)")
        }
    }
}
