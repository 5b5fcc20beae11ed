import Foundation
import TeleportTestSupport
import Testing

/// The single sign-on tests' own fixtures, alone (no cluster): the Authlib OpenID Connect provider
/// and the GitHub stand-in (a stand-in because GitHub cannot be reached here), each started through
/// its Swift fixture and checked by `Tests/fixtures/sso_fixture_check.py` as a relying party would use
/// it: discovery, the code flow with PKCE, state and nonce, both client authentication methods, the ID
/// token against the JWKS, codes single-use, key rotation and every attack mode; GitHub's login form,
/// token encodings, `/user` and `/user/teams`.
@Suite("SSO test fixtures: OIDC provider and GitHub stand-in", .serialized)
struct SSOFixtureTests {
    static let checkScript = PythonFixtureServer.fixturesDirectory.appendingPathComponent("sso_fixture_check.py").path

    @Test(
        "the OIDC provider: discovery, code + PKCE flow, JWKS-verified ID tokens, codes single-use, modes, key rotation",
        .enabled(if: PythonFixtureServer.missing == nil, "needs python3 with Authlib, Flask and requests (scripts/install-test-deps.sh)"))
    func oidcProvider() async throws {
        let redirect = "https://127.0.0.1:3080/v1/webapi/oidc/callback"
        try await OIDCProviderFixture.with(
            clients: [.init(id: "teleport", secret: "client-secret-1", redirectURIs: [redirect])],
            users: [.init("alice", password: "pw-alice", claims: ["email": "alice@example.com", "groups": ["admins"], "logins": ["alice"]])]
        ) { provider in
            let before = try await provider.publishedKeyIDs()
            #expect(before.count == 1)
            let result = try await TestSupport.run(
                "/usr/bin/env",
                [
                    "python3", Self.checkScript, "oidc", "--url", provider.issuerURL, "--client-id", "teleport",
                    "--client-secret", "client-secret-1", "--redirect-uri", redirect, "--user", "alice", "--password", "pw-alice",
                ], timeout: .seconds(60))
            #expect(result.exitCode == 0, "\(result)\n\(provider.log.suffix(3000))")
            #expect(!result.stdout.contains("FAIL"), "\(result.stdout)")
            #expect(result.stdout.contains("ok: a code used twice is refused"))
            #expect(result.stdout.contains("ok: after rotation the new key signs"))
            // The script rotated once: the Swift side sees the new key only.
            let after = try await provider.publishedKeyIDs()
            #expect(after.count == 1 && after != before, "\(before) -> \(after)")
            let kid = try await provider.rotateKeys(keepOld: true)
            #expect(try await provider.publishedKeyIDs() == after + [kid])
            try await provider.setMode(.expired)
            let events = try await provider.events()
            #expect(events.contains { $0["event"] as? String == "mode" && $0["mode"] as? String == "expired" })
            #expect(events.contains { $0["event"] as? String == "token" && $0["client_auth_method"] as? String == "client_secret_basic" })
        }
    }

    @Test(
        "the GitHub stand-in: login form, code and state, token as JSON or form, /user, /user/teams, codes single-use",
        .enabled(if: PythonFixtureServer.missing == nil, "needs python3 with Flask and requests (scripts/install-test-deps.sh)"))
    func gitHubStandIn() async throws {
        let redirect = "https://127.0.0.1:3080/v1/webapi/github/callback"
        try await GitHubStandInFixture.with(
            clients: [.init(id: "gh-client", secret: "gh-secret", redirectURIs: [redirect])],
            users: [.init("octocat", password: "pw-octo", id: 7, teams: [.init(organization: "acme", slug: "admins")])]
        ) { standIn in
            let result = try await TestSupport.run(
                "/usr/bin/env",
                [
                    "python3", Self.checkScript, "github", "--url", standIn.url, "--client-id", "gh-client", "--client-secret", "gh-secret",
                    "--redirect-uri", redirect, "--user", "octocat", "--password", "pw-octo", "--team", "acme/admins",
                ], timeout: .seconds(60))
            #expect(result.exitCode == 0, "\(result)\n\(standIn.log.suffix(3000))")
            #expect(!result.stdout.contains("FAIL"), "\(result.stdout)")
            #expect(result.stdout.contains("ok: a code used twice is refused"))
            #expect(result.stdout.contains("ok: /user/teams lists ['acme/admins']"))
            let events = try await standIn.events()
            #expect(events.contains { $0["event"] as? String == "api_teams" })
        }
    }

    @Test(
        "a provider whose script fails to start is reported with its output",
        .enabled(if: PythonFixtureServer.missing == nil, "needs python3 with Authlib and Flask"))
    func failedStartIsReported() async throws {
        do {
            _ = try await PythonFixtureServer.start(script: "oidc_provider.py", config: Data("not json".utf8), prefix: "oidc-bad")
            Issue.record("a provider with a broken config started")
        } catch {
            #expect("\(error)".contains("exited before listening"), "\(error)")
            #expect("\(error)".contains("JSONDecodeError"), "\(error)")
        }
    }
}
