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
                let identity = try await user(context)
                let checker = checker(for: identity)
                let query = request.uri.queryParameters
                let selector = try LabelSelector.parse(query.get("labels") ?? "")
                let limit = min(max(Int(query.get("limit") ?? "") ?? 1000, 1), Self.maxPage)
                let start = query.get("start") ?? ""
                let nodes = try await cache.sortedNodes(auth: auth).filter {
                    let labels = $0.allLabels
                    return selector.matches(labels) && checker.canReach(labels: labels, logins: identity.logins)
                }
                let remaining = start.isEmpty ? nodes[...] : nodes.drop { Self.pageKey($0) <= start }
                let page = Array(remaining.prefix(limit))
                let next = remaining.count > limit ? page.last.map(Self.pageKey) : nil
                return WebResponse.json(try ResourceCodec.json(NodePage(items: page, nextKey: next)))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
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
        router.get("webapi/sessions/active") { _, context -> Response in
            do {
                let identity = try await user(context)
                let privileged = checker(for: identity).checkRule(kind: "session", verb: "list").allowed
                let sessions = try await auth.activeSessions().filter { privileged || $0.user == identity.username }
                return WebResponse.json(try ResourceCodec.json(sessions))
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

    static func pageKey(_ node: ServerNode) -> String { node.spec.hostname + "/" + node.name }

    func user(_ context: ProxyRequestContext) async throws -> X509Identity {
        try await Self.user(context, clusterName: clusterName)
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

/// One page of `/webapi/nodes`, encoded in one pass.
struct NodePage: Encodable {
    var items: [ServerNode]
    var nextKey: String?

    enum CodingKeys: String, CodingKey {
        case items
        case nextKey = "next_key"
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

/// A value read from the auth service and kept for a second: `tsh ls` over tens of thousands of
/// nodes pages through the node list, and each page should not fetch it (or the roles) again; a
/// change shows within a second.
final class ShortLivedCache<Value: Sendable>: Sendable {
    static var lifetime: TimeInterval { 1 }
    private let state = Mutex<(loaded: Date, value: Value)?>(nil)

    /// The kept value, or a fresh one from `load`.
    func value(_ load: () async throws -> Value) async throws -> Value {
        if let cached = state.withLock({ $0 }), Date().timeIntervalSince(cached.loaded) < Self.lifetime {
            return cached.value
        }
        let value = try await load()
        state.withLock { $0 = (Date(), value) }
        return value
    }
}

/// The node list, sorted by host name.
final class NodeListCache: Sendable {
    private let cache = ShortLivedCache<[ServerNode]>()

    func sortedNodes(auth: AuthClient) async throws -> [ServerNode] {
        try await cache.value { try await auth.nodes().sorted { ($0.spec.hostname, $0.name) < ($1.spec.hostname, $1.name) } }
    }
}
