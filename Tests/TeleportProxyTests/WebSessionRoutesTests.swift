import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import TeleportAPI
import Testing
@testable import TeleportProxy

/// The proxy's web session routes and security middleware in process (HummingbirdTesting's
/// router client, whose requests have the authority `localhost`; a fake auth service): what reaches the auth service, and what never does.
@Suite("web session routes and security middleware (in process)")
struct WebSessionRoutesTests {
    /// An auth service with one session per user name; counts the calls that reach it.
    final class FakeAuth: ProxyAuthAccess {
        let sessions = Mutex<[String: AuthAPI.WebSessionInfo]>([:])
        let creates = Mutex(0)

        func userToken(_ token: String) async throws -> AuthAPI.UserTokenInfo { throw TeleportError.notFound("no") }
        func completeUserToken(_ request: AuthAPI.CompleteUserTokenRequest) async throws { throw TeleportError.notFound("no") }
        func login(_ request: AuthAPI.LoginRequest) async throws -> AuthAPI.LoginResponse { throw TeleportError.accessDenied("no") }

        func createWebSession(_ request: AuthAPI.CreateWebSessionRequest) async throws -> AuthAPI.WebSessionInfo {
            creates.withLock { $0 += 1 }
            guard request.password == "right password", request.otpCode == "123456" else { throw TeleportError.accessDenied("invalid user name, password or one-time code") }
            let id = String(repeating: request.user.prefix(1).lowercased() == "a" ? "a" : "b", count: 64)
            let info = AuthAPI.WebSessionInfo(
                sessionID: id, user: request.user, roles: ["access"], logins: [request.user], csrfToken: "csrf-\(request.user)",
                expires: Date().addingTimeInterval(3600), idleExpires: Date().addingTimeInterval(600))
            sessions.withLock { $0[id] = info }
            return info
        }

        func authenticateWebSession(_ request: AuthAPI.WebSessionIDRequest) async throws -> AuthAPI.WebSessionInfo {
            guard var info = sessions.withLock({ $0[request.sessionID] }) else { throw TeleportError.accessDenied("the web session has expired or was ended") }
            info.sessionID = nil
            return info
        }

        func deleteWebSession(_ request: AuthAPI.WebSessionIDRequest) async throws {
            sessions.withLock { $0[request.sessionID] = nil }
        }

        func authPreference() async throws -> AuthAPI.AuthPreference { throw TeleportError.connectionProblem("no") }
        func createSSORequest(_ request: AuthAPI.CreateSSORequest) async throws -> AuthAPI.SSORequestCreated { throw TeleportError.notFound("no") }
        func completeSSOCallback(_ request: AuthAPI.SSOCallbackRequest) async throws -> AuthAPI.SSOCallbackResult { throw TeleportError.notFound("no") }
    }

    static func withRoutes(_ auth: FakeAuth, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let router = Router(context: ProxyRequestContext.self)
        router.add(middleware: WebSecurityMiddleware(logger: Logger(label: "test")))
        WebSessionRoutes(auth: auth, clusterName: "web.example", logger: Logger(label: "test")).register(on: router)
        try await Application(router: router).test(.router) { client in try await body(client) }
    }

