import Foundation
import Hummingbird
import Logging
import NIOCore
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import X509

/// The web UI's Management section (`/web/manage`) and its JSON API under `/webapi/manage/`:
/// users, roles, locks and join tokens.
///
/// Every call runs at the auth service AS THE SIGNED-IN USER (``AuthClient/actingFor(webSession:)``),
/// so the user's role `rules` decide exactly as for `tctl`; a refusal comes back as the auth
/// service's sentence with 403. Every state-changing call needs the session's CSRF token
/// (``WebSessionGate``).
///
/// - `GET /webapi/manage/users`; `POST` `{name, roles, logins}` → the invite link `tctl users add`
///   prints; `PUT users/NAME` `{roles}`; `POST users/NAME/reset` → a reset link; `DELETE users/NAME`.
/// - `GET /webapi/manage/roles`; `GET roles/NAME` → `{yaml, revision}`; `PUT roles/NAME`
///   `{yaml, revision}`: parsed like `tctl create`, saved only if the role is still at `revision`
///   (409 otherwise, like `tctl edit`); `POST roles` `{yaml}` creates one; `DELETE roles/NAME`.
/// - `GET /webapi/manage/locks`; `POST` `{user, login, node, message, ttl}`; `DELETE locks/NAME`.
/// - `GET /webapi/manage/tokens`; `POST` `{roles, ttl}` → the token and the `teleport start` line
///   `tctl nodes add` prints; `DELETE tokens/TOKEN`.
struct ManagementRoutes: Sendable {
    let auth: AuthClient
    let clusterName: String
    let logger: Logger

    var gate: WebSessionGate<AuthClient> { WebSessionGate(auth: auth, logger: logger) }

    /// Adds the routes to `router`.
    func register(on router: Router<ProxyRequestContext>) {
        router.get("web/manage") { request, context in
            await gate.page(request, context: context) { ManagementPage.html($0, clusterName: clusterName) }
        }
        router.get("web/js/manage.js") { _, _ in WebUIPages.asset(ManagementPage.script, type: "text/javascript; charset=utf-8") }
        router.get("web/css/manage.css") { _, _ in WebUIPages.asset(ManagementPage.style, type: "text/css; charset=utf-8") }

        router.get("webapi/manage/users") { request, context in await handle(request, context, changing: false) { try await listUsers($0) } }
        router.post("webapi/manage/users") { request, context in
            await handle(request, context, changing: true) { client in try await createUser(client, try await decode(CreateUser.self, request)) }
        }
        router.put("webapi/manage/users/:name") { request, context in
            await handle(request, context, changing: true) { client in
                try await updateUser(client, name: context.parameters.get("name") ?? "", try await decode(UpdateUser.self, request))
            }
        }
        router.post("webapi/manage/users/:name/reset") { request, context in
            await handle(request, context, changing: true) { client in try await resetUser(client, name: context.parameters.get("name") ?? "") }
        }
        router.delete("webapi/manage/users/:name") { request, context in
            await handle(request, context, changing: true) { client in
                try await client.delete(kind: User.kind, name: context.parameters.get("name") ?? "")
                return .object([:])
            }
        }

        router.get("webapi/manage/roles") { request, context in await handle(request, context, changing: false) { try await listRoles($0) } }
        router.get("webapi/manage/roles/:name") { request, context in
            await handle(request, context, changing: false) { client in try await readRole(client, name: context.parameters.get("name") ?? "") }
        }
        router.put("webapi/manage/roles/:name") { request, context in
            await handle(request, context, changing: true) { client in
                try await saveRole(client, name: context.parameters.get("name") ?? "", try await decode(SaveRole.self, request))
            }
        }
        router.post("webapi/manage/roles") { request, context in
            await handle(request, context, changing: true) { client in try await createRole(client, try await decode(SaveRole.self, request)) }
        }
        router.delete("webapi/manage/roles/:name") { request, context in
            await handle(request, context, changing: true) { client in
                try await client.delete(kind: Role.kind, name: context.parameters.get("name") ?? "")
                return .object([:])
            }
        }

        router.get("webapi/manage/locks") { request, context in await handle(request, context, changing: false) { try await listLocks($0) } }
        router.post("webapi/manage/locks") { request, context in
            await handle(request, context, changing: true) { client in try await createLock(client, try await decode(CreateLock.self, request)) }
        }
        router.delete("webapi/manage/locks/:name") { request, context in
            await handle(request, context, changing: true) { client in
                try await client.delete(kind: Lock.kind, name: context.parameters.get("name") ?? "")
                return .object([:])
            }
        }

        router.get("webapi/manage/tokens") { request, context in await handle(request, context, changing: false) { try await listTokens($0) } }
        router.post("webapi/manage/tokens") { request, context in
            await handle(request, context, changing: true) { client in try await createToken(client, try await decode(CreateToken.self, request)) }
        }
        router.delete("webapi/manage/tokens/:token") { request, context in
            await handle(request, context, changing: true) { client in
                try await client.deleteToken(context.parameters.get("token") ?? "")
                return .object([:])
            }
        }
    }

