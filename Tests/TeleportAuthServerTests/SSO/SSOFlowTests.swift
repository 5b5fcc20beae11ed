import Crypto
import Foundation
import Logging
import TeleportAPI
import TeleportBackend
import TeleportCrypto
import TeleportServices
import Synchronization
import Testing
import _CryptoExtras

@testable import TeleportAuthServer

/// The auth service's single sign-on flows in process, on a manual clock, with
/// ``TestIdentityProvider`` answering as the provider (the real Authlib provider and GitHub
/// stand-in are driven by the end-to-end tests): console and web logins, and every attack.
@Suite("single sign-on flows in the auth service")
struct SSOFlowTests {
    struct Cluster {
        let auth: AuthServer
        let clock: ManualClock
        let audit: KeptAudit
        let idp: TestIdentityProvider
    }

    static func cluster(localAuth: Bool = true) async throws -> Cluster {
        let clock = ManualClock()
        let audit = KeptAudit()
        let idp = TestIdentityProvider(now: clock.now())
        var settings = AuthSettings(bcryptCost: 4)
        settings.ssoHTTPClient = idp
        settings.localAuth = localAuth
        settings.authType = "oidc"
        settings.connectorName = "okta"
        let auth = try await AuthServer.open(
            backend: MemoryBackend(clock: clock), audit: audit, clock: clock, configuredName: "sso.cluster", settings: settings, logger: Logger(label: "test"))
        let oidc = OIDCConnector(
            name: "okta",
            spec: .init(
                issuerURL: idp.issuer, clientID: idp.clientID, clientSecret: idp.clientSecret, redirectURL: "https://proxy.example.com/v1/webapi/oidc/callback",
                scope: ["email", "groups"], claimsToRoles: [.init(claim: "groups", value: "admins", roles: ["access"])], display: "Okta"))
        try await auth.stores.put(try AnyResource(oidc), upsert: false)
        let github = GitHubConnector(
            name: "github",
            spec: .init(
                clientID: idp.clientID, clientSecret: idp.clientSecret, redirectURL: "https://proxy.example.com/v1/webapi/github/callback",
                teamsToLogins: [.init(organization: "octocats", team: "admins", logins: ["root"], kubernetesGroups: ["system:masters"])],
                endpointURL: "https://github.example.com", apiEndpointURL: "https://github.example.com/api/v3"))
        try await auth.stores.put(try AnyResource(github), upsert: false)
        return Cluster(auth: auth, clock: clock, audit: audit, idp: idp)
    }

    /// tsh's side: keys, their proof, and a callback with a fresh secret.
    struct Console {
        let ssh = Curve25519.Signing.PrivateKey()
        let tls = P256.Signing.PrivateKey()
        let secret = SSOResultSeal.makeSecret()
        var callback: String { "http://127.0.0.1:4242/callback?secret=\(secret)" }

        func request(_ kind: AuthAPI.SSOKind, connector: String, now: Date, ttl: Double = 0) throws -> AuthAPI.CreateSSORequest {
            AuthAPI.CreateSSORequest(
                kind: kind, connectorID: connector, mode: .console, sshPublicKey: SSHPublicKey.ed25519(ssh.publicKey).authorizedKeyLine(),
                tlsPublicKeyPEM: tls.publicKey.pemRepresentation, keyProof: try LoginProof.sign(purpose: .ssoLogin, user: connector, sshKey: ssh, tlsKey: tls, now: now),
                ttlSeconds: ttl, clientRedirectURL: callback)
        }

        /// Opens the result the proxy sends the browser on with.
        func open(_ result: AuthAPI.SSOCallbackResult) throws -> AuthAPI.LoginResponse {
            // The proxy checks it again before sending the browser there (it carries certificates: a few KiB).
            let url = try ConnectorURL.checkClientRedirect(try #require(result.clientRedirectURL), maxBytes: 64 * 1024)
            #expect(url.host == "127.0.0.1" && url.port == 4242 && url.path == "/callback")
            let items = url.queryItems ?? []
            #expect(!items.contains { $0.name == "secret" }, "the secret never travels back through the browser")
            let sealed = try #require(items.first { $0.name == "response" }?.value)
            let state = try #require(items.first { $0.name == "state" }?.value)
            #expect(!sealed.contains("BEGIN CERTIFICATE") && !sealed.contains("ssh-ed25519"))
            #expect(throws: TeleportError.self) { try SSOResultSeal.open(sealed, secret: SSOResultSeal.makeSecret(), state: state) }
            return try ResourceCodec.jsonDecoder().decode(AuthAPI.LoginResponse.self, from: try SSOResultSeal.open(sealed, secret: secret, state: state))
        }
    }

