import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import TeleportAPI
import TeleportCrypto
import Testing

@testable import TeleportAuthServer

/// The auth API's side of single sign-on: connector secrets hidden unless the admin asks, the
/// SSO routes for proxies only, and the real provider client's limits on a live loopback server.
@Suite("single sign-on: auth API and provider client")
struct SSOAPITests {
    static let connectorJSON = #"""
        {"kind":"oidc","version":"v3","metadata":{"name":"okta"},"spec":{"issuer_url":"https://idp.example.com","client_id":"teleport",
        "client_secret":"top-secret","redirect_url":"https://proxy.example.com/v1/webapi/oidc/callback",
        "claims_to_roles":[{"claim":"groups","value":"admins","roles":["access"]}]}}
        """#

    @Test("client_secret only with ?with_secrets=true for the admin; sso routes are the proxy's")
    func secretsAndRoutes() async throws {
        let cluster = try await InProcessAuth.open()
        try await cluster.routes(presenting: try await cluster.host(.admin, uuid: "admin")) { client in
            let created = try await client.execute(
                uri: "/v1/resources", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: Self.connectorJSON))
            #expect(created.status == .ok && !String(buffer: created.body).contains("top-secret"))
            let listed = String(buffer: try await client.execute(uri: "/v1/resources/oidc", method: .get).body)
            #expect(listed.contains("\"okta\"") && !listed.contains("top-secret"))
            let one = String(buffer: try await client.execute(uri: "/v1/resources/oidc/okta", method: .get).body)
            #expect(!one.contains("top-secret"))
            let secret = String(buffer: try await client.execute(uri: "/v1/resources/oidc/okta?with_secrets=true", method: .get).body)
            #expect(secret.contains("top-secret"))
        }
        try await cluster.routes(presenting: try await cluster.user("joe", roles: ["editor"])) { client in
            let secret = try await client.execute(uri: "/v1/resources/oidc/okta?with_secrets=true", method: .get)
            #expect(secret.status == .forbidden)
            #expect(try await client.execute(uri: "/v1/sso/settings", method: .get).status == .forbidden)
        }
        try await cluster.routes(presenting: try await cluster.host(.node, uuid: UUID().uuidString.lowercased())) { client in
            let callback = AuthAPI.SSOCallbackRequest(kind: .oidc, code: "c", state: "s")
            let refused = try await client.send(.post, "/v1/sso/callback", json: callback)
            #expect(refused.status == .forbidden)
        }
        try await cluster.routes(presenting: try await cluster.host(.proxy, uuid: UUID().uuidString.lowercased())) { client in
            let settings = try await client.execute(uri: "/v1/sso/settings", method: .get)
            #expect(settings.status == .ok && String(buffer: settings.body).contains("\"display\":\"okta\""))
            let callback = try await client.send(.post, "/v1/sso/callback", json: AuthAPI.SSOCallbackRequest(kind: .oidc, code: "c", state: "s"))
            #expect(callback.status == .forbidden && String(buffer: callback.body).contains("unknown or expired login state"))
        }
    }

    @Test("the provider client: replies over 1 MiB refused (a 10 MB claim), plain http only to loopback")
    func providerClientLimits() async throws {
        let router = Router()
        router.get("small") { _, _ in "{\"ok\":true}" }
        router.get("huge") { _, _ in String(repeating: "x", count: 10 * 1024 * 1024) }
        try await Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0))).test(.live) { client in
            let port = try #require(client.port)
            let http = ProviderHTTPClient()
            let huge = try #require(URL(string: "http://127.0.0.1:\(port)/huge"))
            let remote = try #require(URL(string: "http://idp.example.com/x"))
            let small = try await http.send(SSOHTTPRequest(method: "GET", url: try #require(URL(string: "http://127.0.0.1:\(port)/small"))))
            #expect(small.status == 200 && String(decoding: small.body, as: UTF8.self) == "{\"ok\":true}")
            await #expect {
                _ = try await http.send(SSOHTTPRequest(method: "GET", url: huge))
            } throws: { error in
                (error as? TeleportError)?.code == .limitExceeded
            }
            await #expect {
                _ = try await http.send(SSOHTTPRequest(method: "GET", url: remote))
            } throws: { error in
                (error as? TeleportError)?.message.contains("only https") == true
            }
        }
    }
}
