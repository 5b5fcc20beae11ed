import Foundation
public import TeleportAPI

/// The proxy's public JSON API as `tsh` uses it (`/webapi/...`), over any ``ProxyTransport``.
public struct WebClient: Sendable {
    /// The transport.
    public let transport: any ProxyTransport
    /// The proxy's address, for messages.
    public let address: ProxyAddress

    /// Creates a client.
    public init(transport: any ProxyTransport, address: ProxyAddress) {
        self.transport = transport
        self.address = address
    }

    /// `GET /webapi/ping`: the cluster name and authentication settings.
    public func ping() async throws -> WebAPI.PingResponse {
        try decode(WebAPI.PingResponse.self, try await transport.get("/webapi/ping"), what: "ping")
    }

    /// `POST /webapi/ssh/certs`: checks the password (and OTP) and certifies the public keys.
    public func login(_ request: AuthAPI.LoginRequest) async throws -> AuthAPI.LoginResponse {
        let body = try ResourceCodec.json(request)
        return try decode(AuthAPI.LoginResponse.self, try await transport.post(WebAPI.loginPath, body: body), what: "login")
    }

    /// One page of `GET /webapi/nodes`.
    public struct NodePage: Decodable, Sendable {
        /// The nodes.
        public var items: [ServerNode]
        /// Where the next page starts; `nil` on the last page.
        public var nextKey: String?

        enum CodingKeys: String, CodingKey {
            case items
            case nextKey = "next_key"
        }
    }

    /// Every node the user may see whose labels match `labels` (`env=prod,role=db`), page by page.
    public func nodes(labels: String, pageSize: Int = 10_000) async throws -> [ServerNode] {
        var all: [ServerNode] = []
        var start: String?
        repeat {
            var query = "labels=\(Self.escape(labels))&limit=\(pageSize)"
            if let start { query += "&start=\(Self.escape(start))" }
            let page = try decode(NodePage.self, try await transport.get("/webapi/nodes?\(query)"), what: "node list")
            all += page.items
            start = page.nextKey
        } while start != nil
        return all
    }

    /// `POST /webapi/databases/login`: the user's certificate with a route to database `name`.
    public func databaseLogin(name: String, dbUser: String, dbName: String) async throws -> AuthAPI.DatabaseRouteCertResponse {
        let body = try JSONSerialization.data(withJSONObject: ["name": name, "db_user": dbUser, "db_name": dbName])
        return try decode(
            AuthAPI.DatabaseRouteCertResponse.self, try await transport.post("/webapi/databases/login", body: body), what: "database login")
    }

    /// `GET /webapi/databases`: the databases the user may see whose labels match `labels`.
    public func databases(labels: String) async throws -> [DatabaseServer] {
        try decode([DatabaseServer].self, try await transport.get("/webapi/databases?labels=\(Self.escape(labels))"), what: "database list")
    }

    /// A leaf cluster's nodes as the root's proxy passes them on (trusted clusters).
    public struct LeafListing: Decodable, Sendable {
        /// The leaf's nodes the user's mapped roles reach.
        public var nodes: [ServerNode]
        /// Their host keys.
        public var hostKeys: [AuthAPI.HostKey]

        enum CodingKeys: String, CodingKey {
            case nodes
            case hostKeys = "host_keys"
        }
    }

    /// `POST /webapi/sites/LEAF/nodes`: the nodes of leaf cluster `cluster` the user may see there
    /// (the leaf maps the roles of `certificate`, the user's SSH certificate), with their host keys.
    public func leafNodes(cluster: String, certificate: String) async throws -> LeafListing {
        let body = try JSONSerialization.data(withJSONObject: ["certificate": certificate])
        return try decode(
            LeafListing.self, try await transport.post("/webapi/sites/\(Self.escape(cluster))/nodes", body: body), what: "leaf cluster node list")
    }