    /// One login through the provider: start, authorize, callback.
    static func login(_ c: Cluster, _ kind: AuthAPI.SSOKind = .oidc, connector: String = "okta", console: Console = Console()) async throws
        -> AuthAPI.SSOCallbackResult
    {
        let created = try await c.auth.createSSORequest(try console.request(kind, connector: connector, now: c.clock.now()))
        let (code, state) = try c.idp.authorize(created.redirectURL)
        return try await c.auth.completeSSOCallback(AuthAPI.SSOCallbackRequest(kind: kind, code: code, state: state, clientAddress: "198.51.100.4:1"))
    }

    /// A console login whose result tsh opens.
    @discardableResult
    static func loginOpened(_ c: Cluster) async throws -> AuthAPI.LoginResponse {
        let console = Console()
        return try console.open(try await login(c, console: console))
    }

    static func refusal(_ body: () async throws -> Void) async -> String {
        do {
            try await body()
            return "(accepted)"
        } catch let error as TeleportError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test("OIDC console login: PKCE, state and nonce; certificates sealed for tsh; an SSO user with claims as traits; audited")
    func oidcConsole() async throws {
        let c = try await Self.cluster()
        let console = Console()
        let created = try await c.auth.createSSORequest(try console.request(.oidc, connector: "okta", now: c.clock.now()))
        let url = try #require(URLComponents(string: created.redirectURL))
        let items = Dictionary(uniqueKeysWithValues: (url.queryItems ?? []).map { ($0.name, $0.value ?? "") })
        #expect(url.host == "idp.example.com" && url.path == "/authorize")
        #expect(items["response_type"] == "code" && items["client_id"] == "teleport" && items["code_challenge_method"] == "S256")
        #expect(items["scope"] == "openid email groups" && items["state"]?.count == 64 && items["nonce"]?.count == 64)
        #expect(items["redirect_uri"] == "https://proxy.example.com/v1/webapi/oidc/callback")

        let (code, state) = try c.idp.authorize(created.redirectURL)
        let result = try await c.auth.completeSSOCallback(AuthAPI.SSOCallbackRequest(kind: .oidc, code: code, state: state))
        let login = try console.open(result)
        #expect(login.username == "ann@example.com" && login.roles == ["access"])
        #expect(Set(login.logins) == ["ann", "root"], "the access role allows {{internal.logins}}, from the logins claim")
        let user = try await c.auth.stores.users.get("ann@example.com")
        #expect(user.isSSO && user.spec.createdBy?.connector == User.CreatedBy.Connector(type: "oidc", id: "okta", identity: "sub-ann"))
        #expect(user.spec.traits["external.groups"] == ["admins", "dev"] && user.spec.traits["external.department"] == ["eng"])
        #expect(try await c.auth.secrets.passwordHash("ann@example.com") == nil)
        let token = c.idp.state.withLock { $0.requests }.first { $0.url.path == "/token" }
        let body = String(decoding: token?.body ?? Data(), as: UTF8.self)
        #expect(body.contains("code_verifier=") && body.contains("client_secret=s3cret"), "client_secret_post, as the discovery document offers")
        let events = c.audit.all.filter { $0.event == "user.login" }
        #expect(events.count == 1 && events[0].fields["method"] == "oidc" && events[0].fields["success"] == true)

        // The same callback again (a replayed state and code): refused, audited.
        let replay = await Self.refusal { _ = try await c.auth.completeSSOCallback(AuthAPI.SSOCallbackRequest(kind: .oidc, code: code, state: state)) }
        #expect(replay.contains("already used"))
        let unknown = await Self.refusal {
            _ = try await c.auth.completeSSOCallback(AuthAPI.SSOCallbackRequest(kind: .oidc, code: code, state: String(repeating: "0", count: 64)))
        }
        #expect(unknown.contains("unknown or expired login state"))
        #expect(c.audit.all.filter { $0.event == "user.login" && $0.fields["success"] == false }.count == 2)
    }

    @Test("a request expires after 10 minutes; a github state is not an oidc callback")
    func expiryAndKind() async throws {
        let c = try await Self.cluster()
        let created = try await c.auth.createSSORequest(try Console().request(.oidc, connector: "okta", now: c.clock.now()))
        let (code, state) = try c.idp.authorize(created.redirectURL)
        let wrongKind = await Self.refusal { _ = try await c.auth.completeSSOCallback(AuthAPI.SSOCallbackRequest(kind: .github, code: code, state: state)) }
        #expect(wrongKind.contains("belongs to a oidc connector"))
        c.clock.advance(by: 601)
        let late = await Self.refusal { _ = try await c.auth.completeSSOCallback(AuthAPI.SSOCallbackRequest(kind: .oidc, code: code, state: state)) }
        #expect(late.contains("expired") || late.contains("unknown"))
    }

    @Test("refused: a foreign or non-loopback tsh callback, a missing secret, a proof for another connector")
    func consoleChecks() async throws {
        let c = try await Self.cluster()
        let console = Console()
        for bad in ["http://evil.example.com:4242/callback?secret=\(console.secret)", "https://127.0.0.1:4242/cb?secret=\(console.secret)", "http://127.0.0.1:4242/cb"] {
            var request = try console.request(.oidc, connector: "okta", now: c.clock.now())
            request.clientRedirectURL = bad
            let reason = await Self.refusal { _ = try await c.auth.createSSORequest(request) }
            #expect(reason.contains("client_redirect_url"), "\(bad): \(reason)")
        }
        var request = try console.request(.oidc, connector: "github", now: c.clock.now())
        request.connectorID = "okta"
        #expect(await Self.refusal { _ = try await c.auth.createSSORequest(request) } != "(accepted)")
        let missing = await Self.refusal { _ = try await c.auth.createSSORequest(try console.request(.oidc, connector: "nope", now: c.clock.now())) }
        #expect(missing.contains("no oidc connector named \"nope\""))
    }

    @Test("a discovery document naming another issuer is refused, naming both")
    func issuerMismatch() async throws {
        let c = try await Self.cluster()
        c.idp.state.withLock { $0.discoveryIssuer = "https://evil.example.com" }
        let reason = await Self.refusal { _ = try await Self.login(c) }
        #expect(reason.contains("https://evil.example.com") && reason.contains("https://idp.example.com"))
    }

    @Test("a user in no mapped group is refused, naming the connector; audited with the reason")
    func noRole() async throws {
        let c = try await Self.cluster()
        c.idp.state.withLock { $0.claims["groups"] = ["contractors"] }
        let reason = await Self.refusal { _ = try await Self.login(c) }
        #expect(reason.contains("oidc connector okta") && reason.contains("claims_to_roles"))
        let failure = try #require(c.audit.all.last { $0.event == "user.login" })
        #expect(failure.fields["success"] == false && failure.fields["method"] == "oidc" && failure.fields["error"]?.stringValue?.contains("claims_to_roles") == true)
        #expect((try? await c.auth.stores.users.get("ann@example.com")) == nil)
    }

    @Test("JWKS rotation: a new key is fetched once and accepted; a dropped key stops verifying")
    func rotation() async throws {
        let c = try await Self.cluster()
        try await Self.loginOpened(c)
        #expect(c.idp.state.withLock { $0.jwksFetches } == 1)
        try await Self.loginOpened(c)
        #expect(c.idp.state.withLock { $0.jwksFetches } == 1, "the keys are cached")
        c.clock.advance(by: 30)
        c.idp.state.withLock {
            $0.issuedAt = c.clock.now()
            $0.signingKey = TestIdentityProvider.otherRSAKey
            $0.kid = "key-2"
            $0.publishedKeys = [("key-2", TestIdentityProvider.otherRSAKey.publicKey)]
        }
        try await Self.loginOpened(c)
        #expect(c.idp.state.withLock { $0.jwksFetches } == 2)
        // A token signed with the dropped key: the cached set lacks it, a refetch too.
        c.clock.advance(by: 30)
        c.idp.state.withLock {
            $0.issuedAt = c.clock.now()
            $0.signingKey = TestIdentityProvider.rsaKey
            $0.kid = "key-1"
        }
        let reason = await Self.refusal { _ = try await Self.login(c) }
        #expect(reason.contains("unknown key") || reason.contains("does not publish"), "\(reason)")
        // Unknown keys refetch at most every 10 s.
        let fetches = c.idp.state.withLock { $0.jwksFetches }
        _ = await Self.refusal { _ = try await Self.login(c) }
        #expect(c.idp.state.withLock { $0.jwksFetches } == fetches)
    }

    @Test("an expired ID token and a 10 MB claim are refused cleanly")
    func expiredAndHuge() async throws {
        let c = try await Self.cluster()
        c.idp.state.withLock { $0.issuedAt = c.clock.now().addingTimeInterval(-3600) }
        #expect(await Self.refusal { _ = try await Self.login(c) }.contains("expired"))
        c.idp.state.withLock {
            $0.issuedAt = c.clock.now()
            $0.idTokenExtra = ["huge": String(repeating: "x", count: 10 * 1024 * 1024)]
        }
        #expect(await Self.refusal { _ = try await Self.login(c) }.contains("larger than"))
    }

    @Test("web login: a web session like the password login's, back to the same-origin path")
    func web() async throws {
        let c = try await Self.cluster()
        let created = try await c.auth.createSSORequest(AuthAPI.CreateSSORequest(kind: .oidc, connectorID: "okta", mode: .web, redirectURL: "/web/nodes"))
        let (code, state) = try c.idp.authorize(created.redirectURL)
        let result = try await c.auth.completeSSOCallback(AuthAPI.SSOCallbackRequest(kind: .oidc, code: code, state: state))
        #expect(result.mode == .web && result.redirectURL == "/web/nodes" && result.clientRedirectURL == nil)
        let id = try #require(result.webSession?.sessionID)
        let seen = try await c.auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: id))
        #expect(seen.user == "ann@example.com" && seen.roles == ["access"])
        for bad in ["//evil.example.com/", "https://evil.example.com/web"] {
            let reason = await Self.refusal {
                _ = try await c.auth.createSSORequest(AuthAPI.CreateSSORequest(kind: .oidc, connectorID: "okta", mode: .web, redirectURL: bad))
            }
            #expect(reason.contains("redirect_url must be a path"))
        }
    }

