import Foundation
import Hummingbird
import TeleportAPI
import TeleportCrypto

/// `POST /webapi/sites/LEAF/nodes` for `tsh ls --cluster=LEAF` and `tsh ssh --cluster=LEAF`
/// (issue 20): the nodes of a leaf cluster the logged-in user may see there, with their host keys
/// (`{"nodes": [...], "host_keys": [...]}`). The leaf decides, after mapping the user's roles, from
/// the user's SSH certificate, which `tsh` sends as the JSON body `{"certificate": LINE}`: it must
/// be a user certificate of the same user as the TLS client certificate (the leaf checks that the
/// root's user CA signed it).
struct LeafNodesRoute {
    struct Body: Decodable {
        var certificate: String
    }

    let router: ClusterRouter

    func register(on router: Router<ProxyRequestContext>) {
        let clusters = self.router
        router.post("webapi/sites/:site/nodes") { incoming, context -> Response in
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
                let listing = try await clusters.listing(cluster: site, certificate: line)
                return WebResponse.json(NodesRoute.htmlSafe(try ResourceCodec.json(listing)))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
    }
}
