import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import TeleportAPI
import TeleportAuthServer
import TeleportBackend
import TeleportCrypto
import TeleportServices
import Testing

/// Web sessions in the auth service, on a manual clock: the login shares `tsh login`'s checks and
/// lockout, the session is stored hashed, renewed while used, ended when idle, at its hard end
/// and by logout; only the proxy may call the routes.
@Suite("web sessions in the auth service")
struct WebSessionAuthTests {
    static let password = "correct horse battery staple 7"

    /// A cluster with the user `ann` (password and TOTP enrolled at the clock's start).
    static func cluster(idle: TimeInterval = 60) async throws -> (auth: AuthServer, clock: ManualClock, backend: MemoryBackend, secret: [UInt8]) {
        let clock = ManualClock()
        let backend = MemoryBackend(clock: clock)
        var settings = AuthSettings(bcryptCost: 4)
        settings.webIdleTimeout = idle
        let auth = try await AuthServer.open(
            backend: backend, audit: NoAudit(), clock: clock, configuredName: "web.cluster", settings: settings, logger: Logger(label: "test"))
        let created = try await auth.createUser(
            AuthAPI.CreateUserRequest(user: User(name: "ann", roles: ["access"], logins: ["ann", "root"]), ttlSeconds: 3600), by: "admin")
        let info = try await auth.userToken(created.token)
        let secret = try #require(info.totpSecret.flatMap { Base32.decode($0) })
        try await auth.completeUserToken(
            AuthAPI.CompleteUserTokenRequest(
                token: created.token, password: password, otpCode: TOTP.code(secret: secret, step: TOTP.step(at: clock.now())),
                clientAddress: nil))
        return (auth, clock, backend, secret)
    }

    /// A login request with the code of the clock's next step (and moves the clock there).
    static func login(_ clock: ManualClock, _ secret: [UInt8], code: String? = nil) -> AuthAPI.CreateWebSessionRequest {
        clock.advance(by: 30)
        return AuthAPI.CreateWebSessionRequest(
            user: "ann", password: password, otpCode: code ?? TOTP.code(secret: secret, step: TOTP.step(at: clock.now())),
            clientAddress: "203.0.113.7:5000")
    }

