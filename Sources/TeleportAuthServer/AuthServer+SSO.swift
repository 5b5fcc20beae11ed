import Crypto
import Foundation
public import TeleportAPI
import TeleportAccess
import TeleportCrypto
import TeleportEvents
import TeleportServices

extension AuthServer {
    /// The client that reaches identity providers.
    var ssoHTTP: any SSOHTTPClient { settings.ssoHTTPClient ?? ProviderHTTPClient() }

    /// The refusal of a password login while `local_auth: false`.
    static let localAuthDisabled = TeleportError.accessDenied(
        "password logins are disabled on this cluster (auth_service.authentication.local_auth: false); log in with single sign-on: tsh login --auth=CONNECTOR")

    /// How users log in: the type, the default connector, whether passwords work, and every connector.
    public func authPreference() async throws -> AuthAPI.AuthPreference {
        var connectors: [AuthAPI.ConnectorSummary] = []
        for case let oidc as OIDCConnector in try await stores.list(kind: OIDCConnector.kind) {
            connectors.append(AuthAPI.ConnectorSummary(name: oidc.name, kind: OIDCConnector.kind, display: oidc.displayName))
        }
        for case let github as GitHubConnector in try await stores.list(kind: GitHubConnector.kind) {
            connectors.append(AuthAPI.ConnectorSummary(name: github.name, kind: GitHubConnector.kind, display: github.displayName))
        }
        return AuthAPI.AuthPreference(
            type: settings.authType, connectorName: settings.connectorName, localAuth: settings.localAuth, secondFactor: settings.secondFactor,
            connectors: connectors)
    }

    /// The connector `name` of `kind`.
    func connector(_ kind: AuthAPI.SSOKind, _ name: String) async throws -> any Resource {
        do {
            return try await stores.get(kind: kind.rawValue, name: name)
        } catch let error as TeleportError where error.code == .notFound || error.code == .badParameter {
            throw TeleportError.notFound("there is no \(kind.rawValue) connector named \"\(name.prefix(100))\" (tctl get connectors lists them)")
        }
    }

    // MARK: Starting a login

    /// Starts a single sign-on login: checks the connector, the client's keys (console) or return
    /// path (web), stores the request for 10 minutes under a random state and answers the
    /// provider's authorization URL.
    public func createSSORequest(_ request: AuthAPI.CreateSSORequest) async throws -> AuthAPI.SSORequestCreated {
        let now = clock.now()
        let found = try await connector(request.kind, request.connectorID)
        var record = SSOAuthRequest(
            kind: request.kind, connectorID: request.connectorID, mode: request.mode, nonce: SecretHash.randomHex(bytes: 32),
            pkceVerifier: PKCE.makeVerifier(), expires: now.addingTimeInterval(SSOAuthRequest.lifetime))
        switch request.mode {
        case .console:
            guard let ssh = request.sshPublicKey, let tls = request.tlsPublicKeyPEM else {
                throw TeleportError.badParameter("a console login needs ssh_public_key and tls_public_key (tsh sends them)")
            }
            _ = try proveKeys(sshPublicKey: ssh, tlsPublicKeyPEM: tls, user: request.connectorID, proof: request.keyProof, purpose: .ssoLogin)
            let callback = try ConnectorURL.checkClientRedirect(request.clientRedirectURL ?? "")
            guard let secret = callback.queryItems?.first(where: { $0.name == SSOResultSeal.secretParameter })?.value else {
                throw TeleportError.badParameter("client_redirect_url has no \(SSOResultSeal.secretParameter)= parameter (tsh's key for the result)")
            }
            _ = try SSOResultSeal.key(from: secret)
            record.sshPublicKey = ssh
            record.tlsPublicKeyPEM = tls
            record.ttlSeconds = request.ttlSeconds
            record.clientRedirectURL = request.clientRedirectURL
        case .web:
            record.redirectURL = try ConnectorURL.checkWebRedirect(request.redirectURL ?? "/web")
        }
        let state = SecretHash.randomHex(bytes: 32)
        let url: String
        switch found {
        case let oidc as OIDCConnector:
            let discovery = try await discover(oidc)
            var pairs: [(String, String)] = [
                ("response_type", "code"), ("client_id", oidc.spec.clientID), ("redirect_uri", oidc.spec.redirectURL),
                ("scope", (["openid"] + (oidc.spec.scope ?? []).filter { $0 != "openid" }).joined(separator: " ")),
                ("state", state), ("nonce", record.nonce),
                ("code_challenge", PKCE.challenge(for: record.pkceVerifier)), ("code_challenge_method", "S256"),
            ]
            if let prompt = oidc.spec.prompt, !prompt.isEmpty { pairs.append(("prompt", prompt)) }
            if let maxAge = oidc.spec.maxAge { pairs.append(("max_age", String(maxAge))) }
            if let acr = oidc.spec.acrValues, !acr.isEmpty { pairs.append(("acr_values", acr)) }
            url = FormEncoding.append(pairs, to: discovery.authorizationEndpoint)
        case let github as GitHubConnector:
            url = FormEncoding.append(
                [("client_id", github.spec.clientID), ("redirect_uri", github.spec.redirectURL), ("scope", "read:org"), ("state", state)],
                to: github.endpoint + "/login/oauth/authorize")
        default:
            throw TeleportError.internalError("the connector store sent another kind")
        }
        try await SSORequestStore(backend: stores.backend).create(state: state, record)
        return AuthAPI.SSORequestCreated(redirectURL: url)
    }