    /// `POST /webapi/sites/LEAF/sessions`: the leaf's live sessions the user may see there.
    func leafSessions(cluster: String, certificate: String) async throws -> [AuthAPI.ActiveSession] {
        let body = try JSONSerialization.data(withJSONObject: ["certificate": certificate])
        return try decode(
            [AuthAPI.ActiveSession].self, try await transport.post("/webapi/sites/\(Self.escape(cluster))/sessions", body: body),
            what: "leaf cluster sessions")
    }

    /// `POST /webapi/sites/LEAF/recordings`: the leaf's recordings the user's mapped roles may read.
    func leafRecordings(cluster: String, certificate: String) async throws -> [AuthAPI.RecordingInfo] {
        let body = try JSONSerialization.data(withJSONObject: ["certificate": certificate])
        return try decode(
            [AuthAPI.RecordingInfo].self, try await transport.post("/webapi/sites/\(Self.escape(cluster))/recordings", body: body),
            what: "leaf cluster recordings")
    }

    /// `POST /webapi/sites/LEAF/recording`: one recording of the leaf (its JSON lines), when the
    /// user's mapped roles may read it.
    func leafRecording(cluster: String, certificate: String, sessionID: String) async throws -> Data {
        let body = try JSONSerialization.data(withJSONObject: ["certificate": certificate, "sid": sessionID])
        let reply = try await transport.post("/webapi/sites/\(Self.escape(cluster))/recording", body: body)
        guard (200..<300).contains(reply.status) else {
            _ = try decode(JSONValue.self, reply, what: "recording")
            throw TeleportError.connectionProblem("the proxy answered HTTP \(reply.status)")
        }
        return reply.body
    }

    /// The SSH host keys the cluster vouches for.
    public func hostKeys() async throws -> [AuthAPI.HostKey] {
        try decode([AuthAPI.HostKey].self, try await transport.get("/webapi/hostkeys"), what: "host keys")
    }

    /// `GET /webapi/locks/mine?login=LOGIN`: the locks in force that target the logged-in user
    /// (by user, or by `login` when the certificate lists it); never other users' locks.
    public func myLocks(login: String) async throws -> [WebAPI.MyLock] {
        try decode([WebAPI.MyLock].self, try await transport.get("\(WebAPI.myLocksPath)?login=\(Self.escape(login))"), what: "lock")
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.~"))) ?? text
    }

    /// Decodes a 2xx reply as `T`, or turns an error reply into the server's ``TeleportError``.
    func decode<T: Decodable>(_ type: T.Type, _ reply: HTTPReply, what: String) throws -> T {
        guard (200..<300).contains(reply.status) else {
            if let error = try? ResourceCodec.jsonDecoder().decode(AuthAPI.ErrorResponse.self, from: reply.body) {
                throw TeleportError(TeleportError.Code.fromWire(error.error.code), error.error.message)
            }
            if reply.status == 404 {
                throw TeleportError.notFound(
                    "the proxy at \(address) has no \(what) API (HTTP 404); is it a Teleport proxy's web address (port 3080)?")
            }
            let snippet = String(decoding: reply.body.prefix(200), as: UTF8.self)
            throw TeleportError.connectionProblem("the proxy at \(address) answered HTTP \(reply.status) to \(what): \(snippet)")
        }
        do {
            return try ResourceCodec.jsonDecoder().decode(type, from: reply.body)
        } catch {
            throw TeleportError.connectionProblem(
                "the proxy at \(address) sent a \(what) reply that is not understood: \(error); is it a Teleport proxy?")
        }
    }
}

extension WebClient {
    /// `POST /webapi/apps/login`: the caller's certificate with an app route.
    public func appLogin(name: String) async throws -> AuthAPI.DatabaseRouteCertResponse {
        let body = try JSONSerialization.data(withJSONObject: ["name": name])
        return try decode(AuthAPI.DatabaseRouteCertResponse.self, try await transport.post("/webapi/apps/login", body: body), what: "app login")
    }

    /// `GET /webapi/apps`: the apps the user may use whose labels match `labels`.
    public func apps(labels: String) async throws -> [AppServer] {
        try decode([AppServer].self, try await transport.get("/webapi/apps?labels=\(Self.escape(labels))"), what: "app list")
    }
}
