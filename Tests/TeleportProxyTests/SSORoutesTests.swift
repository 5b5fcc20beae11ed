import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import TeleportAPI
import Testing

@testable import TeleportProxy

/// The proxy's single sign-on routes in process with a fake auth service: what reaches the auth
/// service, the redirects, the cookies, and what is refused before anything is asked.
@Suite("single sign-on routes at the proxy (in process)")
struct SSORoutesTests {
    final class FakeAuth: ProxyAuthAccess {
        let created = Mutex<[AuthAPI.CreateSSORequest]>([])
        let callbacks = Mutex<[AuthAPI.SSOCallbackRequest]>([])
        let mode: AuthAPI.SSOMode
        let localAuth: Bool
        init(mode: AuthAPI.SSOMode = .web, localAuth: Bool = true) {
            self.mode = mode
            self.localAuth = localAuth
        }

        func userToken(_ token: String) async throws -> AuthAPI.UserTokenInfo { throw TeleportError.notFound("no") }
        func completeUserToken(_ request: AuthAPI.CompleteUserTokenRequest) async throws { throw TeleportError.notFound("no") }
        func login(_ request: AuthAPI.LoginRequest) async throws -> AuthAPI.LoginResponse { throw TeleportError.accessDenied("no") }
        func createWebSession(_ request: AuthAPI.CreateWebSessionRequest) async throws -> AuthAPI.WebSessionInfo { throw TeleportError.accessDenied("no") }
        func authenticateWebSession(_ request: AuthAPI.WebSessionIDRequest) async throws -> AuthAPI.WebSessionInfo { throw TeleportError.accessDenied("no") }
        func deleteWebSession(_ request: AuthAPI.WebSessionIDRequest) async throws {}
        func authPreference() async throws -> AuthAPI.AuthPreference {
            AuthAPI.AuthPreference(
                type: "oidc", connectorName: "okta", localAuth: localAuth, secondFactor: "otp",
                connectors: [.init(name: "okta", kind: "oidc", display: "Okta <SSO>"), .init(name: "github", kind: "github", display: "GitHub")])
        }
        func createSSORequest(_ request: AuthAPI.CreateSSORequest) async throws -> AuthAPI.SSORequestCreated {
            created.withLock { $0.append(request) }
            return AuthAPI.SSORequestCreated(redirectURL: "https://idp.example.com/authorize?client_id=c&state=\(String(repeating: "5", count: 64))")
        }
        func completeSSOCallback(_ request: AuthAPI.SSOCallbackRequest) async throws -> AuthAPI.SSOCallbackResult {
            callbacks.withLock { $0.append(request) }
            guard request.code == "good" else { throw TeleportError.accessDenied("oidc connector okta: no claims_to_roles rule matched <b>") }
            switch mode {
            case .console:
                return AuthAPI.SSOCallbackResult(mode: .console, username: "ann", clientRedirectURL: "http://127.0.0.1:4242/callback?state=s&response=SEALED")
            case .web:
                let info = AuthAPI.WebSessionInfo(
                    sessionID: String(repeating: "a", count: 64), user: "ann", roles: ["access"], logins: ["ann"], csrfToken: "c", expires: Date(),
                    idleExpires: Date())
                return AuthAPI.SSOCallbackResult(mode: .web, username: "ann", webSession: info, redirectURL: "/web/nodes")
            }
        }
    }

    static func withRoutes(_ auth: FakeAuth, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let router = Router(context: ProxyRequestContext.self)
        router.add(middleware: WebSecurityMiddleware(logger: Logger(label: "test")))
        SSORoutes(auth: auth, logger: Logger(label: "test")).register(on: router)
        WebSessionRoutes(auth: auth, clusterName: "web.example", logger: Logger(label: "test")).register(on: router)
        try await Application(router: router).test(.router) { client in try await body(client) }
    }

    static let state = String(repeating: "5", count: 64)