    // MARK: Completing a login

    /// Completes a login from the provider's callback: consumes the request (one use), talks to
    /// the provider (code for tokens; OIDC: ID token verified, userinfo; GitHub: user and teams),
    /// maps the identity to roles, upserts the SSO user, and issues certificates (console,
    /// sealed for tsh) or a web session. Every outcome is a `user.login` event with `method`.
    public func completeSSOCallback(_ request: AuthAPI.SSOCallbackRequest) async throws -> AuthAPI.SSOCallbackResult {
        var fields: [String: JSONValue] = [
            "user": "", "method": .string(request.kind.rawValue), "addr.remote": .string(request.clientAddress ?? ""),
        ]
        func fail(_ error: TeleportError) async throws -> Never {
            try await refuseLogin(fields, reason: error.message, error: error)
        }
        let record: SSOAuthRequest
        do {
            record = try await SSORequestStore(backend: stores.backend).consume(state: request.state, kind: request.kind, now: clock.now())
        } catch let error as TeleportError {
            try await fail(error)
        }
        fields["connector"] = .string(record.connectorID)
        do {
            if let error = request.error {
                let text = [error, request.errorDescription].compactMap { $0 }.joined(separator: ": ")
                throw TeleportError.accessDenied("the identity provider refused the login: \(text.prefix(300))")
            }
            guard let code = request.code, !code.isEmpty, code.utf8.count <= 4096 else {
                throw TeleportError.badParameter("the callback carries no authorization code")
            }
            let identity: SSOIdentity
            switch try await connector(record.kind, record.connectorID) {
            case let oidc as OIDCConnector: identity = try await oidcIdentity(oidc, code: code, record: record)
            case let github as GitHubConnector: identity = try await githubIdentity(github, code: code)
            default: throw TeleportError.internalError("the connector store sent another kind")
            }
            fields["user"] = .string(identity.username)
            let user = try await upsertSSOUser(identity)
            let result = try await finish(record: record, user: user, state: request.state)
            fields["success"] = true
            settings.metrics?.increment(.logins, ["result": "success"])
            try await emit(AuditEventType.userLogin, fields: fields)
            return result
        } catch let error as TeleportError {
            try await fail(error)
        }
    }

    /// Who the provider says logged in, mapped.
    struct SSOIdentity {
        var username: String
        var connector: User.CreatedBy.Connector
        var mapping: SSOMapping.Result
    }

