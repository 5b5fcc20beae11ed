public import Foundation
import Hummingbird
import NIOCore
import TeleportAccess
import TeleportAPI
import TeleportServices
import TeleportBackend
import TeleportCrypto
import TeleportEvents

/// The `/v1` routes of the auth API and their authorization.
struct AuthAPIRoutes {
    let auth: AuthServer
    /// Where callers' certificates come from: the TLS connection, or a test's certificate.
    var peerCertificates: PeerCertificateSource = .tls

    func register(on router: Router<AuthRequestContext>) {
        // Joining is the one thing a host does before it has a certificate.
        router.get("v1/join/ca") { _, context in
            await APIResponse.handling(context) {
                let crossSigned = try await auth.hostCACrossSigned()
                return try APIResponse.json(
                    AuthAPI.JoinCAResponse(hostCAPEMs: try await auth.hostCAPEMs(), crossSignedPEMs: crossSigned.isEmpty ? nil : crossSigned))
            }
        }
        router.post("v1/join") { request, context in
            await APIResponse.handling(context) { try await join(request, context) }
        }
        let v1 = router.group("v1").add(middleware: AuthenticationMiddleware(auth: auth, peerCertificates: peerCertificates))
        registerUserRoutes(on: v1)
        registerSSORoutes(on: v1)
        registerResourceRoutes(on: v1)
        registerAccountRoutes(on: v1)
        registerWebTerminalRoutes(on: v1)
        registerRotationRoutes(on: v1)
        registerTrustRoutes(on: v1)
        registerAuthServerRoutes(on: v1)
        v1.get("hostkeys") { _, context in
            // Every authenticated caller may read them: clients build known_hosts from them.
            await APIResponse.handling(context) {
                _ = try caller(context)
                return try APIResponse.json(try await auth.hostKeys())
            }
        }
        v1.get("usercerts") { request, context in
            await APIResponse.handling(context) {
                try requireHost(context)
                let wait = min(max(Int(request.uri.queryParameters.get("wait") ?? "0") ?? 0, 0), 60)
                return try APIResponse.json(
                    try await auth.userCertificateChanges(
                        after: request.uri.queryParameters.get("after").map { String($0) }, wait: .seconds(wait)))
            }
        }
        v1.get("usercerts/:fingerprint") { _, context in
            await APIResponse.handling(context) {
                try requireHost(context)
                return try APIResponse.json(try await auth.userCertificate(fingerprintHex: context.parameters.get("fingerprint") ?? ""))
            }
        }
        v1.get("tokens") { _, context in
            await APIResponse.handling(context) {
                try await authorize(context, kind: "token", verb: "list")
                return try APIResponse.json(try await auth.tokens.list())
            }
        }
        v1.post("tokens") { request, context in
            await APIResponse.handling(context) { try await createToken(request, context) }
        }
        v1.delete("tokens/:token") { _, context in
            await APIResponse.handling(context) {
                try await authorize(context, kind: "token", verb: "delete")
                try await auth.tokens.delete(context.parameters.get("token") ?? "")
                try await auth.emit(AuditEventType.joinTokenDelete, fields: ["user": .string(try caller(context).identity.username)])
                return try APIResponse.json(["status": "deleted"])
            }
        }
        v1.get("ping") { _, context in await APIResponse.handling(context) { try ping(context) } }
        v1.get("status") { _, context in
            await APIResponse.handling(context) {
                try await authorize(context, kind: ClusterNameResource.kind, verb: "read")
                return try APIResponse.json(try await auth.status())
            }
        }
        v1.get("resources/:kind") { request, context in
            await APIResponse.handling(context) { try await list(request, context) }
        }
        v1.get("resources/:kind/:name") { request, context in
            await APIResponse.handling(context) { try await get(request, context) }
        }
        v1.post("resources") { request, context in
            await APIResponse.handling(context) { try await create(request, context) }
        }
        v1.delete("resources/:kind/:name") { _, context in
            await APIResponse.handling(context) { try await delete(context) }
        }
        v1.post("events") { request, context in
            await APIResponse.handling(context) {
                let caller = try caller(context)
                let hostID: String?
                switch caller.kind {
                case .system(.node), .system(.proxy), .system(.db), .system(.app), .system(.kube): hostID = String(caller.identity.username.split(separator: ".").first ?? "")
                case .system(.admin), .system(.auth): hostID = nil
                default: throw TeleportError.accessDenied("only the cluster's proxies, nodes and database services may send audit events")
                }
                let body = try await request.body.collect(upTo: 8 * 1024 * 1024)
                // JSONText reads the batch without Codable (JSONDecoder of [String: JSONValue] was
                // most of an event's cost here).
                guard case .array(let items)? = try? JSONText.parse(body.readableBytesView) else {
                    throw TeleportError.badParameter("the body is not a JSON list of audit events")
                }
                let events = try items.map { item in
                    guard case .object(let object) = item else { throw TeleportError.badParameter("the body is not a JSON list of audit events") }
                    return try AuditEvent(object: object)
                }
                try await auth.receiveEvents(events, fromHost: hostID, fromNode: caller.kind == .system(.node) || caller.kind == .system(.db) || caller.kind == .system(.kube))
                return try APIResponse.json(["status": "ok"])
            }
        }
        v1.get("events") { request, context in
            await APIResponse.handling(context) {
                try await authorize(context, kind: "event", verb: "list")
                let query = request.uri.queryParameters
                let now = auth.clock.now()
                let from = try query.get("from").map { text in
                    guard let date = RFC3339.parse(String(text)) else { throw TeleportError.badParameter("from=\(text) is not an RFC 3339 time") }
                    return date
                } ?? now.addingTimeInterval(-86_400)
                let to = try query.get("to").map { text in
                    guard let date = RFC3339.parse(String(text)) else { throw TeleportError.badParameter("to=\(text) is not an RFC 3339 time") }
                    return date
                } ?? now.addingTimeInterval(60)
                guard from <= to, to.timeIntervalSince(from) <= 366 * 86_400 else {
                    throw TeleportError.badParameter("the time range must run forward and span at most a year")
                }
                let typeList = query.get("type").map { String($0) } ?? ""
                let types = Set(typeList.split(separator: ",").map { String($0) })
                let limit = min(Int(query.get("limit").map { String($0) } ?? "") ?? 500, 10_000)
                let start = Int(query.get("start_key").map { String($0) } ?? "") ?? 0
                let user = query.get("user").map { String($0) }.flatMap { $0.isEmpty ? nil : $0 }
                let sid = query.get("sid").map { String($0) }.flatMap { $0.isEmpty ? nil : $0 }
                return try APIResponse.json(
                    try await auth.searchEvents(from: from, to: to, types: types, limit: limit, startKey: start, user: user, sessionID: sid))
            }
        }
        v1.post("sessions/:sid/recording") { request, context in
            await APIResponse.handling(context) {
                let caller = try caller(context)
                let hostID: String?
                switch caller.kind {
                case .system(.node), .system(.db), .system(.kube): hostID = String(caller.identity.username.split(separator: ".").first ?? "")
                case .system(.admin): hostID = nil
                default: throw TeleportError.accessDenied("only nodes, database and Kubernetes services upload session recordings")
                }
                let body = try await request.body.collect(upTo: AuthServer.maxRecordingUpload)
                try await auth.storeRecording(
                    sessionID: context.parameters.get("sid") ?? "", gzip: Data(body.readableBytesView), fromHost: hostID)
                return try APIResponse.json(["status": "stored"])
            }
        }
        v1.post("sessions/active") { request, context in
            await APIResponse.handling(context) {
                let caller = try caller(context)
                let kube: Bool
                switch caller.kind {
                case .system(.node): kube = false
                case .system(.kube): kube = true
                default: throw TeleportError.accessDenied("only nodes and Kubernetes services report sessions")
                }
                let body = try await request.body.collect(upTo: 64 * 1024)
                var session = try ResourceCodec.jsonDecoder().decode(AuthAPI.ActiveSession.self, from: Data(body.readableBytesView))
                try AuthServer.checkSessionID(session.sid)
                session.serverID = String(caller.identity.username.split(separator: ".").first ?? "")
                // What kind of session it is follows from who reports it.
                session.kind = kube ? "kube" : nil
                if !kube { session.kubeCluster = nil }
                // A session id another host reported stays that host's.
                if let existing = try? await auth.stores.backend.get(Keys.key("sessions", "active", session.sid)),
                    let other = try? ResourceCodec.jsonDecoder().decode(AuthAPI.ActiveSession.self, from: existing.value),
                    other.serverID != session.serverID
                {
                    throw TeleportError.accessDenied("session \(session.sid) was reported by another host")
                }
                try await auth.stores.backend.put(
                    Item(key: Keys.key("sessions", "active", session.sid), value: try ResourceCodec.json(session),
                         expires: auth.clock.now().addingTimeInterval(24 * 3600)))
                return try APIResponse.json(["status": "ok"])
            }
        }
        v1.delete("sessions/active/:sid") { _, context in
            await APIResponse.handling(context) {
                let caller = try caller(context)
                switch caller.kind {
                case .system(.node), .system(.kube): break
                default: throw TeleportError.accessDenied("only nodes and Kubernetes services report sessions")
                }
                let sid = context.parameters.get("sid") ?? ""
                try AuthServer.checkSessionID(sid)
                // Only the host that reported a session ends it.
                let host = String(caller.identity.username.split(separator: ".").first ?? "")
                if let existing = try? await auth.stores.backend.get(Keys.key("sessions", "active", sid)),
                    let other = try? ResourceCodec.jsonDecoder().decode(AuthAPI.ActiveSession.self, from: existing.value),
                    other.serverID != host
                {
                    throw TeleportError.accessDenied("session \(sid) was reported by another host")
                }
                try? await auth.stores.backend.delete(Keys.key("sessions", "active", sid))
                return try APIResponse.json(["status": "ok"])
            }
        }
        v1.get("sessions/active") { _, context in
            await APIResponse.handling(context) {
                switch try caller(context).kind {
                case .system(.proxy), .system(.admin): break
                default: throw TeleportError.accessDenied("active sessions are listed through the proxy")
                }
                let items = try await auth.stores.backend.getRange(prefix: Keys.key("sessions", "active") + "/")
                return try APIResponse.json(items.compactMap { try? ResourceCodec.jsonDecoder().decode(AuthAPI.ActiveSession.self, from: $0.value) })
            }
        }
        v1.get("sessions") { request, context in
            await APIResponse.handling(context) {
                let reader = try recordingReader(request, context)
                return try APIResponse.json(try await auth.recordings(forUser: reader.user, roles: reader.roles))
            }
        }
        v1.get("sessions/:sid/recording") { request, context in
            await APIResponse.handling(context) {
                let reader = try recordingReader(request, context)
                let lines = try await auth.recording(sessionID: context.parameters.get("sid") ?? "", forUser: reader.user, roles: reader.roles)
                return APIResponse.raw(lines, contentType: "application/x-ndjson")
            }
        }
        v1.get("audit/verify") { request, context in
            await APIResponse.handling(context) {
                try requireAdmin(context)
                let query = request.uri.queryParameters
                func day(_ name: String) throws -> Date? {
                    guard let text = query.get(name).map({ String($0) }) else { return nil }
                    guard let date = RFC3339.parse(text) else { throw TeleportError.badParameter("\(name)=\(text) is not an RFC 3339 time") }
                    return date
                }
                try await auth.signAuditCheckpoint()
                return try APIResponse.json(try await auth.verifyAudit(from: try day("from"), to: try day("to")))
            }
        }
        v1.post("presence/nodes") { request, context in
            await APIResponse.handling(context) { try await heartbeat(request, context) }
        }
        v1.post("presence/proxies") { request, context in
            await APIResponse.handling(context) { try await proxyHeartbeat(request, context) }
        }
        registerDatabaseRoutes(on: v1)
        registerAppRoutes(on: v1)
        registerKubeRoutes(on: v1)
    }

