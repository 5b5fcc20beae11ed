import Foundation
import Hummingbird
import NIOCore
import NIOSSL
import TeleportAccess
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import X509
import Synchronization

/// `GET /webapi/nodes` for `tsh ls`: the nodes a logged-in user may see, filtered by labels,
/// a page at a time. The user is the one in the TLS client certificate (verified against the user
/// CA by the listener); only nodes the user's roles let them reach with one of their logins are listed.
struct NodesRoute {
    /// The largest page.
    static let maxPage = 10_000

    let auth: AuthClient
    let clusterName: String
    /// The roles of these names, as the proxy's certificate cache has them.
    let roles: @Sendable ([String]) -> [Role]
    let cache = NodeListCache()

    /// The role engine for the user of `identity` (traits: the certificate's logins).
    func checker(for identity: X509Identity) -> AccessChecker {
        AccessChecker(roles: roles(identity.roles), traits: ["internal.logins": identity.logins])
    }

    func register(on router: Router<ProxyRequestContext>) {
        router.get("webapi/nodes") { request, context -> Response in
            do {
                let query = request.uri.queryParameters
                let limit = min(max(Int(query.get("limit") ?? "") ?? 1000, 1), Self.maxPage)
                let sortText = query.get("sort") ?? "name"
                guard let sort = NodeListQuery.Sort(rawValue: sortText) else {
                    throw TeleportError.badParameter("sort must be name or addr, not \"\(sortText)\"")
                }
                var list = NodeListQuery(
                    search: query.get("search") ?? "", labels: try LabelSelector.parse(query.get("labels") ?? ""), sort: sort,
                    pageToken: query.get("page_token") ?? query.get("start") ?? "", limit: limit)
                guard let identity = try await certificateUser(context) else {
                    return try await webPage(request, list: list)
                }
                // tsh: pages by host name, `start` and `next_key`.
                list.sort = .name
                let reach = NodeReachability(checker: checker(for: identity), logins: identity.logins)
                let page = list.page(of: try await cache.sorted(auth: auth, by: .name)) { reach.allows(labels: $0.labels) }
                return try NodePage.response(items: page.items, nextKey: page.nextToken)
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
    }

    /// The web UI's answer (a session cookie, no client certificate): the same role check as for
    /// `tsh ls`, with the session's roles and logins; 401 without a valid session.
    func webPage(_ request: Request, list: NodeListQuery) async throws -> Response {
        let info: AuthAPI.WebSessionInfo
        switch try await WebSessionCookie.session(of: request, auth: auth) {
        case .failure(let failure): return failure.response
        case .success(let found): info = found.info
        }
        let checker = AccessChecker(roles: roles(info.roles), traits: ["internal.logins": info.logins])
        let reach = NodeReachability(checker: checker, logins: info.logins)
        let reachAs = info.logins.map { (login: $0, reach: NodeReachability(checker: checker, logins: [$0])) }
        let page = list.page(of: try await cache.sorted(auth: auth, by: list.sort)) { reach.allows(labels: $0.labels) }
        let items = page.items.map { entry in
            let node = entry.node
            return WebNode(
                name: node.spec.hostname, id: node.name, address: node.isTunnelled ? nil : node.spec.addr, tunnel: node.isTunnelled,
                labels: entry.labels, logins: reachAs.filter { $0.reach.allows(labels: entry.labels) }.map(\.login))
        }
        return WebResponse.json(Self.htmlSafe(try ResourceCodec.json(WebNodePage(items: items, nextPageToken: page.nextToken))))
    }

    /// JSON with `<`, `>` and `&` written as `\u003c`, `\u003e`, `\u0026` (they only occur inside
    /// strings): a label value such as `<script>` stays inert even if the reply is ever sniffed or
    /// pasted into a page.
    static func htmlSafe(_ json: Data) -> Data {
        var out = Data()
        out.reserveCapacity(json.count)
        for byte in json {
            switch byte {
            case UInt8(ascii: "<"): out.append(contentsOf: Array("\\u003c".utf8))
            case UInt8(ascii: ">"): out.append(contentsOf: Array("\\u003e".utf8))
            case UInt8(ascii: "&"): out.append(contentsOf: Array("\\u0026".utf8))
            default: out.append(byte)
            }
        }
        return out
    }

    /// `GET /webapi/sessions/recordings` and `GET /webapi/sessions/:sid/recording`: recordings the
    /// logged-in user may read (the auth service decides and audits, on the user's behalf).
    func registerRecordings(on router: Router<ProxyRequestContext>) {
        router.get("webapi/sessions/recordings") { _, context -> Response in
            do {
                let identity = try await user(context)
                return WebResponse.json(try ResourceCodec.json(try await auth.recordings(forUser: identity.username, roles: identity.roles)))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
        router.get("webapi/sessions/active") { request, context -> Response in
            do {
                // tsh presents its certificate; the web UI its session cookie (same rule for both).
                if let identity = try await certificateUser(context) {
                    let sessions = try await ActiveSessionsList.visible(
                        auth: auth, user: identity.username, checker: checker(for: identity))
                    return WebResponse.json(try ResourceCodec.json(sessions))
                }
                switch try await WebSessionCookie.session(of: request, auth: auth) {
                case .failure(let failure): return failure.response
                case .success(let found):
                    let info = found.info
                    let sessions = try await ActiveSessionsList.visible(
                        auth: auth, user: info.user, checker: AccessChecker(roles: roles(info.roles), traits: ["internal.logins": info.logins]))
                    return WebResponse.json(Self.htmlSafe(try ResourceCodec.json(sessions)))
                }
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
        router.get("webapi/sessions/:sid/recording") { _, context -> Response in
            do {
                let identity = try await user(context)
                let lines = try await auth.recording(
                    sessionID: context.parameters.get("sid") ?? "", forUser: identity.username, roles: identity.roles)
                return WebResponse.json(lines)
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
    }

    /// `GET /webapi/hostkeys`: the SSH host keys the cluster vouches for, with the host CA lines,
    /// for `tsh`'s known_hosts (no key is ever trusted on first use).
    func registerHostKeys(on router: Router<ProxyRequestContext>) {
        router.get("webapi/hostkeys") { _, context -> Response in
            do {
                _ = try await user(context)
                return WebResponse.json(try ResourceCodec.json(try await auth.hostKeys()))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
    }

    func user(_ context: ProxyRequestContext) async throws -> X509Identity {
        try await Self.user(context, clusterName: clusterName)
    }

    /// The certificate's user, or nil when the request has no client certificate.
    func certificateUser(_ context: ProxyRequestContext) async throws -> X509Identity? {
        guard try await context.channel.nioSSL_peerCertificate().get() != nil else { return nil }
        return try await user(context)
    }

    /// The logged-in user of this request: the TLS client certificate's identity, of this cluster.
    static func user(_ context: ProxyRequestContext, clusterName: String) async throws -> X509Identity {
        guard let peer = try await context.channel.nioSSL_peerCertificate().get() else {
            throw TeleportError.accessDenied("log in first: tsh login --proxy=<this proxy>")
        }
        let identity = try X509Identity(certificate: try Certificate.fromDER(try peer.toDERBytes()))
        guard identity.clusterName == clusterName else {
            throw TeleportError.accessDenied("the certificate belongs to another cluster (\(identity.clusterName))")
        }
        return identity
    }
}

/// One page of `/webapi/nodes` for `tsh`: `{"items":[NODE,...],"next_key":"..."}` (what encoding
/// `{items, next_key}` with ``ResourceCodec/jsonEncoder(pretty:)`` writes), put together from the
/// nodes' JSON encoded once (``ListedNode/json``) and sent in chunks: a page of 10,000 nodes is
/// neither encoded again nor held whole in memory.
enum NodePage {
    /// The most bytes of one chunk of the reply.
    static let chunkBytes = 64 * 1024

    /// The reply.
    static func response(items: [ListedNode], nextKey: String?) throws -> Response {
        let tail = try Self.tail(nextKey: nextKey)
        let length = 10 + items.reduce(0) { $0 + $1.json.count } + max(items.count - 1, 0) + tail.count
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        headers[.xContentTypeOptions] = "nosniff"
        return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: length) { writer in
            var chunk = ByteBuffer()
            chunk.reserveCapacity(chunkBytes)
            chunk.writeString("{\"items\":[")
            for (index, item) in items.enumerated() {
                if index > 0 { chunk.writeInteger(UInt8(ascii: ",")) }
                chunk.writeBytes(item.json)
                if chunk.readableBytes >= chunkBytes {
                    try await writer.write(chunk)
                    chunk.clear()
                }
            }
            chunk.writeBytes(tail)
            try await writer.write(chunk)
            try await writer.finish(nil)
        })
    }

    /// `]}`, or `],"next_key":"KEY"}`.
    static func tail(nextKey: String?) throws -> Data {
        guard let nextKey else { return Data("]}".utf8) }
        return Data("],\"next_key\":".utf8) + (try ResourceCodec.json(nextKey)) + Data("}".utf8)
    }
}

/// `env=prod,role=db`: every key must match (the `tsh ls` filter).
struct LabelSelector {
    var required: [String: String]

    static func parse(_ text: String) throws -> LabelSelector {
        var required: [String: String] = [:]
        for part in text.split(separator: ",") where !part.isEmpty {
            guard let equals = part.firstIndex(of: "=") else {
                throw TeleportError.badParameter("\"\(part)\" is not a label filter key=value")
            }
            required[String(part[..<equals])] = String(part[part.index(after: equals)...])
        }
        return LabelSelector(required: required)
    }

    func matches(_ labels: [String: String]) -> Bool {
        required.allSatisfy { labels[$0.key] == $0.value }
    }
}

/// A node as the web UI's resource table shows it.
struct WebNode: Encodable {
    var name: String
    var id: String
    /// Nil for a node reached through its tunnel.
    var address: String?
    var tunnel: Bool
    var labels: [String: String]
    /// The user's logins this node accepts.
    var logins: [String]
}

/// One page of the web UI's `/webapi/nodes`.
struct WebNodePage: Encodable {
    var items: [WebNode]
    var nextPageToken: String?

    enum CodingKeys: String, CodingKey {
        case items
        case nextPageToken = "next_page_token"
    }
}

/// The live sessions a user may see (`tsh sessions ls`, the web UI's list, `tsh join` and the web
/// terminal's join): all of them with a role allowing `list` on `session`, else the user's own.
enum ActiveSessionsList {
    static func visible(auth: AuthClient, user: String, checker: AccessChecker) async throws -> [AuthAPI.ActiveSession] {
        let privileged = checker.checkRule(kind: "session", verb: "list").allowed
        return try await auth.activeSessions().filter { privileged || $0.user == user }
    }
}
