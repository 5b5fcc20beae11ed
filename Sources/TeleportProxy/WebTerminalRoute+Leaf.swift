import Foundation
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import TeleportSSHClient

/// The web terminal on a leaf cluster's node (trusted clusters, issue 20):
/// `GET /webapi/terminal?cluster=LEAF&node=NODE&login=LOGIN`. The same checks as for this
/// cluster's nodes run first (Origin, session cookie, parameters); then the leaf must be one the
/// user may reach and online (4404 with the clusters the user sees, 4502 when offline). The proxy
/// certifies a fresh key for the web session's user, asks the leaf through its tunnel which of its
/// nodes the user's mapped roles reach, with their host keys (a user whose roles map to nothing is
/// refused there, audited as `trusted_cluster.user.denied`: 4403), and SSHes through its own SSH
/// port and the `proxy:NODE:0@LEAF` subsystem, exactly as `tsh ssh --cluster=LEAF` does: the
/// leaf admits the user with the mapped roles and its node checks them, records the session and
/// audits it with the root user's name and cluster.
extension WebTerminalRoute {
    func openOnLeaf(_ what: WebTerminalRequest, cluster: String, session: (id: String, info: AuthAPI.WebSessionInfo)) async throws -> Connection {
        guard let router = clusterRouter else {
            throw WebTerminalClose(code: WebTerminalClose.notFound, reason: "this proxy reaches no other cluster than \(clusterName)")
        }
        guard case .connect(let nodeName, let login, let columns, let rows) = what else {
            throw WebTerminalClose(
                code: WebTerminalClose.badRequest,
                reason: "joining a leaf cluster's session is not served in the browser yet: tsh join --cluster=\(cluster) SID")
        }
        do {
            try await router.checkReachable(cluster, roleNames: session.info.roles)
            let credentials = try await certify(
                acting: auth.actingFor(webSession: session.id), user: session.info.user, login: login, target: "node \(nodeName) of \(cluster)")
            guard let certificate = credentials.certificate else {
                throw TeleportError.internalError("the web session's key was not certified")
            }
            let listing = try await router.listing(
                cluster: cluster, certificate: certificate.authorizedKeyLine(comment: certificate.keyID), roleNames: session.info.roles)
            guard let node = Self.leafNode(nodeName, in: listing) else {
                throw WebTerminalClose(
                    code: WebTerminalClose.notFound, reason: "no node \(nodeName) in cluster \(cluster) that you may reach (see its Servers list)")
            }
            let nodeCheck = HostKeyCheck(
                accepted: listing.hostKeys.filter { $0.hostID == node.name || $0.nodeName.lowercased() == node.spec.hostname.lowercased() }
                    .compactMap { try? SSHPublicKey(authorizedKeyLine: $0.publicKey) },
                what: "node \(node.spec.hostname) of \(cluster)")
            return try await start(
                credentials: credentials, proxyKeys: try await auth.hostKeys(), target: "\(node.name):0@\(cluster)", nodeCheck: nodeCheck,
                hostname: node.spec.hostname, size: (columns, rows), environment: ["LANG": "C.UTF-8"])
        } catch let error as TeleportError {
            throw WebTerminalClose(error)
        }
    }

    /// The node of `listing` that `name` names: its ID, or its host name (any case) (pure).
    static func leafNode(_ name: String, in listing: ClusterWire.Listing) -> ServerNode? {
        listing.nodes.first { $0.name == name } ?? listing.nodes.first { $0.spec.hostname.lowercased() == name.lowercased() }
    }
}