    func caller(_ context: AuthRequestContext) throws -> Caller {
        guard let caller = context.caller else { throw TeleportError.accessDenied("not authenticated") }
        return caller
    }

    /// Proxies, nodes and the administrator: the cluster's own members.
    func requireHost(_ context: AuthRequestContext) throws {
        switch try caller(context).kind {
        case .system(.node), .system(.proxy), .system(.db), .system(.app), .system(.kube), .system(.admin): return
        default: throw TeleportError.accessDenied("only the cluster's proxies, nodes and database services may read issued certificates")
        }
    }

    /// Who reads recordings: the administrator (everything), or a user on whose behalf the proxy
    /// asks (`user` and `roles` from the user's certificate, which the proxy verified).
    func recordingReader(_ request: Request, _ context: AuthRequestContext) throws -> (user: String?, roles: [String]) {
        let query = request.uri.queryParameters
        let caller = try caller(context)
        switch caller.kind {
        case .system(.admin): return (query.get("user").map { String($0) }, [])
        case .system(.proxy):
            guard let user = query.get("user").map({ String($0) }), !user.isEmpty else {
                throw TeleportError.badParameter("the proxy must say which user asks")
            }
            let roles = (query.get("roles").map { String($0) } ?? "").split(separator: ",").map { String($0) }
            return (user, roles)
        case .user where caller.webSessionID != nil:
            // The proxy acts for a web session: the session's user and roles, never the query's.
            return (caller.identity.username, caller.identity.roles)
        default: throw TeleportError.accessDenied("recordings are read through the proxy or by the administrator")
        }
    }