    @Test("GitHub: read:org, teams from the API map to logins; a user in no mapped team is refused")
    func github() async throws {
        let c = try await Self.cluster()
        let console = Console()
        let created = try await c.auth.createSSORequest(try console.request(.github, connector: "github", now: c.clock.now()))
        let url = try #require(URLComponents(string: created.redirectURL))
        #expect(url.host == "github.example.com" && url.path == "/login/oauth/authorize")
        #expect(url.queryItems?.first { $0.name == "scope" }?.value == "read:org")
        let (code, state) = try c.idp.authorize(created.redirectURL)
        let login = try console.open(try await c.auth.completeSSOCallback(AuthAPI.SSOCallbackRequest(kind: .github, code: code, state: state)))
        #expect(login.username == "octo-ann" && login.logins == ["root"])
        let user = try await c.auth.stores.users.get("octo-ann")
        #expect(user.spec.traits["github_teams"] == ["octocats/admins"] && user.spec.traits["kubernetes_groups"] == ["system:masters"])
        let teams = c.idp.state.withLock { $0.requests }.filter { $0.url.path == "/api/v3/user/teams" }
        #expect(teams.count == 1 && teams[0].headers.contains { $0.0 == "Authorization" && $0.1.hasPrefix("token gho-") })
        #expect(c.audit.all.last { $0.event == "user.login" }?.fields["method"] == "github")

        c.idp.state.withLock { $0.githubTeams = [("octocats", "interns")] }
        let reason = await Self.refusal { _ = try await Self.login(c, .github, connector: "github") }
        #expect(reason.contains("github connector github") && reason.contains("teams_to_logins"))
    }