    @Test("web: the button's route redirects to the provider with a state cookie; the callback needs it, sets the session cookie, moves on")
    func webFlow() async throws {
        let auth = FakeAuth()
        try await Self.withRoutes(auth) { client in
            let start = try await client.execute(uri: "/v1/webapi/oidc/login/web?connector_id=okta&redirect_url=/web/nodes", method: .get)
            #expect(start.status == .found && start.headers[.location]?.hasPrefix("https://idp.example.com/authorize") == true)
            #expect(start.headers[.setCookie] == "__Host-sso-state=\(Self.state); Max-Age=600; Secure; HttpOnly; SameSite=Lax; Path=/")
            #expect(auth.created.withLock { $0.first }.map { $0.mode == .web && $0.redirectURL == "/web/nodes" && $0.connectorID == "okta" } == true)

            let evil = try await client.execute(uri: "/v1/webapi/oidc/login/web?connector_id=okta&redirect_url=//evil.example.com", method: .get)
            #expect(evil.status == .badRequest && auth.created.withLock { $0.count } == 1)

            // Without the state cookie (a login started elsewhere): refused after the auth service's check.
            let foreign = try await client.execute(uri: "/v1/webapi/oidc/callback?code=good&state=\(Self.state)", method: .get)
            #expect(foreign.status == .forbidden && foreign.headers[.setCookie] == nil)

            let done = try await client.execute(
                uri: "/v1/webapi/oidc/callback?code=good&state=\(Self.state)", method: .get, headers: [.cookie: "__Host-sso-state=\(Self.state)"])
            #expect(done.status == .ok)
            let cookies = done.headers[values: .setCookie]
            #expect(cookies.contains("__Host-session=\(String(repeating: "a", count: 64)); Secure; HttpOnly; SameSite=Strict; Path=/"))
            #expect(String(buffer: done.body).contains("content=\"0;url=/web/nodes\""))

            let refused = try await client.execute(
                uri: "/v1/webapi/oidc/callback?code=bad&state=\(Self.state)", method: .get, headers: [.cookie: "__Host-sso-state=\(Self.state)"])
            #expect(refused.status == .forbidden && String(buffer: refused.body).contains("no claims_to_roles rule matched &lt;b&gt;"))
        }
    }

    @Test("console: a foreign callback address never reaches the auth service; the provider's URL comes back; the callback goes to tsh")
    func consoleFlow() async throws {
        let auth = FakeAuth(mode: .console)
        try await Self.withRoutes(auth) { client in
            func body(_ callback: String) -> ByteBuffer {
                ByteBuffer(
                    string: #"{"connector_id":"okta","client_redirect_url":"\#(callback)","ssh_public_key":"ssh-ed25519 AAAA","tls_public_key":"x","ttl_seconds":3600}"#)
            }
            let evil = try await client.execute(
                uri: "/webapi/oidc/login/console", method: .post, headers: [.contentType: "application/json"], body: body("http://evil.example.com:80/cb"))
            #expect(evil.status == .badRequest && String(buffer: evil.body).contains("client_redirect_url"))
            #expect(auth.created.withLock { $0.isEmpty })
            let good = try await client.execute(
                uri: "/webapi/oidc/login/console", method: .post, headers: [.contentType: "application/json"],
                body: body("http://127.0.0.1:4242/callback?secret=abc"))
            #expect(good.status == .ok && String(buffer: good.body).contains("https://idp.example.com/authorize"))
            #expect(auth.created.withLock { $0.first?.mode } == .console)
            let back = try await client.execute(uri: "/v1/webapi/oidc/callback?code=good&state=s", method: .get)
            #expect(back.status == .found && back.headers[.location] == "http://127.0.0.1:4242/callback?state=s&response=SEALED")
            #expect(auth.callbacks.withLock { $0.first?.kind } == .oidc)
            let github = try await client.execute(uri: "/v1/webapi/github/callback?code=good&state=s", method: .get)
            #expect(github.status == .found && auth.callbacks.withLock { $0.last?.kind } == .github)
        }
    }

    @Test("the login page: a button per connector (escaped); the password form hidden when local_auth is false")
    func loginPage() async throws {
        try await Self.withRoutes(FakeAuth(localAuth: false)) { client in
            let page = String(buffer: try await client.execute(uri: "/web/login", method: .get).body)
            #expect(page.contains("href=\"/v1/webapi/oidc/login/web?connector_id=okta&amp;redirect_url=/web\""))
            #expect(page.contains("Sign in with Okta &lt;SSO&gt;") && page.contains("Sign in with GitHub"))
            #expect(page.contains("action=\"/webapi/sessions\" hidden"))
        }
        try await Self.withRoutes(FakeAuth(localAuth: true)) { client in
            let page = String(buffer: try await client.execute(uri: "/web/login", method: .get).body)
            #expect(page.contains("action=\"/webapi/sessions\">"))
        }
    }
}
