import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SwiftASN1
import TeleportAPI
import TeleportAuthServer
import TeleportBackend
import TeleportCrypto
import TeleportServices
import Testing
import X509

/// An auth service in this process, its `/v1` router driven by HummingbirdTesting (no TLS, no
/// binaries): each request presents a certificate the test issued from the cluster's own CAs, and
/// the middleware checks it exactly as it checks a TLS peer certificate.
struct InProcessAuth {
    let auth: AuthServer
    let clock: ManualClock

    static func open(name: String = "inproc.cluster") async throws -> InProcessAuth {
        let clock = ManualClock()
        let auth = try await AuthServer.open(
            backend: MemoryBackend(clock: clock), audit: NoAudit(), clock: clock, configuredName: name,
            logger: Logger(label: "test"))
        return InProcessAuth(auth: auth, clock: clock)
    }

    /// A host certificate of `role` for the host `uuid` (as joining would issue it).
    func host(_ role: SystemRole, uuid: String) async throws -> Certificate {
        let issued = try await auth.issueSystemIdentity(
            role: role, hostID: "\(uuid).\(auth.clusterName)", publicKey: P256.Signing.PrivateKey().publicKey)
        return try Certificate(pemEncoded: issued.certificatePEM)
    }

    /// A user certificate for `username` with `roles` (as `tsh login` would get it).
    func user(_ username: String, roles: [String]) async throws -> Certificate {
        try await auth.tlsAuthority(.user).issue(
            publicKey: P256.Signing.PrivateKey().publicKey,
            identity: X509Identity(username: username, roles: roles, logins: [], clusterName: auth.clusterName), validity: 3600,
            clock: clock)
    }

    /// Runs `body` against the routes, every request presenting `certificate`.
    func routes(presenting certificate: Certificate?, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: AuthAPIServer.router(auth: auth, peerCertificates: .presenting(certificate)))
        try await app.test(.router) { client in try await body(client) }
    }
}

extension TestClientProtocol {
    /// Sends `value` as JSON.
    @discardableResult
    func send<Body: Encodable>(_ method: HTTPRequest.Method, _ uri: String, json value: Body) async throws -> TestResponse {
        try await execute(uri: uri, method: method, headers: [.contentType: "application/json"], body: ByteBuffer(bytes: try ResourceCodec.json(value)))
    }
}

@Suite("auth API routes in process (injected caller certificate)")
struct AuthAPIInProcessTests {
    @Test("a node may heartbeat only its own presence record")
    func presenceForAnotherHostIsRefused() async throws {
        let cluster = try await InProcessAuth.open()
        let mine = UUID().uuidString.lowercased()
        let other = UUID().uuidString.lowercased()
        let node = try await cluster.host(.node, uuid: mine)
        try await cluster.routes(presenting: node) { client in
            let refused = try await client.send(.post, "/v1/presence/nodes", json: ServerNode(uuid: other, hostname: "intruder", addr: "10.0.0.9:3022"))
            #expect(refused.status == .forbidden)
            #expect(String(buffer: refused.body).contains("a node may only heartbeat its own record"))
            let accepted = try await client.send(.post, "/v1/presence/nodes", json: ServerNode(uuid: mine, hostname: "luna", addr: "10.0.0.1:3022"))
            #expect(accepted.status == .ok)
        }
        await #expect(throws: TeleportError.self) { try await cluster.auth.stores.nodes.get(other) }
        #expect(try await cluster.auth.stores.nodes.get(mine).spec.hostname == "luna")
    }

    @Test("a user whose roles have no rules gets 403 on POST /v1/resources; the admin may create")
    func userWithoutRightsCannotCreate() async throws {
        let cluster = try await InProcessAuth.open()
        let role = Role(name: "inproc-reader", spec: Role.Spec(allow: Role.Conditions(logins: ["guest"])))
        let bob = try await cluster.user("bob", roles: ["access"])
        try await cluster.routes(presenting: bob) { client in
            let refused = try await client.send(.post, "/v1/resources", json: role)
            #expect(refused.status == .forbidden)
            #expect(String(buffer: refused.body).contains("bob may not create role resources"))
        }
        await #expect(throws: TeleportError.self) { try await cluster.auth.stores.roles.get("inproc-reader") }

        let admin = try await cluster.host(.admin, uuid: "admin")
        try await cluster.routes(presenting: admin) { client in
            let created = try await client.send(.post, "/v1/resources", json: role)
            #expect(created.status == .ok)
        }
        #expect(try await cluster.auth.stores.roles.get("inproc-reader").spec.allow?.logins == ["guest"])
    }