    // MARK: Plumbing

    /// The gate (cookie, CSRF when `changing`), then `body` with a client acting for the session;
    /// its value as JSON, or its error as a sentence with the code's status.
    func handle(
        _ request: Request, _ context: ProxyRequestContext, changing: Bool,
        _ body: (AuthClient) async throws -> JSONValue
    ) async -> Response {
        let id: String
        let user: String
        switch await gate.session(request, context: context, stateChanging: changing) {
        case .success(let found): (id, user) = (found.id, found.info.user)
        case .failure(let failure): return failure.response
        }
        do {
            let value = try await body(auth.actingFor(webSession: id))
            return WebResponse.json(try ResourceCodec.json(value))
        } catch let error as TeleportError where error.code != .internalError && error.code != .connectionProblem {
            logger.info(
                "web management call refused",
                metadata: ["tp.user": "\(user)", "tp.error": "\(error.message)", "tp.client.addr": "\(context.clientAddress ?? "")"])
            return WebResponse.jsonError(error)
        } catch {
            return gate.unavailable(error)
        }
    }

    /// The JSON body as `T`; a sentence naming the problem otherwise.
    func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        var request = request
        guard request.mediaType == "application/json" else {
            throw TeleportError.badParameter("send the request as JSON (Content-Type: application/json)")
        }
        let body = try await request.boundedBody(limit: ProxyRequestContext.maxBodyBytes)
        do {
            return try ResourceCodec.jsonDecoder().decode(T.self, from: Data(body.readableBytesView))
        } catch {
            throw TeleportError.badParameter("the request could not be read: \(Self.describe(error))")
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "the field \"\(key.stringValue)\" is missing"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "the field \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\" has the wrong type"
        default: "it is not valid JSON"
        }
    }

    /// A list sent as a JSON array or as one comma-separated string (`"access,editor"`).
    struct Names: Decodable {
        var values: [String]
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                values = [text]
            } else {
                values = try container.decode([String].self)
            }
        }
    }

    static func names(_ list: Names?) -> [String] {
        (list?.values ?? []).flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func time(_ date: Date?) -> JSONValue { date.map { .string(RFC3339.format($0)) } ?? .null }

    // MARK: Users

    struct CreateUser: Decodable {
        var name: String
        var roles: Names?
        var logins: Names?
    }

    struct UpdateUser: Decodable {
        var roles: Names?
        var logins: Names?
    }

    /// How long an invite or reset link stays valid (`tctl users add`'s default).
    static let inviteTTL: Double = 3600

    func listUsers(_ client: AuthClient) async throws -> JSONValue {
        let users = try await client.resources(kind: User.kind)
        let items: [JSONValue] = users.compactMap { resource in
            guard case .user(let user) = resource else { return nil }
            var locked = false
            if let status = user.spec.status, status.isLocked, let until = status.lockExpires, until > Date() { locked = true }
            return .object([
                "name": .string(user.name), "roles": .array(user.spec.roles.map { .string($0) }),
                "logins": .array(user.logins.map { .string($0) }), "locked": .bool(locked),
            ])
        }
        return .object(["items": .array(items)])
    }

    func createUser(_ client: AuthClient, _ create: CreateUser) async throws -> JSONValue {
        let name = create.name.trimmingCharacters(in: .whitespaces)
        let roles = Self.names(create.roles)
        guard !roles.isEmpty else { throw TeleportError.badParameter("give the new user at least one role") }
        let logins = Self.names(create.logins)
        let user = User(name: name, roles: roles, logins: logins.isEmpty ? [name] : logins)
        try user.validate()
        let token = try await client.createUser(.init(user: user, ttlSeconds: Self.inviteTTL))
        return .object([
            "user": .string(name), "url": .string(token.url ?? token.token), "expires": Self.time(token.expires),
            "ttl": .string(GoDuration.format(seconds: Self.inviteTTL)),
        ])
    }

    /// A read-modify-write that never loses a concurrent change (as `tctl users update`).
    func updateUser(_ client: AuthClient, name: String, _ update: UpdateUser) async throws -> JSONValue {
        let roles = update.roles.map { Self.names($0) }
        if let roles, roles.isEmpty { throw TeleportError.badParameter("a user needs at least one role") }
        for attempt in 1...3 {
            guard case .user(var user) = try await client.resource(kind: User.kind, name: name) else {
                throw TeleportError.internalError("the auth service sent another kind for user/\(name)")
            }
            if let roles { user.spec.roles = roles }
            if let logins = update.logins { user.spec.traits["logins"] = Self.names(logins) }
            try user.validate()
            do {
                try await client.update(.user(user))
                return .object([:])
            } catch let error as TeleportError where error.code == .compareFailed && attempt < 3 {
                continue
            }
        }
        return .object([:])
    }

    func resetUser(_ client: AuthClient, name: String) async throws -> JSONValue {
        let token = try await client.resetUser(name, ttlSeconds: Self.inviteTTL)
        return .object([
            "user": .string(name), "url": .string(token.url ?? token.token), "expires": Self.time(token.expires),
            "ttl": .string(GoDuration.format(seconds: Self.inviteTTL)),
        ])
    }

    // MARK: Roles

    struct SaveRole: Decodable {
        var yaml: String
        var revision: String?
    }

    func listRoles(_ client: AuthClient) async throws -> JSONValue {
        let roles = try await client.resources(kind: Role.kind)
        return .object(["items": .array(roles.map { .object(["name": .string($0.name)]) })])
    }

    func readRole(_ client: AuthClient, name: String) async throws -> JSONValue {
        let role = try await client.resource(kind: Role.kind, name: name)
        var value = role.value
        let revision = value.metadata.revision ?? ""
        value.metadata.revision = nil
        return .object(["name": .string(role.name), "yaml": .string(try ResourceCodec.yaml(value)), "revision": .string(revision)])
    }

    /// The role in `yaml`, parsed by the parser `tctl create` uses; it must be one role.
    static func parseRole(_ yaml: String, name: String?) throws -> AnyResource {
        let documents = try ResourceCodec.decodeDocuments(yaml, source: "the role")
        guard documents.count == 1, let only = documents.first, only.kind == Role.kind else {
            throw TeleportError.badParameter("the text must hold exactly one role (kind: role)")
        }
        if let name, only.name != name {
            throw TeleportError.badParameter("the role is named \"\(only.name)\", not \"\(name)\": renaming is not an edit; create a new role instead")
        }
        var value = only.value
        value.metadata.revision = nil
        return try AnyResource(value)
    }

    /// Saves the edited role only if it is still at `revision` (the mechanism `tctl edit` uses).
    func saveRole(_ client: AuthClient, name: String, _ save: SaveRole) async throws -> JSONValue {
        guard let revision = save.revision, !revision.isEmpty else {
            throw TeleportError.badParameter("the revision of the role as it was read is missing; reload the role and edit again")
        }
        var value = try Self.parseRole(save.yaml, name: name).value
        value.metadata.revision = revision
        let stored: AnyResource
        do {
            stored = try await client.update(try AnyResource(value))
        } catch let error as TeleportError where error.code == .compareFailed || error.code == .notFound {
            let what = error.code == .notFound ? "deleted" : "changed"
            throw TeleportError(
                .compareFailed,
                "role \"\(name)\" was \(what) by someone else since you opened it; nothing was saved (reload it and apply your edit again)")
        }
        return .object(["name": .string(name), "revision": .string(stored.value.metadata.revision ?? "")])
    }

    func createRole(_ client: AuthClient, _ save: SaveRole) async throws -> JSONValue {
        let role = try Self.parseRole(save.yaml, name: nil)
        try await client.create(role, upsert: false)
        return .object(["name": .string(role.name)])
    }

    // MARK: Locks

    struct CreateLock: Decodable {
        var user: String?
        var login: String?
        var node: String?
        var message: String?
        var ttl: String?
    }

    func listLocks(_ client: AuthClient) async throws -> JSONValue {
        let locks = try await client.resources(kind: Lock.kind)
        let items: [JSONValue] = locks.compactMap { resource in
            guard case .lock(let lock) = resource else { return nil }
            return .object([
                "name": .string(lock.name), "target": .string(lock.spec.target.description),
                "message": lock.spec.message.map { .string($0) } ?? .null, "expires": Self.time(lock.metadata.expires),
            ])
        }
        return .object(["items": .array(items)])
    }

    func createLock(_ client: AuthClient, _ create: CreateLock) async throws -> JSONValue {
        func field(_ text: String?) -> String? {
            guard let text = text?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        let target = Lock.Target(user: field(create.user), login: field(create.login), node: field(create.node))
        var expires: Date?
        if let ttl = field(create.ttl) {
            guard let seconds = GoDuration.parse(ttl), seconds > 0 else {
                throw TeleportError.badParameter("the expiry \"\(ttl)\" is not a duration such as 30m or 12h")
            }
            expires = Date().addingTimeInterval(seconds)
        }
        let lock = Lock(name: UUID().uuidString.lowercased(), target: target, message: field(create.message), expires: expires)
        try lock.validate()
        try await client.create(.lock(lock), upsert: false)
        return .object(["name": .string(lock.name), "target": .string(target.description), "expires": Self.time(expires)])
    }

    // MARK: Join tokens

    struct CreateToken: Decodable {
        var roles: Names?
        var ttl: String?
    }

    func listTokens(_ client: AuthClient) async throws -> JSONValue {
        let tokens = try await client.tokens()
        let items: [JSONValue] = tokens.map { token in
            .object([
                "token": .string(token.token), "roles": .array(token.roles.map { .string($0.rawValue) }),
                "expires": Self.time(token.expires), "static": .bool(token.isStatic),
            ])
        }
        return .object(["items": .array(items)])
    }

    func createToken(_ client: AuthClient, _ create: CreateToken) async throws -> JSONValue {
        let roles = try Self.names(create.roles).map { name -> SystemRole in
            guard let role = SystemRole(caseInsensitive: name), role == .node || role == .proxy else {
                throw TeleportError.badParameter("\"\(name)\" is not a role a host can join as (expected node or proxy)")
            }
            return role
        }
        guard !roles.isEmpty else { throw TeleportError.badParameter("choose the role the new host joins as (node or proxy)") }
        let ttl = create.ttl.map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 } ?? "30m"
        guard let seconds = GoDuration.parse(ttl), seconds > 0, seconds <= 48 * 3600 else {
            throw TeleportError.badParameter("the lifetime \"\(ttl)\" is not a duration between 1s and 48h, such as 30m or 1h")
        }
        let created = try await client.createToken(.init(token: nil, roles: roles, ttlSeconds: seconds))
        let roleList = roles.map { $0.rawValue.lowercased() }.joined(separator: ",")
        let pin = try await caPin()
        let command = Self.startCommand(roles: roleList, token: created.token, pin: pin, authServer: auth.address)
        return .object([
            "token": .string(created.token), "roles": .string(roleList), "expires": Self.time(created.expires),
            "ttl": .string(GoDuration.format(seconds: seconds)), "command": .string(command), "auth_server": .string(auth.address),
        ])
    }

    /// The line `tctl nodes add` prints, every word shell-quoted (it is meant to be pasted).
    static func startCommand(roles: String, token: String, pin: String, authServer: String) -> String {
        "teleport start \(ShellQuote.flag("roles", roles)) \(ShellQuote.flag("token", token)) "
            + "\(ShellQuote.flag("ca-pin", pin)) \(ShellQuote.flag("auth-server", authServer))"
    }

    /// The cluster's CA pin (of the host CA's first TLS certificate, as `tctl status` shows), read
    /// with the proxy's own identity.
    func caPin() async throws -> String {
        guard case .certAuthority(let ca) = try await auth.resource(kind: CertAuthority.kind, name: CertAuthority.CAType.host.rawValue),
            let first = ca.spec.activeKeys.tls.first
        else { throw TeleportError.internalError("the auth service sent no host CA certificate") }
        return try CAPin.pin(of: try Certificate.fromPEM(first.cert))
    }
}
