import Foundation
import TeleportAPI
import Testing

@testable import TeleportAuthServer

/// The pure pieces of single sign-on: URL rules, connector validation, claim and team mapping,
/// and the login request record's decisions.
@Suite("single sign-on: URL rules, connectors, mapping, request records")
struct SSOPureTests {
    @Test(
        "provider and redirect URLs: https, or http to loopback only",
        arguments: [
            ("https://idp.example.com", true), ("https://idp.example.com:8443/realms/x", true), ("http://127.0.0.1:5556/dex", true),
            ("http://localhost:8080", true), ("http://[::1]:9000", true), ("http://idp.example.com", false), ("http://10.0.0.1", false),
            ("ftp://idp.example.com", false), ("idp.example.com", false), ("https://user:pw@idp.example.com", false),
            ("https://idp.example.com/#frag", false), ("http://127.0.0.1.evil.com", false),
        ])
    func secureURLs(_ url: String, _ ok: Bool) {
        #expect((try? ConnectorURL.checkSecure(url, field: "f")) != nil ? ok : !ok, "\(url)")
    }

    @Test(
        "tsh's callback must be http://127.0.0.1:PORT or http://localhost:PORT",
        arguments: [
            ("http://127.0.0.1:4242/callback?secret=x", true), ("http://localhost:4242/cb", true), ("https://127.0.0.1:4242/callback", false),
            ("http://127.0.0.1/callback", false), ("http://evil.example.com:4242/callback", false), ("http://127.0.0.2:4242/", false),
            ("http://user@127.0.0.1:4242/", false), ("javascript:alert(1)", false), ("", false),
        ])
    func clientRedirect(_ url: String, _ ok: Bool) {
        #expect((try? ConnectorURL.checkClientRedirect(url)) != nil ? ok : !ok, "\(url)")
    }

    @Test(
        "the web flow returns only to a same-origin path",
        arguments: [
            ("/web", true), ("/web/nodes?x=1", true), ("//evil.example.com/web", false), ("https://evil.example.com", false), ("/\\evil", false),
            ("web", false), ("/web\r\nSet-Cookie: x", false), ("", false),
        ])
    func webRedirect(_ path: String, _ ok: Bool) {
        #expect((try? ConnectorURL.checkWebRedirect(path)) != nil ? ok : !ok, "\(path)")
    }

    static func oidc(_ changes: (inout OIDCConnector.Spec) -> Void = { _ in }) -> OIDCConnector {
        var spec = OIDCConnector.Spec(
            issuerURL: "https://idp.example.com", clientID: "teleport", clientSecret: "s", redirectURL: "https://proxy.example.com/v1/webapi/oidc/callback",
            claimsToRoles: [
                .init(claim: "groups", value: "admins", roles: ["editor", "access"]), .init(claim: "email", value: "^.*@example\\.com$", roles: ["access"]),
            ])
        changes(&spec)
        return OIDCConnector(name: "okta", spec: spec)
    }