    @Test("the admin lists nodes; a proxy may read presence, a node may not")
    func adminListsNodes() async throws {
        let cluster = try await InProcessAuth.open()
        let uuid = UUID().uuidString.lowercased()
        try await cluster.routes(presenting: try await cluster.host(.node, uuid: uuid)) { client in
            let heartbeat = try await client.send(.post, "/v1/presence/nodes", json: ServerNode(uuid: uuid, hostname: "luna", addr: "10.0.0.1:3022"))
            #expect(heartbeat.status == .ok)
            let read = try await client.execute(uri: "/v1/resources/node", method: .get)
            #expect(read.status == .forbidden)
        }
        for presenting in [try await cluster.host(.admin, uuid: "admin"), try await cluster.host(.proxy, uuid: UUID().uuidString.lowercased())] {
            try await cluster.routes(presenting: presenting) { client in
                let listed = try await client.execute(uri: "/v1/resources/nodes", method: .get)
                #expect(listed.status == .ok)
                let nodes = try ResourceCodec.jsonDecoder().decode([ServerNode].self, from: Data(listed.body.readableBytesView))
                #expect(nodes.map(\.name) == [uuid])
                #expect(nodes.first?.spec.hostname == "luna")
            }
        }
    }

    @Test("a proxy heartbeats only its own proxy record; nodes may list proxies but not write them")
    func proxyPresence() async throws {
        let cluster = try await InProcessAuth.open()
        let mine = UUID().uuidString.lowercased()
        let other = UUID().uuidString.lowercased()
        try await cluster.routes(presenting: try await cluster.host(.proxy, uuid: mine)) { client in
            let refused = try await client.send(.post, "/v1/presence/proxies", json: ServerProxy(uuid: other, hostname: "intruder", addr: "evil:3080"))
            #expect(refused.status == .forbidden)
            #expect(String(buffer: refused.body).contains("a proxy may only heartbeat its own record"))
            var bad = ServerProxy(uuid: mine, hostname: "proxy-a\u{1b}[31m", addr: "lb:3080")
            let badHostname = try await client.send(.post, "/v1/presence/proxies", json: bad)
            #expect(badHostname.status == .badRequest)
            bad.spec.hostname = "proxy-a"
            let accepted = try await client.send(.post, "/v1/presence/proxies", json: bad)
            #expect(accepted.status == .ok)
        }
        let node = UUID().uuidString.lowercased()
        try await cluster.routes(presenting: try await cluster.host(.node, uuid: node)) { client in
            let forged = try await client.send(.post, "/v1/presence/proxies", json: ServerProxy(uuid: node, hostname: "fake", addr: "evil:3080"))
            #expect(forged.status == .forbidden)
            #expect(String(buffer: forged.body).contains("only proxies send proxy heartbeats"))
            let listed = try await client.execute(uri: "/v1/resources/proxies", method: .get)
            #expect(listed.status == .ok)
            let proxies = try ResourceCodec.jsonDecoder().decode([ServerProxy].self, from: Data(listed.body.readableBytesView))
            #expect(proxies.map(\.name) == [mine])
            #expect(proxies.first?.spec.addr == "lb:3080")
            #expect(proxies.first?.metadata.expires != nil, "a proxy record expires like a node's")
        }
    }

    @Test("no certificate, another cluster's or CA's certificate, or a removed host's certificate: 403")
    func unauthenticatedCallersAreRefused() async throws {
        let cluster = try await InProcessAuth.open()
        let impostor = try await InProcessAuth.open()  // same name, other CAs
        let foreign = try await InProcessAuth.open(name: "other.cluster")
        let uuid = UUID().uuidString.lowercased()
        let removed = try await cluster.host(.node, uuid: uuid)
        try await cluster.auth.removeHostIdentities(hostID: "\(uuid).\(cluster.auth.clusterName)")
        let cases: [(Certificate?, String)] = [
            (nil, "a client certificate is required"),
            (try await impostor.host(.admin, uuid: "admin"), "the client certificate is not signed by this cluster's CAs"),
            (try await foreign.host(.admin, uuid: "admin"), "belongs to another cluster (other.cluster)"),
            (removed, "this host's identity was removed from the cluster"),
        ]
        for (certificate, reason) in cases {
            try await cluster.routes(presenting: certificate) { client in
                let response = try await client.execute(uri: "/v1/resources/roles", method: .get)
                #expect(response.status == .forbidden)
                #expect(String(buffer: response.body).contains(reason))
            }
        }
    }
}