    /// Refuses a login whose mapping gave no role that exists.
    func requireRoles(_ mapping: SSOMapping.Result, connector: String, what: String) async throws {
        guard !mapping.roles.isEmpty else {
            throw TeleportError.accessDenied("\(connector): no \(what) matched this user, so no role applies; the login is refused")
        }
        let existing = await existingRoles(mapping.roles)
        guard !existing.isEmpty else {
            throw TeleportError.accessDenied(
                "\(connector): the mapped roles \(mapping.roles.joined(separator: ", ")) do not exist on this cluster (tctl get roles)")
        }
    }

    /// The SSO user: created or replaced with the mapped roles and traits; never a local user.
    func upsertSSOUser(_ identity: SSOIdentity) async throws -> User {
        if let existing = try? await stores.users.get(identity.username), !existing.isSSO {
            throw TeleportError.accessDenied(
                "a local user named \(identity.username) exists; single sign-on does not take over local users (remove it with tctl rm user/\(identity.username))")
        }
        var user = User(name: identity.username, roles: identity.mapping.roles, logins: [])
        user.spec.traits = identity.mapping.traits
        user.spec.createdBy = User.CreatedBy(time: clock.now(), user: "system", connector: identity.connector)
        try user.validate()
        try await stores.users.upsert(user)
        try await secrets.deleteAll(user.name)
        return user
    }

    /// Issues what the request asked for: sealed certificates for tsh, or a web session.
    func finish(record: SSOAuthRequest, user: User, state: String) async throws -> AuthAPI.SSOCallbackResult {
        let roles = await existingRoles(user.spec.roles)
        let cap = AccessChecker(roles: roles, traits: [:]).maxSessionTTL(fallback: settings.maxSessionTTL)
        switch record.mode {
        case .console:
            guard let ssh = record.sshPublicKey, let tls = record.tlsPublicKeyPEM, let redirect = record.clientRedirectURL,
                var components = URLComponents(string: redirect),
                let secret = components.queryItems?.first(where: { $0.name == SSOResultSeal.secretParameter })?.value
            else { throw TeleportError.internalError("the stored console login lacks its keys or callback") }
            let subject = try SSHPublicKey(authorizedKeyLine: ssh)
            let tlsKey = try P256.Signing.PublicKey(pemRepresentation: tls)
            let asked = record.ttlSeconds ?? 0
            let login = try await issueUserCertificates(
                user: user, keys: ProvenKeys(ssh: subject, tls: tlsKey, user: user.name), ttl: min(asked > 0 ? asked : cap, cap))
            let sealed = try SSOResultSeal.seal(try ResourceCodec.json(login), secret: secret, state: state)
            var items = (components.queryItems ?? []).filter { $0.name != SSOResultSeal.secretParameter }
            items.append(URLQueryItem(name: SSOResultSeal.stateParameter, value: state))
            items.append(URLQueryItem(name: SSOResultSeal.responseParameter, value: sealed))
            components.queryItems = items
            guard let url = components.string else { throw TeleportError.internalError("cannot build tsh's callback address") }
            return AuthAPI.SSOCallbackResult(mode: .console, username: user.name, clientRedirectURL: url)
        case .web:
            if let lock = try await locks().first(where: { $0.applies(user: user.name, login: nil, node: [], at: clock.now()) }) {
                throw TeleportError.accessDenied(lock.refusal)
            }
            let info = try await startWebSession(user: user, cap: cap)
            return AuthAPI.SSOCallbackResult(mode: .web, username: user.name, webSession: info, redirectURL: record.redirectURL ?? "/web")
        }
    }

    // MARK: OIDC

    /// Fetches and checks the provider's discovery document.
    func discover(_ connector: OIDCConnector) async throws -> OIDCDiscovery {
        let body = try await fetch(OIDCDiscovery.url(issuer: connector.spec.issuerURL), what: "the discovery document of oidc \(connector.name)")
        return try OIDCDiscovery.parse(body, expectedIssuer: connector.spec.issuerURL, connector: connector.name)
    }