    /// The administrator (and the auth service itself) may do anything; a user only what a role's
    /// `rules` allow (deny wins; roles as they are now, so a removed role takes effect at once).
    @discardableResult
    func authorize(_ context: AuthRequestContext, kind: String, verb: String) async throws -> Caller {
        let caller = try caller(context)
        switch caller.kind {
        case .system(.admin), .system(.auth):
            return caller
        case .user:
            let roles = await auth.existingRoles(caller.identity.roles)
            let decision = AccessChecker(roles: roles, traits: [:]).checkRule(kind: kind, verb: verb)
            guard decision.allowed else {
                throw TeleportError.accessDenied(
                    "\(caller.identity.username) may not \(verb) \(kind) resources (\(decision.reasons.joined(separator: "; "))); "
                        + "ask for a role whose rules allow it")
            }
            return caller
        case .system(let role):
            throw TeleportError.accessDenied("the \(role.rawValue) identity may not \(verb) \(kind) resources")
        }
    }

    func requireAdmin(_ context: AuthRequestContext) throws {
        guard try caller(context).isAdmin else {
            throw TeleportError.accessDenied("this call needs the cluster administrator's identity")
        }
    }

    func kind(_ context: AuthRequestContext) throws -> String {
        let typed = context.parameters.get("kind") ?? ""
        guard let kind = AnyResource.canonicalKind(typed) else {
            throw TeleportError.badParameter(
                "unknown resource kind \"\(typed)\" (known: \(AnyResource.kinds.joined(separator: ", ")))")
        }
        return kind
    }

