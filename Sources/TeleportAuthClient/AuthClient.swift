public import Foundation
public import TeleportAPI
import NIOCore
import NIOHTTP1

/// The typed client of the auth API (`/v1`), used alike by `tctl`, proxies and nodes.
public struct AuthClient: Sendable {
    var transport: HTTPSTransport
    /// The address dialled, `host:port`.
    public let address: String

    /// Creates a client for the auth service at `address` (`host:port`) presenting `identity`;
    /// `fallbacks` are other auth servers of the same cluster, dialled when one cannot be reached
    /// (the one that answered last is tried first).
    public init(address: String, fallbacks: [String] = [], identity: ClientIdentity, timeout: Duration = .seconds(30)) throws {
        let (host, port) = try HostPort.parse(address, defaultPort: 3025, key: "--auth-server")
        let nanoseconds = Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        transport = try HTTPSTransport(
            host: host, port: port, identity: identity, trustedCAPEMs: identity.trustedCAPEMs, serverName: AuthAPI.serverName,
            timeout: .nanoseconds(nanoseconds))
        transport.fallbacks = try fallbacks.filter { $0 != address }.map { try HostPort.parse($0, defaultPort: 3025, key: "auth_servers") }
        transport.keepsConnections = true
        self.address = address
    }

    /// A client for the first of `addresses` that fails over to the others.
    public init(addresses: [String], identity: ClientIdentity, timeout: Duration = .seconds(30)) throws {
        guard let first = addresses.first else {
            throw TeleportError.badParameter("no auth server address: set teleport.auth_servers (or --auth-server)")
        }
        try self.init(address: first, fallbacks: Array(addresses.dropFirst()), identity: identity, timeout: timeout)
    }

    /// A client that asks on behalf of the user of the web session `id` (the proxy's identity
    /// plus ``AuthAPI/webSessionHeader``): the auth service checks the session and then treats
    /// each call as that user's, with the user's roles, exactly as for `tsh` or `tctl`.
    public func actingFor(webSession id: String) -> AuthClient {
        var copy = self
        copy.transport.extraHeaders = [(AuthAPI.webSessionHeader, id)]
        return copy
    }

    func call(_ method: HTTPMethod, _ path: String, body: Data? = nil) async throws -> Data {
        let reply = try await transport.request(method: method, path: "/\(TeleportVersion.apiVersion)/\(path)", body: body)
        guard (200..<300).contains(reply.status) else {
            if let error = try? ResourceCodec.jsonDecoder().decode(AuthAPI.ErrorResponse.self, from: reply.body) {
                throw TeleportError(TeleportError.Code.fromWire(error.error.code), error.error.message)
            }
            throw TeleportError.connectionProblem("the auth service answered HTTP \(reply.status) to \(path)")
        }
        return reply.body
    }