    /// GETs `url` (JSON); a non-2xx status is a `connectionProblem` naming `what`.
    func fetch(_ url: String, what: String, headers: [(String, String)] = []) async throws -> Data {
        guard let parsed = URL(string: url) else { throw TeleportError.badParameter("\(what): \"\(url)\" is not a URL") }
        let reply = try await ssoHTTP.send(SSOHTTPRequest(method: "GET", url: parsed, headers: [("Accept", "application/json")] + headers))
        guard (200..<300).contains(reply.status) else {
            throw TeleportError.connectionProblem("\(what) (\(url)) answered HTTP \(reply.status)")
        }
        return reply.body
    }

    /// The provider's keys, from the cache or fetched; `refetch` asks again (rate-limited).
    func providerKeys(_ url: String, refetch: Bool) async throws -> JSONWebKeySet? {
        let now = clock.now()
        if !refetch, let cached = ssoCache.keys(url, now: now) { return cached }
        if refetch, !ssoCache.mayRefetch(url, now: now) { return nil }
        let keys = try JSONWebKeySet(json: try await fetch(url, what: "the provider's JWKS"))
        ssoCache.store(url, keys: keys, now: now)
        return keys
    }

    func oidcIdentity(_ connector: OIDCConnector, code: String, record: SSOAuthRequest) async throws -> SSOIdentity {
        let name = "oidc connector \(connector.name)"
        let discovery = try await discover(connector)
        guard let tokenURL = URL(string: discovery.tokenEndpoint) else { throw TeleportError.badParameter("\(name): bad token_endpoint") }
        var form: [(String, String)] = [
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", connector.spec.redirectURL),
            ("code_verifier", record.pkceVerifier),
        ]
        var headers: [(String, String)] = [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")]
        if discovery.usesBasicAuth {
            let pair = FormEncoding.escape(connector.spec.clientID) + ":" + FormEncoding.escape(connector.spec.clientSecret)
            headers.append(("Authorization", "Basic " + Data(pair.utf8).base64EncodedString()))
        } else {
            form += [("client_id", connector.spec.clientID), ("client_secret", connector.spec.clientSecret)]
        }
        let reply = try await ssoHTTP.send(SSOHTTPRequest(method: "POST", url: tokenURL, headers: headers, body: Data(FormEncoding.encode(form).utf8)))
        let token = (try? JSONSerialization.jsonObject(with: reply.body)) as? [String: Any]
        guard (200..<300).contains(reply.status), let idToken = token?["id_token"] as? String else {
            let error = (token?["error"] as? String).map { ": \($0.prefix(200))" } ?? ""
            throw TeleportError.accessDenied("\(name): the token endpoint refused the code (HTTP \(reply.status))\(error)")
        }
        let verifier = IDTokenVerifier(issuer: connector.spec.issuerURL, clientID: connector.spec.clientID)
        var claims: [String: JSONValue]
        do {
            guard let keys = try await providerKeys(discovery.jwksURI, refetch: false) else { throw IDTokenVerifier.Failure.unknownKey(nil) }
            do {
                claims = try verifier.verify(idToken, keys: keys, nonce: record.nonce, now: clock.now())
            } catch IDTokenVerifier.Failure.unknownKey {
                // A key the cached set lacks: the provider may have rotated; ask once.
                guard let fresh = try await providerKeys(discovery.jwksURI, refetch: true) else {
                    throw IDTokenVerifier.Failure.invalid("the ID token is signed by a key the provider does not publish")
                }
                claims = try verifier.verify(idToken, keys: fresh, nonce: record.nonce, now: clock.now())
            }
        } catch let failure as IDTokenVerifier.Failure {
            switch failure {
            case .unknownKey(let kid):
                throw TeleportError.accessDenied("\(name): the ID token is signed by an unknown key \(kid.map { "\"\($0.prefix(100))\"" } ?? "")")
            case .invalid(let reason): throw TeleportError.accessDenied("\(name): \(reason)")
            }
        }
        let subject = claims["sub"]?.stringValue ?? ""
        if let userinfo = discovery.userinfoEndpoint, let access = token?["access_token"] as? String {
            let body = try await fetch(userinfo, what: "\(name): the userinfo endpoint", headers: [("Authorization", "Bearer " + access)])
            guard let extra = try? ResourceCodec.jsonDecoder().decode([String: JSONValue].self, from: body) else {
                throw TeleportError.accessDenied("\(name): the userinfo endpoint's answer is not a JSON object")
            }
            guard extra["sub"]?.stringValue == subject else {
                throw TeleportError.accessDenied("\(name): the userinfo endpoint describes another subject than the ID token")
            }
            // The ID token's (signed) claims win; userinfo adds the ones it lacks.
            for (key, value) in extra where claims[key] == nil { claims[key] = value }
        }
        let candidate = claims["email"]?.stringValue ?? claims["preferred_username"]?.stringValue ?? subject
        let username: String
        do {
            username = try SSOMapping.userName(candidate)
        } catch {
            throw TeleportError.accessDenied("\(name): the provider's user name \"\(candidate.prefix(100))\" is not a valid Teleport user name")
        }
        let mapping = SSOMapping.oidc(connector, claims: claims)
        try await requireRoles(mapping, connector: name, what: "claims_to_roles rule")
        return SSOIdentity(
            username: username, connector: User.CreatedBy.Connector(type: OIDCConnector.kind, id: connector.name, identity: subject),
            mapping: mapping)
    }

