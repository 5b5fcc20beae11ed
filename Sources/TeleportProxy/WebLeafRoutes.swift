import Foundation
import Hummingbird
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
/// `GET /webapi/sites/LEAF/sessions` answers the leaf's live sessions the user may see there (the
/// Active sessions page with the leaf chosen), decided by the leaf as for `tsh sessions ls --cluster`.
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
                switch context.parameters.get("what") ?? "" {
                case "nodes": break
                case "sessions":
                    let json = try await routes.sessions(site: site, sessionID: sessionID, info: info)
                    return WebResponse.json(NodesRoute.htmlSafe(Data(json.utf8)))
                default:
                    throw TeleportError.notFound("no such web request for a cluster; GET /webapi/sites/CLUSTER/nodes and .../sessions are served")
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

    /// The leaf's live sessions the web session's user may see there (the mapped roles' `session`
    /// `list` rule, or the user's own), as the leaf sends them (the JSON of `/webapi/sessions/active`).
    func sessions(site: String, sessionID: String, info: AuthAPI.WebSessionInfo) async throws -> String {
        guard site.lowercased() != clusterName.lowercased() else {
            throw TeleportError.badParameter("\(site) is this proxy's own cluster: its sessions are at /webapi/sessions/active")
        }
        try await router.checkReachable(site, roleNames: info.roles)
        let certificate = try await certificates.line(sessionID: sessionID, user: info.user, auth: auth)
        return try await router.ask(
            cluster: site, roleNames: info.roles, .init(op: ClusterWire.Request.sessions, certificate: certificate, target: nil))
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
