import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Single sign-on end to end, against real parts: one cluster (our `teleport`, `tctl`, `tsh`), a real
/// OpenID Connect provider built with Authlib (`Tests/fixtures/oidc_provider.py`, via
/// ``OIDCProviderFixture``) and a GitHub stand-in (`Tests/fixtures/github_standin.py`, via
/// ``GitHubStandInFixture``: GitHub itself cannot be reached from the test machines, so the connector's
/// `endpoint_url`/`api_endpoint_url` point at it), with logins completed in Debian's chromium by
/// Playwright (`Tests/browser/sso_login.py`). The cluster and both providers are shared by the suite's
/// tests (``SSOEnvironment``); each attack switches the provider's mode and restores it.
@Suite(
    "single sign-on end to end (OIDC provider, GitHub stand-in, chromium)", .serialized, SSOEnvironment.Scope(),
    .enabled(
        if: SSOEnvironment.missing == nil,
        "needs python3 with Authlib, Flask, requests and playwright, and /usr/bin/chromium (scripts/install-test-deps.sh)"))
struct SSOLoginTests {
    var env: SSOEnvironment {
        get throws { try #require(SSOEnvironment.current, "the suite's SSO environment did not start") }
    }

    // MARK: The flows

    @Test("tsh login --auth=oidc --browser=none completed in chromium, then tsh ssh with a login from a claim")
    func oidcLoginThenSSH() async throws {
        let env = try env
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        let attempt = try await env.tshLogin(tsh, connector: SSOEnvironment.oidcConnector, user: "alice", password: SSOEnvironment.alicePassword)
        #expect(attempt.tsh.exitCode == 0, "\(attempt)")
        #expect(attempt.driver.stdout.contains("ok: tsh's callback page says the login succeeded"), "\(attempt)")
        let status = try await tsh.run(["status"])
        #expect(status.stdout.contains("alice@example.com") && status.stdout.contains("root"), "\(status)")
        let ssh = try await tsh.run(["ssh", "root@testnode", "echo sso-ssh-$((6*7))"])
        #expect(ssh.exitCode == 0 && ssh.stdout.contains("sso-ssh-42"), "\(ssh)\n\(env.cluster.log.suffix(3000))")
        // The provider saw PKCE (S256), a nonce and a state, and a confidential client at /token.
        let events = try await env.oidc.events()
        let authorize = events.last { $0["event"] as? String == "authorize" }
        #expect(authorize?["code_challenge_method"] as? String == "S256", "\(String(describing: authorize))")
        #expect(authorize?["has_nonce"] as? Bool == true && authorize?["has_state"] as? Bool == true, "\(String(describing: authorize))")
        let token = events.last { $0["event"] as? String == "token" }
        #expect(token?["has_code_verifier"] as? Bool == true, "\(String(describing: token))")
        #expect(["client_secret_post", "client_secret_basic"].contains(token?["client_auth_method"] as? String ?? ""), "\(String(describing: token))")
        // The SSO user exists, of type SSO, and the login is audited with its method.
        let user = try await env.cluster.tctl(["get", "users/alice@example.com"])
        #expect(user.exitCode == 0 && user.stdout.contains("okta"), "\(user)")
        #expect(!user.stdout.contains("password"), "an SSO user has no password: \(user)")
        let audit = try SignupHelper.auditLog(env.cluster)
        #expect(audit.contains("user.login") && audit.contains("oidc"), "\(audit.suffix(3000))")
    }

    @Test("tsh login --auth=github (the stand-in) in chromium, then tsh ssh with a login from teams_to_logins")
    func gitHubLoginThenSSH() async throws {
        let env = try env
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        let attempt = try await env.tshLogin(tsh, connector: SSOEnvironment.githubConnector, user: "octocat", password: SSOEnvironment.octocatPassword)
        #expect(attempt.tsh.exitCode == 0, "\(attempt)")
        let ssh = try await tsh.run(["ssh", "root@testnode", "echo github-ssh-ok"])
        #expect(ssh.exitCode == 0 && ssh.stdout.contains("github-ssh-ok"), "\(ssh)\n\(env.cluster.log.suffix(3000))")
        let events = try await env.github.events()
        #expect(events.contains { $0["event"] as? String == "api_teams" && $0["login"] as? String == "octocat" }, "\(events)")
        #expect(events.contains { $0["event"] as? String == "authorize" && ($0["scope"] as? String ?? "").contains("read:org") }, "\(events)")
        let user = try await env.cluster.tctl(["get", "users/octocat"])
        #expect(user.exitCode == 0 && user.stdout.contains("acme/admins"), "github_teams trait: \(user)")
    }

    @Test("the web UI's SSO button logs a user in (chromium): /web/ 'Signed in as', the session cookie works")
    func webButton() async throws {
        let env = try env
        let result = try await env.driver([
            "--url", "https://127.0.0.1:\(env.cluster.webPort)", "--web-connector", SSOEnvironment.oidcConnector, "--user", "alice",
            "--password", SSOEnvironment.alicePassword, "--expect-user", "alice@example.com",
        ])
        #expect(result.exitCode == 0, "\(result)\n\(env.cluster.log.suffix(3000))")
        #expect(result.stdout.contains("ok: the login page shows the button 'Sign in with Test IdP'"), "\(result)")
        #expect(result.stdout.contains("ok: signed in as alice@example.com on /web/"), "\(result)")
        #expect(result.stdout.contains("ok: the session cookie works"), "\(result)")
        let github = try await env.driver([
            "--url", "https://127.0.0.1:\(env.cluster.webPort)", "--web-connector", SSOEnvironment.githubConnector, "--user", "octocat",
            "--password", SSOEnvironment.octocatPassword, "--expect-user", "octocat",
        ])
        #expect(github.exitCode == 0, "\(github)")
    }

    @Test("a user outside the mapped group is refused, with a message naming the connector and the missing mapping")
    func outsideMappedGroup() async throws {
        let env = try env
        let attempt = try await env.refusedLogin(connector: SSOEnvironment.oidcConnector, user: "bob", password: SSOEnvironment.bobPassword)
        #expect(attempt.says(any: ["claims_to_roles"]), "\(attempt)")
        #expect(attempt.says(any: [SSOEnvironment.oidcConnector]), "\(attempt)")
        let user = try await env.cluster.tctl(["get", "users/bob@example.com"])
        #expect(user.exitCode != 0, "no user record for a refused login: \(user)")
    }

    @Test("a GitHub user in no mapped team is refused")
    func gitHubUserInNoTeam() async throws {
        let env = try env
        let attempt = try await env.refusedLogin(connector: SSOEnvironment.githubConnector, user: "loner", password: SSOEnvironment.lonerPassword)
        #expect(attempt.says(any: ["no teams_to_logins or teams_to_roles team matched", "teams_to_logins"]), "\(attempt)")
    }

    // MARK: Attacks: callbacks and state

    @Test("a client callback to a foreign host or plain http off loopback is refused; so is such a connector redirect_url")
    func foreignCallbacks() async throws {
        let env = try env
        for callback in ["https://evil.example/callback?secret=x", "http://evil.example:8080/callback", "http://10.0.0.1:4000/callback"] {
            let reply = try await env.consoleLogin(connector: SSOEnvironment.oidcConnector, clientRedirectURL: callback)
            #expect((400..<500).contains(reply.status), "\(callback): \(reply)")
            #expect(reply.body.contains("client_redirect_url"), "\(callback): \(reply)")
        }
        for redirect in ["http://evil.example/v1/webapi/oidc/callback", "ftp://127.0.0.1/v1/webapi/oidc/callback"] {
            let file = env.cluster.directory.appendingPathComponent("bad-connector.yaml")
            try TestSupport.write(env.oidcConnectorYAML(name: "bad-redirect", issuer: env.oidc.issuerURL, redirectURL: redirect), to: file)
            let created = try await env.cluster.tctl(["create", file.path])
            #expect(created.exitCode != 0 && created.stderr.contains("redirect_url"), "\(redirect): \(created)")
        }
    }

    @Test("a callback with a wrong state, or a state replayed, is refused; the right one once is accepted")
    func wrongAndReplayedState() async throws {
        let env = try env
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        let held = try await env.heldCallback(tsh, connector: SSOEnvironment.oidcConnector, user: "alice", password: SSOEnvironment.alicePassword)
        var tshExit: Int32?
        do {
            var wrong = try #require(URLComponents(string: held.callback))
            wrong.queryItems = wrong.queryItems?.map { $0.name == "state" ? URLQueryItem(name: "state", value: "x" + ($0.value ?? "")) : $0 }
            let tampered = try await env.get(try #require(wrong.url?.absoluteString))
            #expect(!tampered.redirectsToLoopbackClient && tampered.status >= 400, "a wrong state: \(tampered)")
            let first = try await env.get(held.callback)
            #expect(first.redirectsToLoopbackClient, "the right state once: \(first)")
            let replayed = try await env.get(held.callback)
            #expect(!replayed.redirectsToLoopbackClient && replayed.status >= 400, "the same state again: \(replayed)")
            // tsh gets its result from the first redirect only.
            if let location = first.location {
                _ = try await TestSupport.run("/usr/bin/curl", ["-s", "-m", "10", "-o", "/dev/null", location])
            }
            tshExit = await TestSupport.reap(held.pid, killAfter: .seconds(20))
        } catch {
            _ = await TestSupport.stopDaemon(held.pid)
            throw error
        }
        #expect(tshExit == 0, "tsh finished with the first callback")
    }

    @Test("a web login's callback without the browser's state cookie is refused")
    func webStateCookie() async throws {
        let env = try env
        let result = try await env.driver([
            "--url", "https://127.0.0.1:\(env.cluster.webPort)", "--web-connector", SSOEnvironment.oidcConnector, "--user", "alice",
            "--password", SSOEnvironment.alicePassword, "--capture-callback",
        ])
        let callback = try #require(result.callbackURL, "\(result)")
        let reply = try await env.get(callback)
        #expect(reply.status >= 400 && !reply.setsSessionCookie, "\(reply)")
    }

    @Test("an authorization code used twice is refused (by the provider, and by the proxy's one-time state)")
    func codeUsedTwice() async throws {
        let env = try env
        // A code the provider would accept twice: the proxy's one-time state still refuses the replay.
        try await env.oidc.setMode(.reuseCodes)
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        do {
            try await env.withHeldCallback(tsh, connector: SSOEnvironment.oidcConnector, user: "alice", password: SSOEnvironment.alicePassword) { held in
                let first = try await env.get(held.callback)
                #expect(first.redirectsToLoopbackClient, "\(first)")
                let again = try await env.get(held.callback)
                #expect(!again.redirectsToLoopbackClient && again.status >= 400, "\(again)")
            }
            try await env.oidc.setMode(.normal)
        } catch {
            try? await env.oidc.setMode(.normal)
            throw error
        }
        // A used code under another login's state: the provider refuses it and so does the cluster.
        let second = try TSHRunner()
        defer { second.cleanUp() }
        let third = try TSHRunner()
        defer { third.cleanUp() }
        try await env.withHeldCallback(second, connector: SSOEnvironment.oidcConnector, user: "alice", password: SSOEnvironment.alicePassword) { used in
            let accepted = try await env.get(used.callback)
            #expect(accepted.redirectsToLoopbackClient, "\(accepted)")
            try await env.withHeldCallback(third, connector: SSOEnvironment.oidcConnector, user: "alice", password: SSOEnvironment.alicePassword) { other in
                var mixed = try #require(URLComponents(string: other.callback))
                let usedCode = URLComponents(string: used.callback)?.queryItems?.first { $0.name == "code" }?.value
                mixed.queryItems = mixed.queryItems?.map { $0.name == "code" ? URLQueryItem(name: "code", value: usedCode) : $0 }
                let reused = try await env.get(try #require(mixed.url?.absoluteString))
                #expect(!reused.redirectsToLoopbackClient && reused.status >= 400, "\(reused)")
            }
        }
        let events = try await env.oidc.events()
        #expect(events.contains { $0["event"] as? String == "token_refused" }, "the provider saw the used code: \(events.suffix(5))")
    }

    // MARK: Attacks: ID tokens

    @Test("an ID token with alg none is refused")
    func algNone() async throws {
        try await refusedInMode(.algNone, reasons: [#"algorithm "none" is refused"#])
    }

    @Test("an ID token signed by an unknown key is refused")
    func unknownKey() async throws {
        try await refusedInMode(.unknownKey, reasons: ["signature does not verify", "unknown key"])
    }

    @Test("an ID token for another audience is refused")
    func otherAudience() async throws {
        try await refusedInMode(.audience, reasons: ["for audience"])
    }

    @Test("an expired ID token is refused")
    func expired() async throws {
        try await refusedInMode(.expired, reasons: ["expired at"])
    }

    @Test("an ID token with a wrong nonce is refused")
    func wrongNonce() async throws {
        try await refusedInMode(.nonce, reasons: ["nonce does not match"])
    }

    @Test("a replayed ID token (an earlier login's) is refused")
    func replayedIDToken() async throws {
        let env = try env
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        let good = try await env.tshLogin(tsh, connector: SSOEnvironment.oidcConnector, user: "alice", password: SSOEnvironment.alicePassword)
        #expect(good.tsh.exitCode == 0, "\(good)")
        try await refusedInMode(.replay, reasons: ["nonce does not match", "replay", "already used"])
    }

    @Test("a 10 MB claim is refused with bounded memory; the cluster keeps serving")
    func hugeClaim() async throws {
        let env = try env
        try await refusedInMode(.bigClaim, reasons: ["exceeds", "larger than"])
        #expect(try await env.cluster.diag("readyz").status == 200)
    }

    @Test("a provider JWKS that rotates: the new key is accepted, the old one is dropped")
    func jwksRotation() async throws {
        let env = try env
        let old = try await env.oidc.publishedKeyIDs()
        let kid = try await env.oidc.rotateKeys()
        #expect(try await env.oidc.publishedKeyIDs() == [kid] && !old.contains(kid))
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        let attempt = try await env.tshLogin(tsh, connector: SSOEnvironment.oidcConnector, user: "alice", password: SSOEnvironment.alicePassword)
        #expect(attempt.tsh.exitCode == 0, "a token signed by the new key: \(attempt)\n\(env.cluster.log.suffix(2000))")
        let issued = try await env.oidc.events().last { $0["event"] as? String == "id_token" }
        #expect(issued?["kid"] as? String == kid, "\(String(describing: issued))")
    }

    @Test("a connector whose issuer's discovery document names another issuer is refused")
    func discoveryNamesAnotherIssuer() async throws {
        let env = try env
        try await OIDCProviderFixture.with(clients: [env.oidcClient], users: env.oidcUsers) { other in
            try await other.setMode(.otherIssuer)
            let file = env.cluster.directory.appendingPathComponent("other-issuer.yaml")
            try TestSupport.write(env.oidcConnectorYAML(name: "other-issuer", issuer: other.issuerURL), to: file)
            let created = try await env.cluster.tctl(["create", file.path])
            if created.exitCode != 0 {
                // Refused when created (discovery checked up front).
                print("SSOLoginTests other_issuer: tctl create refused: \(created.stderr.prefix(400))")
                #expect(created.stderr.contains("names the issuer"), "\(created)")
                return
            }
            // The proxy lists connectors from a short-lived cache: wait until /webapi/ping names it.
            let web = WebDriver(cluster: env.cluster)
            var listed = false
            let deadline = ContinuousClock.now + .seconds(20)
            while !listed && ContinuousClock.now < deadline {
                listed = try await web.request("/webapi/ping").body.contains("other-issuer")
                if !listed { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(listed, "/webapi/ping lists the new connector")
            let attempt = try await env.refusedLogin(connector: "other-issuer", user: "alice", password: SSOEnvironment.alicePassword)
            print("SSOLoginTests other_issuer: \(attempt.refusal.prefix(400))")
            #expect(attempt.says(any: ["names the issuer"]), "\(attempt)")
            let events = try await other.events()
            #expect(!events.contains { $0["event"] as? String == "token" }, "no code was exchanged with that provider: \(events)")
        }
    }

    @Test("password login is refused server-side while local_auth is false (web form, the login API and tsh)")
    func localAuthDisabled() async throws {
        try await withCluster(
            try ClusterFixture(clusterName: "nolocal.example", authSection: "  authentication:\n    type: local\n    local_auth: false")
        ) { cluster in
            try await cluster.start()
            let web = WebDriver(cluster: cluster)
            let form = try await web.request("/webapi/sessions", form: ["user": "admin", "password": "whatever-1234", "otp_code": "123456"])
            #expect([401, 403].contains(form.status) && form.body.contains("local_auth"), "\(form)")
            let api = try await web.request(
                "/webapi/ssh/certs",
                raw: #"{"user":"admin","password":"whatever-1234","otp_code":"123456","ssh_public_key":"","tls_public_key":"","ttl_seconds":3600}"#,
                contentType: "application/json")
            #expect(api.status == 403 && api.body.contains("local_auth"), "\(api)")
            let tsh = try TSHRunner()
            defer { tsh.cleanUp() }
            let login = try await tsh.run(["login", "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure", "--user=admin", "--auth=local"])
            #expect(login.exitCode != 0 && login.stderr.contains("local_auth"), "\(login)")
            let audit = try SignupHelper.auditLog(cluster)
            #expect(audit.contains("user.login"), "a refused password login is audited: \(audit.suffix(2000))")
        }
    }

    /// Sets `mode`, expects an OIDC login to be refused after the provider issued its (bad) ID token,
    /// and restores the normal mode.
    func refusedInMode(_ mode: OIDCProviderFixture.Mode, reasons: [String]) async throws {
        let env = try env
        try await env.oidc.setMode(mode)
        do {
            let attempt = try await env.refusedLogin(connector: SSOEnvironment.oidcConnector, user: "alice", password: SSOEnvironment.alicePassword)
            print("SSOLoginTests \(mode.rawValue): \(attempt.refusal.prefix(400))")
            #expect(attempt.says(any: reasons), "the refusal names the cause (\(reasons)): \(attempt)")
            let issued = try await env.oidc.events().last { $0["event"] as? String == "id_token" }
            #expect(issued?["mode"] as? String == mode.rawValue, "the provider issued the \(mode) token: \(String(describing: issued))")
            try await env.oidc.setMode(.normal)
        } catch {
            try? await env.oidc.setMode(.normal)
            throw error
        }
        #expect(try await env.cluster.diag("readyz").status == 200)
    }
}

// MARK: - The shared environment

/// One cluster, one OIDC provider and one GitHub stand-in for the whole suite, started by the suite's
/// ``Scope`` trait before its first test and stopped after its last.
final class SSOEnvironment: @unchecked Sendable {
    static let oidcConnector = "okta"
    static let githubConnector = "github"
    static let alicePassword = "alice-pw-4471"
    static let bobPassword = "bob-pw-9012"
    static let octocatPassword = "octo-pw-3318"
    static let lonerPassword = "loner-pw-2290"
    static let clientSecret = "oidc-client-secret-5d1c"
    static let githubSecret = "github-client-secret-77ae"

    @TaskLocal static var current: SSOEnvironment?

    /// Why the suite cannot run here, or nil.
    static let missing: String? = PythonFixtureServer.missing ?? WebBrowserTests.missing

    let cluster: ClusterFixture
    let oidc: OIDCProviderFixture
    let github: GitHubStandInFixture

    init(cluster: ClusterFixture, oidc: OIDCProviderFixture, github: GitHubStandInFixture) {
        self.cluster = cluster
        self.oidc = oidc
        self.github = github
    }

    var redirectURL: String { "https://127.0.0.1:\(cluster.webPort)/v1/webapi/oidc/callback" }
    var githubRedirectURL: String { "https://127.0.0.1:\(cluster.webPort)/v1/webapi/github/callback" }
    var oidcClient: OIDCProviderFixture.Client { .init(id: "teleport", secret: Self.clientSecret, redirectURIs: [redirectURL]) }

    var oidcUsers: [OIDCProviderFixture.User] {
        [
            .init("alice", password: Self.alicePassword, claims: ["email": "alice@example.com", "groups": ["admins", "staff"], "logins": ["root"]]),
            .init("bob", password: Self.bobPassword, claims: ["email": "bob@example.com", "groups": ["interns"], "logins": ["root"]]),
        ]
    }

    static let rolesYAML = """
        kind: role
        version: v7
        metadata:
          name: sso-claims
        spec:
          allow:
            logins: ['{{external.logins}}']
            node_labels: {'*': '*'}

        """

    func oidcConnectorYAML(name: String, issuer: String, redirectURL: String? = nil) -> String {
        """
        kind: oidc
        version: v3
        metadata:
          name: \(name)
        spec:
          display: Test IdP
          issuer_url: \(issuer)
          client_id: teleport
          client_secret: \(Self.clientSecret)
          redirect_url: \(redirectURL ?? self.redirectURL)
          scope: [openid, email, groups]
          claims_to_roles:
            - claim: groups
              value: admins
              roles: [sso-claims]

        """
    }

    var githubConnectorYAML: String {
        """
        kind: github
        version: v3
        metadata:
          name: \(Self.githubConnector)
        spec:
          display: GitHub
          client_id: gh-client
          client_secret: \(Self.githubSecret)
          redirect_url: \(githubRedirectURL)
          endpoint_url: \(github.url)
          api_endpoint_url: \(github.url)
          teams_to_logins:
            - organization: acme
              team: admins
              logins: [root]

        """
    }

    /// Starts everything: providers first (their URLs go into the connectors), then the cluster, then
    /// the roles and connectors.
    static func start() async throws -> SSOEnvironment {
        let cluster = try ClusterFixture(clusterName: "sso.example")
        let oidc = try await OIDCProviderFixture.start(clients: [], users: [])
        let github: GitHubStandInFixture
        do {
            github = try await GitHubStandInFixture.start(clients: [], users: [])
        } catch {
            await oidc.stop()
            throw error
        }
        let env = SSOEnvironment(cluster: cluster, oidc: oidc, github: github)
        do {
            try await oidc.configure(clients: [env.oidcClient], users: env.oidcUsers)
            try await github.configure(
                clients: [.init(id: "gh-client", secret: githubSecret, redirectURIs: [env.githubRedirectURL])],
                users: [
                    .init("octocat", password: octocatPassword, id: 583231, teams: [.init(organization: "acme", slug: "admins")]),
                    .init("loner", password: lonerPassword, id: 9, teams: [.init(organization: "other-org", slug: "everyone")]),
                ])
            try await cluster.start()
            let file = cluster.directory.appendingPathComponent("sso-resources.yaml")
            try TestSupport.write(
                rolesYAML + "---\n" + env.oidcConnectorYAML(name: oidcConnector, issuer: oidc.issuerURL) + "---\n" + env.githubConnectorYAML,
                to: file)
            let created = try await cluster.tctl(["create", file.path])
            guard created.exitCode == 0 else { throw TestSupportError("tctl create (roles and connectors) failed: \(created)") }
        } catch {
            await env.stop()
            throw error
        }
        return env
    }

    func stop() async {
        await cluster.cleanUp()
        await oidc.stop()
        await github.stop()
    }

    /// The suite trait that starts the environment once around all of the suite's tests.
    struct Scope: SuiteTrait, TestScoping {
        var isRecursive: Bool { false }

        func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
            guard SSOEnvironment.missing == nil else { return try await function() }
            let env = try await SSOEnvironment.start()
            do {
                try await SSOEnvironment.$current.withValue(env) { try await function() }
                await env.stop()
            } catch {
                await env.stop()
                throw error
            }
        }
    }

    // MARK: Driving logins

    /// What a login attempt produced: tsh's output and the browser driver's.
    struct Attempt: CustomStringConvertible {
        var tsh: CommandResult
        var driver: CommandResult
        var description: String { "tsh: \(tsh)\n--- browser: \(driver)" }
        /// Why the login failed: the text of the page the browser ended on (the proxy's "Login failed"
        /// page, or the provider's error), else tsh's output after the URL line.
        var refusal: String {
            let lines = driver.stdout.split(separator: "\n")
            if let page = lines.first(where: { $0.hasPrefix("text: ") || $0.hasPrefix("provider-error: ") }) { return String(page) }
            return (tsh.stdout + tsh.stderr).split(separator: "\n").filter { !$0.contains("Open this URL") }.joined(separator: "\n")
        }
        /// True when ``refusal`` mentions one of `words` (any case).
        func says(any words: [String]) -> Bool {
            let text = refusal.lowercased()
            return words.contains { text.contains($0.lowercased()) }
        }
    }

    /// `python3 Tests/browser/sso_login.py ARGS`.
    func driver(_ arguments: [String]) async throws -> CommandResult {
        let script = PythonFixtureServer.fixturesDirectory.deletingLastPathComponent().appendingPathComponent("browser")
            .appendingPathComponent("sso_login.py").path
        return try await TestSupport.runBrowser("/usr/bin/env", ["python3", script] + arguments, timeout: .seconds(90))
    }

    /// `tsh login --auth=CONNECTOR --browser=none` in the background; returns its PID and output file
    /// once it printed the URL (or exited).
    func startTSHLogin(_ tsh: TSHRunner, connector: String) async throws -> (pid: pid_t, output: URL, url: String?) {
        let output = tsh.home.appendingPathComponent("login-\(UUID().uuidString).out")
        let pid = try TestSupport.spawnDaemon(
            try ClusterFixture.binary("tsh"),
            ["login", "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure", "--auth=\(connector)", "--browser=none"],
            logPath: output.path, environment: tsh.environment)
        let marker = "Open this URL in a browser to log in: "
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains(marker) }),
                let range = line.range(of: marker)
            {
                return (pid, output, String(line[range.upperBound...]).trimmingCharacters(in: .whitespaces))
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { return (-1, output, nil) }
            try await Task.sleep(for: .milliseconds(50))
        }
        _ = await TestSupport.stopDaemon(pid)
        throw TestSupportError("tsh login printed no URL in 30 s: \((try? String(contentsOf: output, encoding: .utf8)) ?? "")")
    }

    /// A whole `tsh login` completed (or not) in the browser. tsh gets `tshWait` after the browser is
    /// done to finish; then it is stopped.
    func tshLogin(
        _ tsh: TSHRunner, connector: String, user: String, password: String, expect: String = "success", tshWait: Duration = .seconds(20)
    ) async throws -> Attempt {
        let started = try await startTSHLogin(tsh, connector: connector)
        guard let url = started.url, started.pid > 0 else {
            let text = (try? String(contentsOf: started.output, encoding: .utf8)) ?? ""
            return Attempt(tsh: CommandResult(exitCode: 1, stdout: "", stderr: text), driver: CommandResult(exitCode: -1, stdout: "", stderr: "not run"))
        }
        let driver = try await driver(["--url", url, "--user", user, "--password", password, "--expect", expect])
        let exit = await TestSupport.reap(started.pid, killAfter: tshWait)
        let text = (try? String(contentsOf: started.output, encoding: .utf8)) ?? ""
        return Attempt(tsh: CommandResult(exitCode: exit, stdout: "", stderr: text), driver: driver)
    }

    /// A login that must fail: the browser does not reach "Login successful" and tsh does not log in.
    func refusedLogin(connector: String, user: String, password: String) async throws -> Attempt {
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        let attempt = try await tshLogin(tsh, connector: connector, user: user, password: password, expect: "failure", tshWait: .seconds(1))
        #expect(attempt.tsh.exitCode != 0, "tsh did not log in: \(attempt)")
        #expect(!attempt.driver.stdout.contains("heading: Login successful"), "\(attempt)")
        let status = try await tsh.run(["status"])
        #expect(!status.stdout.contains("Logged in as"), "\(status)")
        return attempt
    }

    /// Starts `tsh login`, signs in on the provider in the browser and holds back the browser's request
    /// to the proxy's callback: returns its URL (code and state) and tsh's PID (still waiting).
    func heldCallback(_ tsh: TSHRunner, connector: String, user: String, password: String) async throws -> (pid: pid_t, callback: String) {
        let started = try await startTSHLogin(tsh, connector: connector)
        let url = try #require(started.url, "tsh printed no URL: \((try? String(contentsOf: started.output, encoding: .utf8)) ?? "")")
        let driver = try await driver(["--url", url, "--user", user, "--password", password, "--capture-callback"])
        guard let callback = driver.callbackURL else {
            _ = await TestSupport.stopDaemon(started.pid)
            throw TestSupportError("the browser reached no callback: \(driver)")
        }
        return (started.pid, callback)
    }

    /// ``heldCallback(_:connector:user:password:)`` around `body`; tsh is stopped afterwards.
    func withHeldCallback(
        _ tsh: TSHRunner, connector: String, user: String, password: String, _ body: ((pid: pid_t, callback: String)) async throws -> Void
    ) async throws {
        let held = try await heldCallback(tsh, connector: connector, user: user, password: password)
        do {
            try await body(held)
            _ = await TestSupport.stopDaemon(held.pid)
        } catch {
            _ = await TestSupport.stopDaemon(held.pid)
            throw error
        }
    }

    /// `POST /webapi/oidc/login/console` as tsh would send it, with `clientRedirectURL`.
    func consoleLogin(connector: String, clientRedirectURL: String) async throws -> WebReply {
        let keys = try TestSupport.makeTemporaryDirectory(prefix: "sso-keys")
        defer { try? FileManager.default.removeItem(at: keys) }
        _ = try await TestSupport.runChecked(TestSupport.sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-f", keys.appendingPathComponent("id").path])
        let sshKey = try TestSupport.read(keys.appendingPathComponent("id.pub")).trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try await TestSupport.runChecked(
            "/usr/bin/openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keys.appendingPathComponent("tls.key").path])
        let tlsKey = try await TestSupport.runChecked("/usr/bin/openssl", ["pkey", "-in", keys.appendingPathComponent("tls.key").path, "-pubout"]).stdout
        let body: [String: Any] = [
            "connector_id": connector, "client_redirect_url": clientRedirectURL, "ssh_public_key": sshKey, "tls_public_key": tlsKey,
        ]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        return try await WebDriver(cluster: cluster).request("/webapi/oidc/login/console", raw: json, contentType: "application/json")
    }

    /// A GET to the proxy (not following redirects).
    func get(_ url: String) async throws -> WebReply {
        let path = url.replacingOccurrences(of: "https://127.0.0.1:\(cluster.webPort)", with: "")
        return try await WebDriver(cluster: cluster).request(path)
    }
}

extension CommandResult {
    /// The proxy callback URL `sso_login.py --capture-callback` printed.
    var callbackURL: String? {
        stdout.split(separator: "\n").first { $0.hasPrefix("callback: ") }.map { String($0.dropFirst("callback: ".count)) }
    }
}

extension WebReply {
    /// The `Location` header.
    var location: String? { headers.first { $0.name == "location" }?.value }
    /// A redirect to tsh's own loopback listener (`http://127.0.0.1:PORT/...`).
    var redirectsToLoopbackClient: Bool { (300..<400).contains(status) && (location ?? "").hasPrefix("http://127.0.0.1:") }
    /// Whether the reply sets the web session cookie.
    var setsSessionCookie: Bool { headers.contains { $0.name == "set-cookie" && $0.value.contains("__Host-session=") } }
}
