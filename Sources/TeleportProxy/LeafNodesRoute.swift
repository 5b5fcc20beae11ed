import Foundation
import Hummingbird
import TeleportAPI
import TeleportCrypto

/// `POST /webapi/sites/LEAF/nodes`, `.../sessions` and `.../recording` for `tsh ls --cluster=LEAF` and `tsh ssh --cluster=LEAF`
/// (issue 20): the nodes of a leaf cluster the logged-in user may see there, with their host keys
/// (`{"nodes": [...], "host_keys": [...]}`); the leaf's live sessions the user may see (`tsh join
/// --cluster`); a recording of the leaf (`tsh play --cluster`, `{"certificate": ..., "sid": ...}`,
/// answered with its JSON lines). The leaf decides, after mapping the user's roles, from
/// the user's SSH certificate, which `tsh` sends as the JSON body `{"certificate": LINE}`: it must
/// be a user certificate of the same user as the TLS client certificate (the leaf checks that the
/// root's user CA signed it).
struct LeafNodesRoute {
    struct Body: Decodable {
        var certificate: String
        var sid: String?
    }

    let router: ClusterRouter

    func register(on router: Router<ProxyRequestContext>) {
        let clusters = self.router
        router.post("webapi/sites/:site/:what") { incoming, context -> Response in
            var request = incoming
            do {
                let identity = try await NodesRoute.user(context, clusterName: clusters.clusterName)
                let site = context.parameters.get("site") ?? ""
                let body: Body
                do {
                    body = try JSONDecoder().decode(Body.self, from: Data(try await request.boundedBody(limit: 64 * 1024).readableBytesView))
                } catch {
                    throw TeleportError.badParameter("send {\"certificate\": YOUR SSH CERTIFICATE} (tsh does)")
                }
                let line = body.certificate
                let certificate: SSHCertificate
                do {
                    certificate = try SSHCertificate(authorizedKeyLine: line)
                } catch {
                    throw TeleportError.badParameter("the request holds no SSH certificate")
                }
                guard certificate.type == .user, certificate.keyID == identity.username else {
                    throw TeleportError.accessDenied("the SSH certificate is not a user certificate of \(identity.username)")
                }
                guard site != clusters.clusterName else {
                    throw TeleportError.badParameter("\(site) is this proxy's own cluster: use /webapi/nodes")
                }
                switch context.parameters.get("what") ?? "" {
                case "nodes":
                    let listing = try await clusters.listing(cluster: site, certificate: line, roleNames: identity.roles)
                    return WebResponse.json(NodesRoute.htmlSafe(try ResourceCodec.json(listing)))
                case "sessions":
                    let json = try await clusters.ask(cluster: site, roleNames: identity.roles, .init(op: ClusterWire.Request.sessions, certificate: line, target: nil))
                    return WebResponse.json(NodesRoute.htmlSafe(Data(json.utf8)))
                case "recordings":
                    let json = try await clusters.ask(cluster: site, roleNames: identity.roles, .init(op: ClusterWire.Request.recordings, certificate: line, target: nil))
                    return WebResponse.json(NodesRoute.htmlSafe(Data(json.utf8)))
                case "recording":
                    guard let sid = body.sid, !sid.isEmpty else { throw TeleportError.badParameter("name the session: {\"sid\": ...}") }
                    let encoded = try await clusters.ask(cluster: site, roleNames: identity.roles, .init(op: ClusterWire.Request.recording, certificate: line, target: sid))
                    guard let data = Data(base64Encoded: encoded) else {
                        throw TeleportError.connectionProblem("leaf cluster \(site) sent a recording that cannot be read")
                    }
                    return WebResponse.json(data)
                default:
                    throw TeleportError.notFound("no such leaf cluster request; nodes, sessions, recordings and recording are served")
                }
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
    }
}
