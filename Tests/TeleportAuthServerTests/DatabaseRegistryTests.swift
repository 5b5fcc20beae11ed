import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import TeleportAPI
import TeleportAuthServer
import TeleportCrypto
import TeleportServices
import Testing
import X509

/// The database registry on the auth API: a database service heartbeats its own `db_server`
/// records; `GET /v1/databases` shows users only what their roles' `db_labels` allow.
@Suite("database registry (in process)")
struct DatabaseRegistryTests {
    static func database(_ name: String, host: String, labels: [String: String]) -> DatabaseServer {
        DatabaseServer(
            name: name, labels: labels,
            spec: .init(protocol: .postgres, uri: "127.0.0.1:5432", description: "\(name) database", hostID: host, hostname: "dbhost"))
    }

    static func names(_ response: TestResponse) throws -> [String] {
        try ResourceCodec.jsonDecoder().decode([DatabaseServer].self, from: Data(response.body.readableBytesView)).map(\.name)
    }

    @Test("a database service heartbeats only records naming its host; nodes may not; records expire")
    func heartbeats() async throws {
        let cluster = try await InProcessAuth.open(name: "dbreg.cluster")
        let mine = UUID().uuidString.lowercased()
        let service = try await cluster.host(.db, uuid: mine)
        try await cluster.routes(presenting: service) { client in
            let ok = try await client.send(.post, "/v1/presence/databases", json: Self.database("sales", host: mine, labels: ["env": "dev"]))
            #expect(ok.status == .ok, "\(String(buffer: ok.body))")
            let other = try await client.send(
                .post, "/v1/presence/databases", json: Self.database("hr", host: UUID().uuidString.lowercased(), labels: [:]))
            #expect(other.status == .forbidden)
            var bad = Self.database("bad", host: mine, labels: ["env": "a\u{1b}[2Jb"])
            bad.spec.uri = "x"
            #expect(try await client.send(.post, "/v1/presence/databases", json: bad).status == .badRequest)
        }
        try await cluster.routes(presenting: try await cluster.host(.node, uuid: mine)) { client in
            let node = try await client.send(.post, "/v1/presence/databases", json: Self.database("hr", host: mine, labels: [:]))
            #expect(node.status == .forbidden)
        }
        #expect(try await cluster.auth.databases().map(\.name) == ["sales"])
        cluster.clock.advance(by: 31)
        #expect(try await cluster.auth.databases().isEmpty)
    }

    @Test("GET /v1/databases: two users with different db_labels see different lists; the admin sees all; nodes may not list")
    func listFilteredByRoles() async throws {
        let cluster = try await InProcessAuth.open(name: "dbreg.cluster")
        let host = UUID().uuidString.lowercased()
        try await cluster.routes(presenting: try await cluster.host(.db, uuid: host)) { client in
            for (name, env) in [("sales", "dev"), ("billing", "prod")] {
                let sent = try await client.send(.post, "/v1/presence/databases", json: Self.database(name, host: host, labels: ["env": env]))
                #expect(sent.status == .ok)
            }
        }
        try await cluster.auth.stores.roles.create(Role(name: "dev-db", spec: .init(allow: .init(dbLabels: ["env": LabelValues(["dev"])]))))
        try await cluster.auth.stores.roles.create(Role(name: "all-db", spec: .init(allow: .init(dbLabels: ["*": LabelValues(["*"])]))))
        for (user, roles, expected) in [("dev", ["dev-db"], ["sales"]), ("ops", ["all-db"], ["billing", "sales"]), ("joe", ["access"], [])] {
            try await cluster.routes(presenting: try await cluster.user(user, roles: roles)) { client in
                let listed = try await client.execute(uri: "/v1/databases", method: .get)
                #expect(listed.status == .ok)
                #expect(try Self.names(listed) == expected, "\(user)")
            }
        }
        try await cluster.routes(presenting: try await cluster.host(.admin, uuid: "admin")) { client in
            let listed = try await client.execute(uri: "/v1/databases", method: .get)
            #expect(try Self.names(listed) == ["billing", "sales"])
        }
        try await cluster.routes(presenting: try await cluster.host(.node, uuid: UUID().uuidString.lowercased())) { client in
            let refused = try await client.execute(uri: "/v1/databases", method: .get)
            #expect(refused.status == .forbidden)
        }
    }
}