    @Test("local_auth: false refuses password logins server-side, naming the setting; audited")
    func localAuthOff() async throws {
        let c = try await Self.cluster(localAuth: false)
        let reason = await Self.refusal {
            _ = try await c.auth.createWebSession(AuthAPI.CreateWebSessionRequest(user: "ann", password: "x", otpCode: nil, clientAddress: nil))
        }
        #expect(reason.contains("local_auth: false"))
        let failure = try #require(c.audit.all.last { $0.event == "user.login" })
        #expect(failure.fields["success"] == false && failure.fields["method"] == "local")
        let preference = try await c.auth.authPreference()
        #expect(!preference.localAuth && preference.type == "oidc" && preference.connectorName == "okta")
        #expect(preference.connectors == [.init(name: "okta", kind: "oidc", display: "Okta"), .init(name: "github", kind: "github", display: "github")])
    }

    @Test("single sign-on never takes over a local user")
    func noTakeover() async throws {
        let c = try await Self.cluster()
        _ = try await c.auth.createUser(
            AuthAPI.CreateUserRequest(user: User(name: "ann@example.com", roles: ["access"], logins: ["ann"]), ttlSeconds: 3600), by: "admin")
        let reason = await Self.refusal { _ = try await Self.login(c) }
        #expect(reason.contains("a local user named ann@example.com exists"))
    }
}
