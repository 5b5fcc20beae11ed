import Foundation
import Hummingbird
import NIOSSL
import TeleportAccess
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import X509

/// `GET /webapi/kube` for `tsh kube ls`: the Kubernetes clusters the logged-in user (the TLS
/// client certificate's) may use (their roles' `kubernetes_labels` allow them, roles as the
/// proxy's certificate cache has them now). `POST /webapi/kube/login` for `tsh kube login` and
/// tsh's credential plugin: a copy of the caller's certificate that carries the cluster route,
/// from the auth service.
struct KubeRoute {
    let auth: AuthClient
    let clusterName: String
    /// The roles of these names, as the proxy's certificate cache has them.
    let roles: @Sendable ([String]) -> [Role]

    /// The body of `POST /webapi/kube/login`.
    struct LoginBody: Decodable {
        var name: String
    }

    func register(on router: Router<ProxyRequestContext>) {
        router.get("webapi/kube") { request, context -> Response in
            do {
                let identity = try await NodesRoute.user(context, clusterName: clusterName)
                let selector = try LabelSelector.parse(request.uri.queryParameters.get("labels") ?? "")
                let visible = try await visibleClusters(identity).filter { selector.matches($0.allLabels) }
                return WebResponse.json(NodesRoute.htmlSafe(try ResourceCodec.json(visible)))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
        router.post("webapi/kube/login") { request, context -> Response in
            do {
                let identity = try await NodesRoute.user(context, clusterName: clusterName)
                guard identity.systemRole == nil else { throw TeleportError.accessDenied("log in as a user first: tsh login") }
                var request = request
                let data = Data(try await request.boundedBody(limit: 16 * 1024).readableBytesView)
                let body: LoginBody
                do {
                    body = try JSONDecoder().decode(LoginBody.self, from: data)
                } catch {
                    throw TeleportError.badParameter("the body must be JSON with the Kubernetes cluster's name")
                }
                guard try await visibleClusters(identity).contains(where: { $0.name == body.name }) else {
                    throw TeleportError.notFound(
                        "Kubernetes cluster \"\(body.name.prefix(64))\" is not registered or your roles do not allow it (tsh kube ls)")
                }
                guard let peer = try await context.channel.nioSSL_peerCertificate().get() else {
                    throw TeleportError.accessDenied("log in first: tsh login --proxy=<this proxy>")
                }
                let certificate = try Certificate.fromDER(try peer.toDERBytes())
                let issued = try await auth.kubeRouteCertificate(
                    AuthAPI.KubeRouteCertRequest(userCertificatePEM: try certificate.pemText(), kubeCluster: body.name))
                return WebResponse.json(try ResourceCodec.json(issued))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
    }

    /// The clusters whose labels the user's roles allow.
    func visibleClusters(_ identity: X509Identity) async throws -> [KubeServer] {
        let checker = AccessChecker(roles: roles(identity.roles), traits: ["internal.logins": identity.logins])
        return try await auth.kubeServers().filter { (try? checker.checkKubeLabels($0.allLabels).allowed) == true }
    }
}
