import Foundation
import Hummingbird
import NIOSSL
import TeleportAccess
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto

/// `GET /webapi/sites` for `tsh clusters` (issue 20): this proxy's cluster and the leaf clusters
/// that trust it, with each leaf's tunnel status. Only a logged-in user of this cluster (a TLS
/// client certificate of its user CA, or the web UI's session cookie: its cluster selector) may ask, and sees only the leaves their roles reach (a
/// labelled `remote_cluster` needs a role's `cluster_labels`; see ``AccessChecker/checkClusterLabels(_:)``).
struct ClustersRoute {
    let auth: AuthClient
    let clusterName: String
    /// The roles of these names, as the proxy's certificate cache has them.
    var roles: @Sendable ([String]) -> [Role] = { _ in [] }

    func register(on router: Router<ProxyRequestContext>) {
        router.get("webapi/sites") { request, context -> Response in
            do {
                let checker: AccessChecker
                if try await context.channel.nioSSL_peerCertificate().get() != nil {
                    let identity = try await NodesRoute.user(context, clusterName: clusterName)
                    checker = AccessChecker(roles: roles(identity.roles), traits: ["internal.logins": identity.logins])
                } else {
                    // The web UI's cluster selector: the session cookie's user (401 without one).
                    switch try await WebSessionCookie.session(of: request, auth: auth) {
                    case .failure(let failure): return failure.response
                    case .success(let found):
                        checker = AccessChecker(roles: roles(found.info.roles), traits: ["internal.logins": found.info.logins])
                    }
                }
                let leaves = try await auth.remoteClusterList().filter { Self.visible($0, to: checker) }
                return WebResponse.json(NodesRoute.htmlSafe(try ResourceCodec.json(Self.entries(root: clusterName, leaves: leaves))))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
    }

    /// Whether the user of `checker` may see and reach `leaf` (pure).
    static func visible(_ leaf: RemoteCluster, to checker: AccessChecker) -> Bool {
        (try? checker.checkClusterLabels(leaf.metadata.labels ?? [:]).allowed) ?? false
    }

    /// The listing (pure): the root first, online; then the leaves by name with their status.
    static func entries(root: String, leaves: [RemoteCluster]) -> [WebAPI.ClusterEntry] {
        [WebAPI.ClusterEntry(name: root, status: "online", type: "root")]
            + leaves.sorted { $0.name < $1.name }.map {
                WebAPI.ClusterEntry(name: $0.name, status: $0.status.connection, type: "leaf", lastConnected: $0.status.lastHeartbeat)
            }
    }
}