    /// Cluster members may read what they need to work: CAs' public halves, and (proxies) nodes.
    func authorizeRead(kind: String, verb: String, context: AuthRequestContext) async throws {
        let caller = try caller(context)
        switch caller.kind {
        case .system(.admin), .system(.auth): return
        case .user:
            try await authorize(context, kind: kind, verb: verb)
        case .system(.proxy) where ResourceKinds.named(kind)?.serverKind != nil || kind == CertAuthority.kind || kind == ClusterNameResource.kind:
            // Agents' presence records of every kind: the proxy routes to them.
            return
        case .system(.node) where kind == CertAuthority.kind || kind == ClusterNameResource.kind || kind == ServerProxy.kind:
            // Nodes list the proxies to keep a reverse tunnel to each.
            return
        case .system(.db) where kind == CertAuthority.kind || kind == ClusterNameResource.kind:
            // Database services check users' certificates against the user CA.
            return
        case .system(.kube) where kind == CertAuthority.kind || kind == ClusterNameResource.kind || kind == ServerProxy.kind:
            // Kubernetes services check users' certificates and list the proxies for their tunnels.
            return
        case .system(.app) where kind == CertAuthority.kind || kind == ClusterNameResource.kind || kind == ServerProxy.kind:
            // Application services too; they name their apps after the proxies' public address.
            return
        default:
            throw TeleportError.accessDenied("\(caller.identity.username) may not read \(kind) resources")
        }
    }

