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
/// audits it with the root user's name and cluster. `cluster=LEAF&session=SID&mode=` joins a live
/// session of the leaf the user may see there (as `tsh join --cluster`), as a login the mapped
/// roles allow on its node.
extension WebTerminalRoute {
    func openOnLeaf(_ what: WebTerminalRequest, cluster: String, session: (id: String, info: AuthAPI.WebSessionInfo)) async throws -> Connection {
        guard let router = clusterRouter else {
            throw WebTerminalClose(code: WebTerminalClose.notFound, reason: "this proxy reaches no other cluster than \(clusterName)")
        }
        do {
            try await router.checkReachable(cluster, roleNames: session.info.roles)
            var credentials = try await certify(
                acting: auth.actingFor(webSession: session.id), user: session.info.user, login: "", target: "cluster \(cluster)")
            guard let certificate = credentials.certificate else {
                throw TeleportError.internalError("the web session's key was not certified")
            }
            let line = certificate.authorizedKeyLine(comment: certificate.keyID)
            let listing = try await router.listing(cluster: cluster, certificate: line, roleNames: session.info.roles)
            let node: ServerNode
            var environment = ["LANG": "C.UTF-8"]
            let size: (columns: Int, rows: Int)
            switch what {
            case .connect(let nodeName, let login, let columns, let rows):
                guard let found = Self.leafNode(nodeName, in: listing) else {
                    throw WebTerminalClose(
                        code: WebTerminalClose.notFound, reason: "no node \(nodeName) in cluster \(cluster) that you may reach (see its Servers list)")
                }
                node = found
                credentials.login = login
                size = (columns, rows)
            case .join(let sessionID, let mode, let columns, let rows):
                // As `tsh join --cluster`: a live session the leaf lets the user see, joined as a
                // login the mapped roles allow on its node; the node decides whether the mode is allowed.
                let json = try await router.ask(
                    cluster: cluster, roleNames: session.info.roles, .init(op: ClusterWire.Request.sessions, certificate: line, target: nil))
                let sessions = (try? ResourceCodec.jsonDecoder().decode([AuthAPI.ActiveSession].self, from: Data(json.utf8))) ?? []
                guard let live = sessions.first(where: { $0.sid == sessionID }), !live.isKube else {
                    throw WebTerminalClose(code: WebTerminalClose.notFound, reason: "no live session \(sessionID) in cluster \(cluster) that you may join")
                }
                guard let found = Self.leafNode(live.serverID, in: listing), let login = listing.logins?[found.name]?.first else {
                    throw WebTerminalClose(
                        code: WebTerminalClose.forbidden, reason: "your roles in cluster \(cluster) allow no login on the node of session \(sessionID)")
                }
                node = found
                credentials.login = login
                environment["TELEPORT_SESSION"] = sessionID
                environment["TELEPORT_JOIN_MODE"] = mode
                size = (columns, rows)
            }
            credentials.target = "node \(node.spec.hostname) of \(cluster)"
            let nodeCheck = HostKeyCheck(
                accepted: listing.hostKeys.filter { $0.hostID == node.name || $0.nodeName.lowercased() == node.spec.hostname.lowercased() }
                    .compactMap { try? SSHPublicKey(authorizedKeyLine: $0.publicKey) },
                what: "node \(node.spec.hostname) of \(cluster)")
            return try await start(
                credentials: credentials, proxyKeys: try await auth.hostKeys(), target: "\(node.name):0@\(cluster)", nodeCheck: nodeCheck,
                hostname: node.spec.hostname, size: size, environment: environment)
        } catch let error as TeleportError {
            throw WebTerminalClose(error)
        }
    }

    /// The node of `listing` that `name` names: its ID, or its host name (any case) (pure).
    static func leafNode(_ name: String, in listing: ClusterWire.Listing) -> ServerNode? {
        listing.nodes.first { $0.name == name } ?? listing.nodes.first { $0.spec.hostname.lowercased() == name.lowercased() }
    }
}