    func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        do {
            return try ResourceCodec.jsonDecoder().decode(type, from: data)
        } catch {
            throw TeleportError.connectionProblem("the auth service sent a reply we cannot read: \(error)")
        }
    }

    /// Who the server thinks we are, and the cluster name.
    public func ping() async throws -> AuthAPI.PingResponse {
        try decode(AuthAPI.PingResponse.self, try await call(.GET, "ping"))
    }

    /// `tctl auth rotate`: starts or moves a CA rotation.
    public func rotate(_ request: AuthAPI.RotateRequest) async throws -> AuthAPI.RotateResponse {
        try decode(AuthAPI.RotateResponse.self, try await call(.POST, "certauthorities/rotate", body: try ResourceCodec.json(request)))
    }

    /// An agent's new identity for `publicKeyPEM` (same role, host and names as the one presented).
    public func renewIdentity(publicKeyPEM: String) async throws -> AuthAPI.JoinResponse {
        try decode(
            AuthAPI.JoinResponse.self,
            try await call(.POST, "certs/renew", body: try ResourceCodec.json(AuthAPI.RenewIdentityRequest(publicKeyPEM: publicKeyPEM))))
    }

    /// Presents `identity` (and trusts its CA certificates) from the next request on, in this
    /// client and every copy of it (a renewed host identity, new CAs during a rotation).
    public func reload(identity: ClientIdentity) throws {
        try transport.reload(identity: identity)
    }

    /// The cluster status (administrator only).
    public func status() async throws -> AuthAPI.StatusResponse {
        try decode(AuthAPI.StatusResponse.self, try await call(.GET, "status"))
    }

    /// Every resource of `kind`.
    public func resources(kind: String, withSecrets: Bool = false) async throws -> [AnyResource] {
        let data = try await call(.GET, "resources/\(try pathComponent(kind))" + (withSecrets ? "?with_secrets=true" : ""))
        guard let trees = try? JSONSerialization.jsonObject(with: data) as? [Any] else {
            throw TeleportError.connectionProblem("the auth service sent a list we cannot read")
        }
        return try trees.map { try ResourceCodec.decode(tree: $0, source: "auth service reply") }
    }

    /// The resource `kind/name`.
    public func resource(kind: String, name: String, withSecrets: Bool = false) async throws -> AnyResource {
        let data = try await call(
            .GET, "resources/\(try pathComponent(kind))/\(try pathComponent(name))" + (withSecrets ? "?with_secrets=true" : ""))
        return try ResourceCodec.decode(tree: try JSONSerialization.jsonObject(with: data), source: "auth service reply")
    }

    /// Creates a resource, or with `upsert` creates or replaces it.
    public func create(_ resource: AnyResource, upsert: Bool) async throws {
        _ = try await call(.POST, "resources?upsert=\(upsert)", body: try ResourceCodec.json(resource.value))
    }

    /// Deletes `kind/name`.
    public func delete(kind: String, name: String) async throws {
        _ = try await call(.DELETE, "resources/\(try pathComponent(kind))/\(try pathComponent(name))")
    }

    /// Every registered node, decoded directly (a trusted reply; no per-item strict checks).
    public func nodes() async throws -> [ServerNode] {
        try decode([ServerNode].self, try await call(.GET, "resources/node"))
    }

    /// Every registered node as the auth service sends it: a JSON array of the stored records, not
    /// decoded (the proxy's node list decodes only the records that changed since its last read).
    public func nodeRecords() async throws -> Data {
        try await call(.GET, "resources/node")
    }

    /// The SSH host keys the cluster vouches for.
    public func hostKeys() async throws -> [AuthAPI.HostKey] {
        try decode([AuthAPI.HostKey].self, try await call(.GET, "hostkeys"))
    }

    /// Sends a proxy's heartbeat (the caller must be that proxy).
    public func heartbeat(proxy: ServerProxy) async throws {
        _ = try await call(.POST, "presence/proxies", body: try ResourceCodec.json(proxy))
    }

    /// The proxies that heartbeat now (nodes read them to keep a tunnel to each).
    public func proxies() async throws -> [ServerProxy] {
        try decode([ServerProxy].self, try await call(.GET, "resources/\(ServerProxy.kind)"))
    }

    /// The auth servers that announced themselves (hosts keep them in `authservers.json`).
    public func authServers() async throws -> [AuthAPI.AuthServerEntry] {
        try decode([AuthAPI.AuthServerEntry].self, try await call(.GET, "authservers"))
    }

    /// Sends a node's heartbeat (the caller must be that node).
    public func heartbeat(_ node: ServerNode) async throws {
        _ = try await call(.POST, "presence/nodes", body: try ResourceCodec.json(node))
    }

    func pathComponent(_ text: String) throws -> String {
        guard !text.isEmpty, text.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@:+".contains($0) }), text != ".", text != ".." else {
            throw TeleportError.badParameter("\"\(text)\" is not a valid resource kind or name")
        }
        return text
    }
}

extension AuthClient {
    /// Creates a join token (administrator only); the reply carries the token's value, once.
    public func createToken(_ request: AuthAPI.CreateTokenRequest) async throws -> AuthAPI.TokenInfo {
        try decode(AuthAPI.TokenInfo.self, try await call(.POST, "tokens", body: try ResourceCodec.json(request)))
    }

    /// Lists join tokens (masked).
    public func tokens() async throws -> [AuthAPI.TokenInfo] {
        try decode([AuthAPI.TokenInfo].self, try await call(.GET, "tokens"))
    }

    /// Revokes a join token by value or by the hash prefix `tokens()` shows.
    public func deleteToken(_ token: String) async throws {
        guard token.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:".contains($0) }), !token.isEmpty else {
            throw TeleportError.badParameter("\"\(token)\" is not a token")
        }
        _ = try await call(.DELETE, "tokens/\(token)")
    }
}

extension AuthClient {
    /// The user-certificate change feed after `cursor` (nil: a snapshot), waiting up to `wait` seconds.
    public func userCertificateChanges(after cursor: String?, wait: Int) async throws -> AuthAPI.UserCertChanges {
        var path = "usercerts?wait=\(wait)"
        if let cursor {
            guard cursor.allSatisfy({ $0.isLetter || $0.isNumber || $0 == ":" || $0 == "-" }) else {
                throw TeleportError.badParameter("malformed certificate feed cursor")
            }
            path += "&after=\(cursor)"
        }
        return try decode(AuthAPI.UserCertChanges.self, try await call(.GET, path))
    }

    /// The current certificate of the key with SHA-256 `fingerprintHex`.
    public func userCertificate(fingerprintHex: String) async throws -> AuthAPI.UserCertLookup {
        try decode(AuthAPI.UserCertLookup.self, try await call(.GET, "usercerts/\(try pathComponent(fingerprintHex))"))
    }
}