    func withSecrets(_ request: Request, _ caller: Caller) throws -> Bool {
        guard request.uri.queryParameters.get("with_secrets") == "true" else { return false }
        guard caller.isAdmin else { throw TeleportError.accessDenied("only the administrator may read CA private keys and connector secrets") }
        return true
    }

    func redact(_ resource: any Resource, withSecrets: Bool) -> any Resource {
        guard !withSecrets else { return resource }
        if let ca = resource as? CertAuthority { return ca.withoutSecrets }
        if let oidc = resource as? OIDCConnector { return oidc.withoutSecrets }
        if let github = resource as? GitHubConnector { return github.withoutSecrets }
        return resource
    }

    func ping(_ context: AuthRequestContext) throws -> Response {
        let caller = try caller(context)
        return try APIResponse.json(
            AuthAPI.PingResponse(
                clusterName: auth.clusterName, serverVersion: TeleportVersion.version, identity: caller.identity.username,
                roles: caller.roleNames, sessionRecording: auth.settings.sessionRecording, auditFailure: auth.settings.auditFailure))
    }

    func list(_ request: Request, _ context: AuthRequestContext) async throws -> Response {
        let caller = try caller(context)
        let kind = try kind(context)
        try await authorizeRead(kind: kind, verb: "list", context: context)
        let secrets = try withSecrets(request, caller)
        if kind == ServerNode.kind {
            // Node records are stored as their JSON: send them as they are (tens of thousands of
            // them are listed often; decoding and re-encoding each would dominate), in chunks
            // rather than copied into one reply.
            return APIResponse.jsonArray(of: try await auth.stores.backend.getRange(prefix: auth.stores.nodes.prefix).map(\.value))
        }
        let resources = try await auth.stores.list(kind: kind).map { redact($0, withSecrets: secrets) }
        let trees = try resources.map { try JSONSerialization.jsonObject(with: ResourceCodec.json($0)) }
        return APIResponse.json(try JSONSerialization.data(withJSONObject: trees, options: [.sortedKeys]))
    }

    func get(_ request: Request, _ context: AuthRequestContext) async throws -> Response {
        let caller = try caller(context)
        let kind = try kind(context)
        try await authorizeRead(kind: kind, verb: "read", context: context)
        let name = context.parameters.get("name") ?? ""
        let resource = try await auth.stores.get(kind: kind, name: name)
        return APIResponse.json(try ResourceCodec.json(redact(resource, withSecrets: try withSecrets(request, caller))))
    }

    func create(_ request: Request, _ context: AuthRequestContext) async throws -> Response {
        let upsert = request.uri.queryParameters.get("upsert") == "true"
        let body = try await request.body.collect(upTo: ResourceCodec.maxDocumentBytes)
        let tree: Any
        do {
            tree = try JSONSerialization.jsonObject(with: Data(body.readableBytesView))
        } catch {
            throw TeleportError.badParameter("the request body is not JSON")
        }
        let resource = try ResourceCodec.decode(tree: tree, source: "request")
        try await authorize(context, kind: resource.kind, verb: "create")
        if upsert { try await authorize(context, kind: resource.kind, verb: "update") }
        if case .certAuthority = resource { try requireAdmin(context) }
        if case .user(let user) = resource { try await auth.stores.requireExistingRoles(of: user) }
        if let written = try await trustWrite([resource], upsert: upsert, context: context) {
            return try APIResponse.json(AuthAPI.ResourceBatchResponse(results: written))
        }
        if case .token(let token) = resource {
            // Token values are stored only as hashes.
            try await auth.tokens.put(token, upsert: upsert)
            try await auditWrite(resource: resource, deleted: false, caller: try caller(context))
            return try APIResponse.json(["status": "created"])
        }
        let stored = try await auth.stores.put(resource, upsert: upsert)
        if case .certAuthority = resource { auth.forgetCachedAuthorities() }
        try await auditWrite(resource: resource, deleted: false, caller: try caller(context))
        return APIResponse.json(try ResourceCodec.json(redact(stored, withSecrets: false)))
    }