    static func loginBody(_ user: String) -> ByteBuffer {
        ByteBuffer(string: #"{"user":"\#(user)","password":"right password","otp_code":"123 456"}"#)
    }

    @Test("login sets the cookie; me needs it; logout needs this session's CSRF token and a same-origin request")
    func csrfAndOrigin() async throws {
        let auth = FakeAuth()
        try await Self.withRoutes(auth) { client in
            let login = try await client.execute(uri: "/webapi/sessions", method: .post, headers: [.contentType: "application/json"], body: Self.loginBody("ann"))
            #expect(login.status == .ok)
            #expect(login.headers[.setCookie] == "__Host-session=\(String(repeating: "a", count: 64)); Secure; HttpOnly; SameSite=Strict; Path=/")
            #expect(!String(buffer: login.body).contains(String(repeating: "a", count: 64)), "the id is only in the cookie")
            _ = try await client.execute(uri: "/webapi/sessions", method: .post, headers: [.contentType: "application/json"], body: Self.loginBody("bob"))
            let ann: HTTPFields = [.cookie: "__Host-session=\(String(repeating: "a", count: 64))"]

            #expect(try await client.execute(uri: "/webapi/me", method: .get).status == .unauthorized)
            let me = try await client.execute(uri: "/webapi/me", method: .get, headers: ann)
            #expect(me.status == .ok && String(buffer: me.body).contains("\"user\":\"ann\""))

            let csrfName = try #require(HTTPFields.Element.Name("X-CSRF-Token"))
            let originName = try #require(HTTPFields.Element.Name("Origin"))
            var noToken = ann
            noToken[originName] = "https://localhost"
            #expect(try await client.execute(uri: "/webapi/sessions", method: .delete, headers: noToken).status == .forbidden)
            var bobsToken = noToken
            bobsToken[csrfName] = "csrf-bob"
            #expect(try await client.execute(uri: "/webapi/sessions", method: .delete, headers: bobsToken).status == .forbidden)
            var foreign = ann
            foreign[csrfName] = "csrf-ann"
            foreign[originName] = "https://evil.example"
            let refused = try await client.execute(uri: "/webapi/sessions", method: .delete, headers: foreign)
            #expect(refused.status == .forbidden)
            #expect(refused.headers[.contentSecurityPolicy]?.contains("frame-ancestors 'none'") == true)
            #expect(auth.sessions.withLock { $0.count } == 2, "nothing was ended")

            var good = noToken
            good[csrfName] = "csrf-ann"
            let logout = try await client.execute(uri: "/webapi/sessions", method: .delete, headers: good)
            #expect(logout.status == .ok)
            #expect(logout.headers[.setCookie]?.hasPrefix("__Host-session=; Max-Age=0") == true)
            #expect(try await client.execute(uri: "/webapi/me", method: .get, headers: ann).status == .unauthorized)
        }
    }

    @Test("a cross-origin login is refused before the auth service sees it")
    func crossOriginLogin() async throws {
        let auth = FakeAuth()
        try await Self.withRoutes(auth) { client in
            let originName = try #require(HTTPFields.Element.Name("Origin"))
            let siteName = try #require(HTTPFields.Element.Name("Sec-Fetch-Site"))
            for headers: HTTPFields in [
                [.contentType: "application/x-www-form-urlencoded", originName: "https://evil.example"],
                [.contentType: "application/x-www-form-urlencoded", originName: "null"],
                [.contentType: "application/x-www-form-urlencoded", originName: "http://localhost"],
                [.contentType: "application/x-www-form-urlencoded", siteName: "cross-site"],
            ] {
                let refused = try await client.execute(
                    uri: "/webapi/sessions", method: .post, headers: headers, body: ByteBuffer(string: "user=ann&password=right+password&otp_code=123456"))
                #expect(refused.status == .forbidden, "\(headers)")
            }
            #expect(auth.creates.withLock { $0 } == 0)
            let sameOrigin = try await client.execute(
                uri: "/webapi/sessions", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded", originName: "https://localhost"],
                body: ByteBuffer(string: "user=ann&password=right+password&otp_code=123456"))
            #expect(sameOrigin.status == .seeOther && sameOrigin.headers[.location] == "/web/")
        }
    }

    @Test("every page, asset, JSON reply and 404 carries the security headers; pages hold no inline script")
    func headers() async throws {
        try await Self.withRoutes(FakeAuth()) { client in
            for path in ["/web/login", "/web/app.js", "/web/app.css", "/webapi/me", "/no/such/page", "/web"] {
                let reply = try await client.execute(uri: path, method: .get)
                let csp = reply.headers[.contentSecurityPolicy] ?? ""
                #expect(csp.contains("default-src 'self'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "\(path): \(csp)")
                #expect(reply.headers[.xContentTypeOptions] == "nosniff", "\(path)")
                #expect(reply.headers[try #require(HTTPFields.Element.Name("X-Frame-Options"))] == "DENY", "\(path)")
                #expect(reply.headers[try #require(HTTPFields.Element.Name("Referrer-Policy"))] == "no-referrer", "\(path)")
            }
            let page = String(buffer: try await client.execute(uri: "/web/login", method: .get).body)
            #expect(!page.contains("<script>") && !page.contains(" on") && !page.contains("style="))
            #expect(page.contains("<label for=\"otp_code\">"))
        }
    }
}
