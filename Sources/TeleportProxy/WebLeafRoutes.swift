import Crypto
import Foundation
import Hummingbird
import Synchronization
import TeleportAccess
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto

/// The web UI's view of a leaf cluster (trusted clusters, issue 20): `GET
/// /webapi/sites/LEAF/nodes?search=&labels=&sort=&limit=&page_token=` with the session cookie
/// answers the page the Servers table shows for the cluster selector's leaf, in the shape of
/// `/webapi/nodes` (`{"items": [...], "next_page_token": ...}`, each node with the logins the leaf
/// lets the user use on it). The leaf decides, as for `tsh ls --cluster=LEAF`: the proxy sends an
/// SSH certificate of the web session's user (issued for the session and kept until shortly before
/// it expires, ``WebLeafCertificates``) through the leaf's tunnel, and the leaf maps the user's
/// roles and lists what the mapped roles reach (a user whose roles map to nothing is refused there
/// and audited as `trusted_cluster.user.denied`). An unknown or hidden leaf is a 404 naming the
/// clusters the user may reach, an offline one a 502; no session cookie is a 401.
///
/// `tsh` posts to the same path (``LeafNodesRoute``); the GET answers only a session cookie.
struct WebLeafRoutes: Sendable {
    let auth: AuthClient
    let clusterName: String
    let router: ClusterRouter
    let certificates: WebLeafCertificates

    func register(on router: Router<ProxyRequestContext>) {
        let routes = self
        // The same path pattern as tsh's POST (one trie node: a GET-only constant segment beside
        // it could hide the POST).
        router.get("webapi/sites/:site/:what") { request, context -> Response in
            do {
                let info: AuthAPI.WebSessionInfo
                let sessionID: String
                switch try await WebSessionCookie.session(of: request, auth: routes.auth) {
                case .failure(let failure): return failure.response
                case .success(let found): (sessionID, info) = found
                }
                let site = context.parameters.get("site") ?? ""
                guard context.parameters.get("what") == "nodes" else {
                    throw TeleportError.notFound("no such web request for a cluster; GET /webapi/sites/CLUSTER/nodes is served")
                }
                let query = request.uri.queryParameters
                let sortText = query.get("sort") ?? "name"
                guard let sort = NodeListQuery.Sort(rawValue: sortText) else {
                    throw TeleportError.badParameter("sort must be name or addr, not \"\(sortText.prefix(32))\"")
                }
                let list = NodeListQuery(
                    search: query.get("search") ?? "", labels: try LabelSelector.parse(query.get("labels") ?? ""), sort: sort,
                    pageToken: query.get("page_token") ?? "", limit: min(max(Int(query.get("limit") ?? "") ?? 1000, 1), NodesRoute.maxPage))
                let page = try await routes.nodes(site: site, list: list, sessionID: sessionID, info: info)
                return WebResponse.json(NodesRoute.htmlSafe(try ResourceCodec.json(page)))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
    }

    /// One page of the leaf's nodes the web session's user may reach there.
    func nodes(site: String, list: NodeListQuery, sessionID: String, info: AuthAPI.WebSessionInfo) async throws -> WebNodePage {
        guard site.lowercased() != clusterName.lowercased() else {
            throw TeleportError.badParameter("\(site) is this proxy's own cluster: its servers are at /webapi/nodes")
        }
        // Unknown, hidden or offline first: no certificate is issued for those.
        try await router.checkReachable(site, roleNames: info.roles)
        let certificate = try await certificates.line(sessionID: sessionID, user: info.user, auth: auth)
        let listing = try await router.listing(cluster: site, certificate: certificate, roleNames: info.roles)
        return Self.page(listing, list: list)
    }

    /// The page of `listing` that `list` asks for, in the web UI's shape (pure).
    static func page(_ listing: ClusterWire.Listing, list: NodeListQuery) -> WebNodePage {
        let sorted = NodeListCache.sortedOrders(listing.nodes)[list.sort] ?? []
        let page = list.page(of: sorted) { _ in true }
        let items = page.items.map { node in
            WebNode(
                name: node.spec.hostname, id: node.name, address: node.isTunnelled ? nil : node.spec.addr, tunnel: node.isTunnelled,
                labels: node.allLabels, logins: listing.logins?[node.name] ?? [])
        }
        return WebNodePage(items: items, nextPageToken: page.nextToken)
    }
}

/// SSH certificates of web sessions' users for asking a leaf cluster what they may see (the leaf
/// checks the certificate against the root's user CA and maps its roles; a listing needs no key).
/// One per web session (by a hash of its ID), issued on the session's behalf (`POST
/// /v1/websessions/certs`, audited as `cert.create`) and used until a minute before it expires;
/// at most ``capacity`` are kept (expired ones, then the oldest, go first).
final class WebLeafCertificates: Sendable {
    static let capacity = 1024

    struct Entry: Sendable {
        var line: String
        var validBefore: Date
        var added: Date
    }

    private let entries = Mutex<[String: Entry]>([:])

    init() {}

    /// The certificate line for the session, issued when none is kept or it expires within a minute.
    func line(sessionID: String, user: String, auth: AuthClient, now: @Sendable () -> Date = { Date() }) async throws -> String {
        let key = SHA256.hash(data: Data(sessionID.utf8)).map { String(format: "%02x", $0) }.joined()
        if let kept = entries.withLock({ $0[key] }), kept.validBefore.timeIntervalSince(now()) > 60 { return kept.line }
        let sshKey = Curve25519.Signing.PrivateKey()
        let tlsKey = P256.Signing.PrivateKey()
        let issued = try await auth.actingFor(webSession: sessionID).webSessionCertificates(
            AuthAPI.SignUserRequest(
                user: user, sshPublicKey: SSHPublicKey.ed25519(sshKey.publicKey).authorizedKeyLine(), tlsPublicKeyPEM: tlsKey.publicKey.pemRepresentation,
                ttlSeconds: 0, keyProof: try LoginProof.sign(purpose: .webSession, user: user, sshKey: sshKey, tlsKey: tlsKey, now: now())))
        let certificate = try SSHCertificate(authorizedKeyLine: issued.sshCertificate)
        let line = certificate.authorizedKeyLine(comment: certificate.keyID)
        let entry = Entry(line: line, validBefore: certificate.validBefore, added: now())
        entries.withLock { entries in
            Self.insert(&entries, key: key, entry: entry, now: entry.added)
        }
        return line
    }

    /// Adds `entry`, first dropping expired entries and then the oldest while full (pure).
    static func insert(_ entries: inout [String: Entry], key: String, entry: Entry, now: Date, capacity: Int = capacity) {
        if entries[key] == nil, entries.count >= capacity {
            entries = entries.filter { $0.value.validBefore > now }
            while entries.count >= capacity, let oldest = entries.min(by: { $0.value.added < $1.value.added }) {
                entries[oldest.key] = nil
            }
        }
        entries[key] = entry
    }

    /// How many are kept (for tests).
    var count: Int { entries.withLock { $0.count } }
}