    func delete(_ context: AuthRequestContext) async throws -> Response {
        let kind = try kind(context)
        try await authorize(context, kind: kind, verb: "delete")
        let name = context.parameters.get("name") ?? ""
        if let refusal = ResourceKinds.named(kind)?.deleteRefusal { throw TeleportError.badParameter(refusal) }
        if try await trustDelete(kind: kind, name: name, context: context) { return try APIResponse.json(["status": "deleted"]) }
        let existing = try await auth.stores.get(kind: kind, name: name)
        if kind == ServerNode.kind { auth.presence.forget(auth.stores.nodes.prefix + name) }
        try await auth.stores.delete(kind: kind, name: name)
        if kind == User.kind { try await auth.secrets.deleteAll(name) }
        if kind == ServerNode.kind { try await auth.removeHostIdentities(hostID: name) }
        try await auditWrite(resource: try AnyResource(existing), deleted: true, caller: try caller(context))
        return try APIResponse.json(["status": "deleted"])
    }

    func auditWrite(resource: AnyResource, deleted: Bool, caller: Caller) async throws {
        let type: (String, String)
        switch (resource, deleted) {
        case (.user, false): type = AuditEventType.userCreate
        case (.user, true): type = AuditEventType.userDelete
        case (.role, false): type = AuditEventType.roleCreated
        case (.role, true): type = AuditEventType.roleDeleted
        case (.token, false): type = AuditEventType.joinTokenCreate
        case (.lock, false): type = AuditEventType.lockCreated
        case (.lock, true): type = AuditEventType.lockDeleted
        case (_, false): type = AuditEventType.resourceCreate
        case (_, true): type = AuditEventType.resourceDelete
        }
        var fields: [String: JSONValue] = ["user": .string(caller.identity.username), "kind": .string(resource.kind)]
        if case .token = resource {
            fields["name"] = "********"
        } else {
            fields["name"] = .string(resource.name)
        }
        try await auth.emit(type, fields: fields)
    }

    func createToken(_ request: Request, _ context: AuthRequestContext) async throws -> Response {
        try await authorize(context, kind: "token", verb: "create")
        let body = try await request.body.collect(upTo: 64 * 1024)
        let create: AuthAPI.CreateTokenRequest
        do {
            create = try ResourceCodec.jsonDecoder().decode(AuthAPI.CreateTokenRequest.self, from: Data(body.readableBytesView))
        } catch {
            throw TeleportError.badParameter("the token request is not valid JSON: \(error)")
        }
        let token = try await auth.tokens.create(value: create.token, roles: create.roles, ttlSeconds: create.ttlSeconds)
        try await auth.emit(
            AuditEventType.joinTokenCreate,
            fields: [
                "user": .string(try caller(context).identity.username), "roles": .string(create.roles.map(\.rawValue).joined(separator: ",")),
                "expires": .string(token.expires.map(RFC3339.format) ?? ""),
            ])
        return try APIResponse.json(token)
    }