    @Test("the session is stored under the hash of its id, renewed while used, ended when idle and by logout")
    func lifecycle() async throws {
        let (auth, clock, backend, secret) = try await Self.cluster(idle: 60)
        let created = try await auth.createWebSession(Self.login(clock, secret))
        let id = try #require(created.sessionID)
        #expect(WebSessionStore.isWellFormed(id))
        #expect(created.user == "ann" && created.roles == ["access"] && Set(created.logins) == ["ann", "root"])
        #expect(created.csrfToken.count == 64 && created.csrfToken != id)
        let stored = try await backend.getRange(prefix: "/websessions/")
        #expect(stored.count == 1)
        #expect(stored.allSatisfy { !$0.key.contains(id) && !String(decoding: $0.value, as: UTF8.self).contains(id) }, "only the hash is stored")

        // Used every 50 s for 5 minutes: still valid (each use renews the 60 s idle deadline).
        for _ in 0..<6 {
            clock.advance(by: 50)
            let seen = try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: id))
            #expect(seen.user == "ann" && seen.csrfToken == created.csrfToken && seen.sessionID == nil)
        }
        // Left alone for 61 s: over.
        clock.advance(by: 61)
        await #expect(throws: TeleportError.accessDenied("")) { try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: id)) }

        // Logout ends a valid session.
        let second = try #require(try await auth.createWebSession(Self.login(clock, secret)).sessionID)
        #expect(try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: second)).user == "ann")
        try await auth.deleteWebSession(AuthAPI.WebSessionIDRequest(sessionID: second))
        await #expect(throws: TeleportError.accessDenied("")) { try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: second)) }
        // Ids that were never issued, or are not ids at all.
        for bogus in [String(repeating: "0", count: 64), "", "../../etc", String(repeating: "A", count: 64)] {
            await #expect(throws: TeleportError.accessDenied("")) { try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: bogus)) }
        }
    }

    @Test("a password change signs the user out of every other web session; a completed reset out of all")
    func passwordChangeEndsOtherSessions() async throws {
        let (auth, clock, _, secret) = try await Self.cluster(idle: 3600)
        let here = try #require(try await auth.createWebSession(Self.login(clock, secret)).sessionID)
        let elsewhere = try #require(try await auth.createWebSession(Self.login(clock, secret)).sessionID)
        let other = try await auth.createUser(
            AuthAPI.CreateUserRequest(user: User(name: "bob", roles: ["access"], logins: ["bob"]), ttlSeconds: 3600), by: "admin")
        let bobSecret = try #require(try await auth.userToken(other.token).totpSecret.flatMap { Base32.decode($0) })
        try await auth.completeUserToken(
            AuthAPI.CompleteUserTokenRequest(
                token: other.token, password: Self.password, otpCode: TOTP.code(secret: bobSecret, step: TOTP.step(at: clock.now())),
                clientAddress: nil))
        clock.advance(by: 30)
        let bobs = try #require(
            try await auth.createWebSession(
                AuthAPI.CreateWebSessionRequest(
                    user: "bob", password: Self.password, otpCode: TOTP.code(secret: bobSecret, step: TOTP.step(at: clock.now())),
                    clientAddress: nil)
            ).sessionID)

        clock.advance(by: 30)
        try await auth.changePassword(
            user: "ann",
            AuthAPI.ChangePasswordRequest(
                currentPassword: Self.password, otpCode: TOTP.code(secret: secret, step: TOTP.step(at: clock.now())),
                newPassword: "a new and longer passphrase 8", clientAddress: nil),
            keepingWebSession: here)
        #expect(try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: here)).user == "ann", "the session that changed it stays")
        await #expect(throws: TeleportError.accessDenied("")) { try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: elsewhere)) }
        #expect(try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: bobs)).user == "bob", "another user's session is untouched")

        // A reset completed by the user (the administrator's link): no session of theirs survives.
        let reset = try await auth.resetUser("ann", ttl: 3600, by: "admin")
        let resetSecret = try #require(try await auth.userToken(reset.token).totpSecret.flatMap { Base32.decode($0) })
        try await auth.completeUserToken(
            AuthAPI.CompleteUserTokenRequest(
                token: reset.token, password: "the reset passphrase is long 9",
                otpCode: TOTP.code(secret: resetSecret, step: TOTP.step(at: clock.now())), clientAddress: nil))
        await #expect(throws: TeleportError.accessDenied("")) { try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: here)) }
        #expect(try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: bobs)).user == "bob")
    }

    @Test("a session never outlives the user's certificate lifetime, however often it is used")
    func hardEnd() async throws {
        let (auth, clock, _, secret) = try await Self.cluster(idle: 3600)
        var role = try await auth.stores.roles.get("access")
        var options = role.spec.options ?? Role.Options()
        options.maxSessionTTL = "2h0m0s"
        role.spec.options = options
        try await auth.stores.roles.upsert(role)
        let created = try await auth.createWebSession(Self.login(clock, secret))
        let id = try #require(created.sessionID)
        #expect(created.expires == clock.now().addingTimeInterval(7200))
        for _ in 0..<3 {
            clock.advance(by: 2400)
            if clock.now() < created.expires {
                let seen = try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: id))
                #expect(seen.idleExpires <= created.expires)
            }
        }
        await #expect(throws: TeleportError.accessDenied("")) { try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: id)) }
    }

    @Test("wrong codes count toward the same lockout as tsh login; a locked account gets no session")
    func lockout() async throws {
        let (auth, clock, _, secret) = try await Self.cluster()
        for _ in 0..<5 {
            let wrong = Self.login(clock, secret, code: "000000")
            await #expect(throws: TeleportError.accessDenied("")) { try await auth.createWebSession(wrong) }
        }
        #expect(try await auth.stores.users.get("ann").spec.status?.isLocked == true)
        await #expect(throws: TeleportError.accessDenied("")) { try await auth.createWebSession(Self.login(clock, secret)) }
        let wrongPassword = AuthAPI.CreateWebSessionRequest(user: "ann", password: "nope nope nope", otpCode: nil, clientAddress: nil)
        await #expect(throws: TeleportError.accessDenied("")) { try await auth.createWebSession(wrongPassword) }
    }

    @Test("only the proxy may create, check or end web sessions over the API")
    func proxyOnly() async throws {
        let (auth, clock, _, secret) = try await Self.cluster()
        let cluster = InProcessAuth(auth: auth, clock: clock)
        let proxy = try await cluster.host(.proxy, uuid: UUID().uuidString.lowercased())
        let user = try await cluster.user("ann", roles: ["access"])
        let request = Self.login(clock, secret)
        try await cluster.routes(presenting: user) { client in
            let refused = try await client.send(.post, "/v1/websessions", json: request)
            #expect(refused.status == .forbidden)
            let check = try await client.send(.post, "/v1/websessions/authenticate", json: AuthAPI.WebSessionIDRequest(sessionID: String(repeating: "0", count: 64)))
            #expect(check.status == .forbidden)
        }
        try await cluster.routes(presenting: proxy) { client in
            let created = try await client.send(.post, "/v1/websessions", json: request)
            #expect(created.status == .ok)
            let info = try ResourceCodec.jsonDecoder().decode(AuthAPI.WebSessionInfo.self, from: Data(created.body.readableBytesView))
            let id = try #require(info.sessionID)
            let checked = try await client.send(.post, "/v1/websessions/authenticate", json: AuthAPI.WebSessionIDRequest(sessionID: id))
            #expect(checked.status == .ok)
            let ended = try await client.send(.post, "/v1/websessions/delete", json: AuthAPI.WebSessionIDRequest(sessionID: id))
            #expect(ended.status == .ok)
            let gone = try await client.send(.post, "/v1/websessions/authenticate", json: AuthAPI.WebSessionIDRequest(sessionID: id))
            #expect(gone.status == .forbidden)
        }
    }

    @Test("a proxy acts for a web session's user with Teleport-Web-Session; nobody else may, and an ended session is refused")
    func actingForAWebSession() async throws {
        let (auth, clock, _, secret) = try await Self.cluster()
        let cluster = InProcessAuth(auth: auth, clock: clock)
        let proxy = try await cluster.host(.proxy, uuid: UUID().uuidString.lowercased())
        let user = try await cluster.user("bob", roles: ["access"])
        let request = Self.login(clock, secret)
        let header = try #require(HTTPFields.Element.Name(AuthAPI.webSessionHeader))
        try await cluster.routes(presenting: proxy) { client in
            let created = try await client.send(.post, "/v1/websessions", json: request)
            let id = try #require(try ResourceCodec.jsonDecoder().decode(AuthAPI.WebSessionInfo.self, from: Data(created.body.readableBytesView)).sessionID)
            let asUser = try await client.execute(uri: "/v1/ping", method: .get, headers: [header: id])
            #expect(asUser.status == .ok)
            let ping = try ResourceCodec.jsonDecoder().decode(AuthAPI.PingResponse.self, from: Data(asUser.body.readableBytesView))
            #expect(ping.identity == "ann" && ping.roles == ["access"])
            // As the user, not as the proxy: the user's roles have no rules to list roles.
            let roles = try await client.execute(uri: "/v1/resources/role", method: .get, headers: [header: id])
            #expect(roles.status == .forbidden)
            let forged = try await client.execute(uri: "/v1/ping", method: .get, headers: [header: String(repeating: "1", count: 64)])
            #expect(forged.status == .forbidden)
            _ = try await client.send(.post, "/v1/websessions/delete", json: AuthAPI.WebSessionIDRequest(sessionID: id))
            let ended = try await client.execute(uri: "/v1/ping", method: .get, headers: [header: id])
            #expect(ended.status == .forbidden)
        }
        try await cluster.routes(presenting: user) { client in
            let refused = try await client.execute(uri: "/v1/ping", method: .get, headers: [header: String(repeating: "0", count: 64)])
            #expect(refused.status == .forbidden)
            #expect(String(buffer: refused.body).contains("only a proxy may act for a web session"))
        }
    }
}