extension AuthClient {
    /// Sends audit events for the auth service to store (nodes and proxies), in requests of at
    /// most ``maxEventsBody`` bytes. A failed request fails the call, and the queue sends the
    /// whole batch again: events of requests before it are then stored twice (same `uid`).
    public func emitEvents(_ events: [AuditEvent]) async throws {
        var body = Data("[".utf8)
        var count = 0
        for event in events {
            let line = try event.jsonLine()
            // The auth service reads at most 8 MiB a request: a long batch goes in several.
            if count > 0, body.count + line.count + 2 > Self.maxEventsBody {
                body.append(UInt8(ascii: "]"))
                _ = try await call(.POST, "events", body: body)
                body = Data("[".utf8)
                count = 0
            }
            if count > 0 { body.append(UInt8(ascii: ",")) }
            body.append(line)
            count += 1
        }
        body.append(UInt8(ascii: "]"))
        _ = try await call(.POST, "events", body: body)
    }

    /// The most bytes of events sent in one request (the auth service takes up to 8 MiB).
    static let maxEventsBody = 4 << 20

    /// One page of stored events (callers whose roles allow list on event), optionally only of
    /// one user or one session.
    public func searchEvents(
        from: Date, to: Date, types: [String], limit: Int, startKey: String?, user: String? = nil, sessionID: String? = nil
    ) async throws -> AuthAPI.EventsPage {
        var query = "from=\(Self.escape(RFC3339.format(from)))&to=\(Self.escape(RFC3339.format(to)))&limit=\(limit)"
        if let user { query += "&user=\(Self.escape(user))" }
        if let sessionID { query += "&sid=\(Self.escape(sessionID))" }
        if !types.isEmpty { query += "&type=\(Self.escape(types.joined(separator: ",")))" }
        if let startKey { query += "&start_key=\(Self.escape(startKey))" }
        return try ResourceCodec.jsonDecoder().decode(AuthAPI.EventsPage.self, from: try await call(.GET, "events?\(query)"))
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }
}

extension AuthClient {
    /// Checks the audit log's hash chain and checkpoints (administrators).
    public func verifyAudit(from: Date?, to: Date?) async throws -> AuditChainReport {
        var query: [String] = []
        if let from { query.append("from=\(Self.escape(RFC3339.format(from)))") }
        if let to { query.append("to=\(Self.escape(RFC3339.format(to)))") }
        let path = "audit/verify" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        return try ResourceCodec.jsonDecoder().decode(AuditChainReport.self, from: try await call(.GET, path))
    }
}

/// The reply of `GET /v1/audit/verify` (the auth service's `AuditChain.Report`).
public struct AuditChainReport: Codable, Sendable, Equatable {
    public var ok: Bool
    public var files: Int
    public var events: Int
    public var checkpoints: Int
    public var problem: String?
}

extension AuthClient {
    /// Sends a finished (or interrupted) session recording, gzip-compressed (nodes).
    public func uploadRecording(sessionID: String, gzip: Data) async throws {
        _ = try await call(.POST, "sessions/\(try pathComponent(sessionID))/recording", body: gzip)
    }

    /// The recordings `user` (with `roles`) may read; everything for the administrator.
    public func recordings(forUser user: String?, roles: [String]) async throws -> [AuthAPI.RecordingInfo] {
        var path = "sessions"
        if let user { path += "?user=\(Self.escape(user))&roles=\(Self.escape(roles.joined(separator: ",")))" }
        return try ResourceCodec.jsonDecoder().decode([AuthAPI.RecordingInfo].self, from: try await call(.GET, path))
    }

    /// A recording's JSON lines, for `user` (audited as `session.recording.access`).
    public func recording(sessionID: String, forUser user: String?, roles: [String]) async throws -> Data {
        var path = "sessions/\(try pathComponent(sessionID))/recording"
        if let user { path += "?user=\(Self.escape(user))&roles=\(Self.escape(roles.joined(separator: ",")))" }
        return try await call(.GET, path)
    }
}

extension AuthClient {
    /// Reports an interactive session that started (nodes).
    public func reportActiveSession(_ session: AuthAPI.ActiveSession) async throws {
        _ = try await call(.POST, "sessions/active", body: try ResourceCodec.json(session))
    }

    /// Reports that an interactive session ended (nodes).
    public func endActiveSession(_ sid: String) async throws {
        _ = try await call(.DELETE, "sessions/active/\(try pathComponent(sid))")
    }

    /// The interactive sessions running now (the proxy asks on a user's behalf).
    public func activeSessions() async throws -> [AuthAPI.ActiveSession] {
        try ResourceCodec.jsonDecoder().decode([AuthAPI.ActiveSession].self, from: try await call(.GET, "sessions/active"))
    }
}