    func join(_ request: Request, _ context: AuthRequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: 64 * 1024)
        let join: AuthAPI.JoinRequest
        do {
            join = try ResourceCodec.jsonDecoder().decode(AuthAPI.JoinRequest.self, from: Data(body.readableBytesView))
        } catch {
            throw TeleportError.badParameter("the join request is not valid JSON")
        }
        let remote = context.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "unknown"
        // A host that presents its current identity proves it owns its UUID (renewal, second role).
        var proven: String?
        if let presented = try? await AuthenticationMiddleware(auth: auth, peerCertificates: peerCertificates).caller(of: context),
            presented.kind == .system(.node) || presented.kind == .system(.proxy)
        {
            proven = presented.identity.username.split(separator: ".").first.map(String.init)
        }
        return try APIResponse.json(try await auth.join(join, remoteAddress: remote, provenHostUUID: proven))
    }

    func heartbeat(_ request: Request, _ context: AuthRequestContext) async throws -> Response {
        let caller = try caller(context)
        guard caller.kind == .system(.node) || caller.isAdmin else {
            throw TeleportError.accessDenied("only nodes send heartbeats")
        }
        auth.settings.metrics?.increment(.heartbeats)
        let body = Data(try await request.body.collect(upTo: ResourceCodec.maxDocumentBytes).readableBytesView)
        let expires = auth.clock.now().addingTimeInterval(Presence.nodeTTL)
        // Most heartbeats repeat the previous one byte for byte: reuse its checked, encoded record.
        if let known = auth.presence.checkedRecord(caller: caller.identity.username, body: body) {
            try await auth.presence.record(Item(key: known.key, value: known.value, expires: expires))
            return try APIResponse.json(["status": "ok"])
        }
        var node = try ownHeartbeat(ServerNode.self, body: body, caller: caller, name: \.metadata.name, what: "node")
        try node.validate()
        // The expiry lives on the backend item (readers get it from there), not in the JSON.
        node.metadata.expires = nil
        node.metadata.revision = nil
        let key = auth.stores.nodes.prefix + node.name
        let value = try ResourceCodec.json(node)
        auth.presence.rememberChecked(caller: caller.identity.username, body: body, key: key, value: value)
        try await auth.presence.record(Item(key: key, value: value, expires: expires))
        return try APIResponse.json(["status": "ok"])
    }
}

extension AuthAPIRoutes {
    /// `POST /v1/presence/proxies`: a proxy's heartbeat; a proxy may only write its own record,
    /// which expires like a node's (``Presence/nodeTTL``).
    func proxyHeartbeat(_ request: Request, _ context: AuthRequestContext) async throws -> Response {
        let caller = try caller(context)
        guard caller.kind == .system(.proxy) || caller.isAdmin else {
            throw TeleportError.accessDenied("only proxies send proxy heartbeats")
        }
        let body = Data(try await request.body.collect(upTo: ResourceCodec.maxDocumentBytes).readableBytesView)
        var proxy = try ownHeartbeat(ServerProxy.self, body: body, caller: caller, name: \.metadata.name, what: "proxy")
        try proxy.validate()
        proxy.metadata.expires = nil
        proxy.metadata.revision = nil
        let expires = auth.clock.now().addingTimeInterval(Presence.nodeTTL)
        try await auth.presence.record(Item(key: ServerProxy.storagePrefix + proxy.name, value: try ResourceCodec.json(proxy), expires: expires))
        return try APIResponse.json(["status": "ok"])
    }
}

/// Presence timing.
public enum Presence {
    /// How long a node record lives without a heartbeat.
    public static let nodeTTL: TimeInterval = 30
    /// How often nodes heartbeat.
    public static let heartbeatInterval: TimeInterval = 10
}

extension AuthAPIRoutes {
    /// Decodes a heartbeat body as `Record` and checks that a caller other than the admin writes
    /// only its own record (named by its host UUID, the first label of its certificate's name).
    func ownHeartbeat<Record: Decodable>(
        _ type: Record.Type, body: Data, caller: Caller, name: KeyPath<Record, String>, what: String
    ) throws -> Record {
        let record: Record
        do {
            record = try ResourceCodec.jsonDecoder().decode(Record.self, from: body)
        } catch {
            throw TeleportError.badParameter("the heartbeat is not a \(what) resource")
        }
        let hostUUID = caller.identity.username.split(separator: ".").first.map(String.init) ?? ""
        guard caller.isAdmin || record[keyPath: name] == hostUUID else {
            throw TeleportError.accessDenied("a \(what) may only heartbeat its own record (\(hostUUID))")
        }
        return record
    }
}