    @Test("oidc connectors: one-line errors naming the field")
    func oidcValidation() throws {
        try Self.oidc().validate()
        let cases: [((inout OIDCConnector.Spec) -> Void, String)] = [
            ({ $0.issuerURL = "http://idp.example.com" }, "issuer_url"), ({ $0.redirectURL = "http://proxy.example.com/cb" }, "redirect_url"),
            ({ $0.claimsToRoles = [] }, "claims_to_roles is empty"), ({ $0.claimsToRoles[0].value = "^([a-$" }, "not a valid regular expression"),
            ({ $0.clientID = "" }, "client_id"), ({ $0.prompt = "sometimes" }, "prompt"), ({ $0.scope = ["a b"] }, "scope"),
        ]
        for (change, word) in cases {
            #expect {
                try Self.oidc(change).validate()
            } throws: { error in
                (error as? TeleportError).map { $0.message.contains(word) && !$0.message.contains("\n") } ?? false
            }
        }
    }

    @Test("strict YAML: tctl create reads both kinds and refuses unknown fields")
    func yaml() throws {
        let text = """
            kind: github
            version: v3
            metadata: {name: github}
            spec:
              client_id: abc
              client_secret: xyz
              display: GitHub
              redirect_url: https://proxy.example.com:3080/v1/webapi/github/callback
              teams_to_logins:
                - {organization: octocats, team: admins, logins: [root], kubernetes_groups: ["system:masters"]}
            ---
            kind: oidc
            metadata: {name: okta}
            spec:
              issuer_url: https://example.okta.com
              client_id: id
              client_secret: secret
              redirect_url: https://proxy.example.com:3080/v1/webapi/oidc/callback
              scope: [email, groups]
              claims_to_roles: [{claim: groups, value: admins, roles: [access]}]
              max_age: 3600
            """
        let resources = try ResourceCodec.decodeDocuments(text, source: "connectors.yaml")
        #expect(resources.map(\.kind) == ["github", "oidc"])
        let github = try #require(resources[0].value as? GitHubConnector)
        #expect(github.endpoint == "https://github.com" && github.apiEndpoint == "https://api.github.com")
        #expect(github.withoutSecrets.spec.clientSecret.isEmpty)
        #expect(throws: TeleportError.self) {
            try ResourceCodec.decodeDocuments(text.replacingOccurrences(of: "max_age", with: "maxage"), source: "x")
        }
        #expect(AnyResource.canonicalKind("githubs") == "github" && AnyResource.canonicalKind("oidc") == "oidc")
    }

    @Test("claims map to roles (literal, regex, list claims) and traits (external.*, logins)")
    func oidcMapping() {
        let result = SSOMapping.oidc(
            Self.oidc(),
            claims: [
                "groups": .array(["dev", "admins"]), "email": "ann@example.com", "logins": .array(["ann", "bad login", "root"]),
                "nested": .object(["a": 1]), "email_verified": true,
            ])
        #expect(result.roles == ["editor", "access"])
        #expect(result.traits["external.groups"] == ["dev", "admins"])
        #expect(result.traits["external.email_verified"] == ["true"])
        #expect(result.traits["external.nested"] == nil)
        #expect(result.traits["logins"] == ["ann", "root"])
        let nobody = SSOMapping.oidc(Self.oidc(), claims: ["groups": "dev", "email": "eve@example.com.evil.org"])
        #expect(nobody.roles.isEmpty, "the regex is anchored: the whole value must match")
    }

    @Test("GitHub teams map to logins, kubernetes groups and roles; other teams to nothing")
    func githubMapping() {
        let connector = GitHubConnector(
            name: "github",
            spec: .init(
                clientID: "c", clientSecret: "s", redirectURL: "https://p/v1/webapi/github/callback",
                teamsToLogins: [.init(organization: "octocats", team: "admins", logins: ["root", "octo"], kubernetesGroups: ["system:masters"])],
                teamsToRoles: [.init(organization: "octocats", team: "auditors", roles: ["auditor"])]))
        let admin = SSOMapping.github(connector, teams: [.init(organization: "OctoCats", slug: "admins"), .init(organization: "other", slug: "x")])
        #expect(admin.roles == ["access"])
        #expect(admin.traits["logins"] == ["root", "octo"] && admin.traits["kubernetes_groups"] == ["system:masters"])
        #expect(admin.traits["github_teams"] == ["OctoCats/admins", "other/x"] && admin.traits["github_orgs"] == ["OctoCats", "other"])
        let auditor = SSOMapping.github(connector, teams: [.init(organization: "octocats", slug: "auditors")])
        #expect(auditor.roles == ["auditor"] && auditor.traits["logins"] == [])
        #expect(SSOMapping.github(connector, teams: [.init(organization: "evil", slug: "admins")]).roles.isEmpty)
    }

    @Test("a login request is used once, before it expires, by its own kind")
    func requestDecisions() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        var record = SSOAuthRequest(
            kind: .oidc, connectorID: "okta", mode: .web, nonce: "n", pkceVerifier: "v", expires: now.addingTimeInterval(600))
        #expect(record.decide(kind: .oidc, now: now) == .use)
        #expect(record.decide(kind: .github, now: now) != .use)
        #expect(record.decide(kind: .oidc, now: now.addingTimeInterval(600)) != .use)
        record.consumed = true
        #expect(record.decide(kind: .oidc, now: now) == .refuse("this login request was already used (a replayed state or code)"))
        #expect(SSOAuthRequest.key(state: "state-xyz").hasPrefix("/sso/requests/") && !SSOAuthRequest.key(state: "state-xyz").contains("xyz"))
    }
}
