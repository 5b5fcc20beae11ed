import Foundation
import Hummingbird
import TeleportAPI
import TeleportAuthClient

/// `GET /webapi/sites` for `tsh clusters` (issue 20): this proxy's cluster and the leaf clusters
/// that trust it, with each leaf's tunnel status. Only a logged-in user of this cluster (a TLS
/// client certificate of its user CA) may ask.
struct ClustersRoute {
    let auth: AuthClient
    let clusterName: String

    func register(on router: Router<ProxyRequestContext>) {
        router.get("webapi/sites") { _, context -> Response in
            do {
                _ = try await NodesRoute.user(context, clusterName: clusterName)
                let leaves = try await auth.remoteClusterList()
                return WebResponse.json(try ResourceCodec.json(Self.entries(root: clusterName, leaves: leaves)))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
    }

    /// The listing (pure): the root first, online; then the leaves by name with their status.
    static func entries(root: String, leaves: [RemoteCluster]) -> [WebAPI.ClusterEntry] {
        [WebAPI.ClusterEntry(name: root, status: "online", type: "root")]
            + leaves.sorted { $0.name < $1.name }.map {
                WebAPI.ClusterEntry(name: $0.name, status: $0.status.connection, type: "leaf", lastConnected: $0.status.lastHeartbeat)
            }
    }
}