    // MARK: GitHub

    func githubIdentity(_ connector: GitHubConnector, code: String) async throws -> SSOIdentity {
        let name = "github connector \(connector.name)"
        guard let tokenURL = URL(string: connector.endpoint + "/login/oauth/access_token") else {
            throw TeleportError.badParameter("\(name): bad endpoint_url")
        }
        let form: [(String, String)] = [
            ("client_id", connector.spec.clientID), ("client_secret", connector.spec.clientSecret), ("code", code),
            ("redirect_uri", connector.spec.redirectURL),
        ]
        let reply = try await ssoHTTP.send(
            SSOHTTPRequest(
                method: "POST", url: tokenURL, headers: [("Accept", "application/json"), ("Content-Type", "application/x-www-form-urlencoded")],
                body: Data(FormEncoding.encode(form).utf8)))
        let token = (try? JSONSerialization.jsonObject(with: reply.body)) as? [String: Any]
        guard (200..<300).contains(reply.status), let access = token?["access_token"] as? String, !access.isEmpty else {
            let error = (token?["error"] as? String).map { ": \($0.prefix(200))" } ?? ""
            throw TeleportError.accessDenied("\(name): GitHub refused the code (HTTP \(reply.status))\(error)")
        }
        let auth: [(String, String)] = [("Authorization", "token " + access), ("Accept", "application/vnd.github+json")]
        let userBody = try await fetch(connector.apiEndpoint + "/user", what: "\(name): GET /user", headers: auth)
        guard let userObject = (try? JSONSerialization.jsonObject(with: userBody)) as? [String: Any], let login = userObject["login"] as? String else {
            throw TeleportError.accessDenied("\(name): GitHub's /user answer has no login")
        }
        var teams: [SSOMapping.Team] = []
        var page = 1
        while page <= 10 {
            let body = try await fetch(connector.apiEndpoint + "/user/teams?per_page=100&page=\(page)", what: "\(name): GET /user/teams", headers: auth)
            guard let list = (try? JSONSerialization.jsonObject(with: body)) as? [[String: Any]] else {
                throw TeleportError.accessDenied("\(name): GitHub's /user/teams answer is not a list")
            }
            for team in list {
                guard let slug = team["slug"] as? String, let org = (team["organization"] as? [String: Any])?["login"] as? String else { continue }
                teams.append(SSOMapping.Team(organization: org, slug: slug))
            }
            if list.count < 100 { break }
            page += 1
        }
        let username: String
        do {
            username = try SSOMapping.userName(login)
        } catch {
            throw TeleportError.accessDenied("\(name): the GitHub login \"\(login.prefix(100))\" is not a valid Teleport user name")
        }
        let mapping = SSOMapping.github(connector, teams: teams)
        try await requireRoles(mapping, connector: name, what: "teams_to_logins or teams_to_roles team")
        return SSOIdentity(
            username: username, connector: User.CreatedBy.Connector(type: GitHubConnector.kind, id: connector.name, identity: login),
            mapping: mapping)
    }
}
