import Foundation
import Hummingbird
import Logging
import NIOSSL
import TeleportAccess
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import X509

/// `GET /webapi/apps` for `tsh apps ls`: the apps the logged-in user (the TLS client
/// certificate's) may use: their roles' `app_labels` allow them (roles as the proxy's
/// certificate cache has them now). `POST /webapi/apps/login` for `tsh apps login`: a copy of
/// the caller's certificate that carries the app route, from the auth service.
/// `GET /.well-known/jwks.json`: the `jwt` CA's public keys, which apps use to verify the
/// `teleport-jwt-assertion` header.
struct AppsRoute {
    let auth: AuthClient
    let clusterName: String
    /// The roles of these names, as the proxy's certificate cache has them.
    let roles: @Sendable ([String]) -> [Role]
    let logger: Logger

    /// The body of `POST /webapi/apps/login`.
    struct LoginBody: Decodable {
        var name: String
    }

    func register(on router: Router<ProxyRequestContext>) {
        router.get(".well-known/jwks.json") { _, _ -> Response in
            do {
                guard case .certAuthority(let ca) = try await auth.resource(kind: CertAuthority.kind, name: CertAuthority.CAType.jwt.rawValue)
                else { throw TeleportError.internalError("the auth service sent another kind for cert_authority/jwt") }
                let jwks = JWTSigner.jwks(publicKeyPEMs: (ca.trustedKeys.jwt ?? []).map(\.publicKey))
                return WebResponse.json(try ResourceCodec.json(jwks))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
        router.get("webapi/apps") { request, context -> Response in
            do {
                let identity = try await NodesRoute.user(context, clusterName: clusterName)
                let selector = try LabelSelector.parse(request.uri.queryParameters.get("labels") ?? "")
                let visible = try await visibleApps(identity).filter { selector.matches($0.allLabels) }
                return WebResponse.json(NodesRoute.htmlSafe(try ResourceCodec.json(visible)))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
        router.post("webapi/apps/login") { request, context -> Response in
            do {
                let identity = try await NodesRoute.user(context, clusterName: clusterName)
                guard identity.systemRole == nil else { throw TeleportError.accessDenied("log in as a user first: tsh login") }
                var request = request
                let data = Data(try await request.boundedBody(limit: 16 * 1024).readableBytesView)
                let body: LoginBody
                do {
                    body = try JSONDecoder().decode(LoginBody.self, from: data)
                } catch {
                    throw TeleportError.badParameter("the body must be JSON with the app's name")
                }
                guard try await visibleApps(identity).contains(where: { $0.name == body.name }) else {
                    throw TeleportError.notFound("app \"\(body.name.prefix(64))\" is not registered or your roles do not allow it (tsh apps ls)")
                }
                guard let peer = try await context.channel.nioSSL_peerCertificate().get() else {
                    throw TeleportError.accessDenied("log in first: tsh login --proxy=<this proxy>")
                }
                let pem = try Certificate.fromDER(try peer.toDERBytes()).pemText()
                let issued = try await auth.appRouteCertificate(AuthAPI.AppRouteCertRequest(userCertificatePEM: pem, appName: body.name))
                return WebResponse.json(try ResourceCodec.json(issued))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
    }

    /// The apps whose labels the user's roles allow.
    func visibleApps(_ identity: X509Identity) async throws -> [AppServer] {
        let checker = AccessChecker(roles: roles(identity.roles), traits: ["internal.logins": identity.logins])
        return try await auth.apps().filter { (try? checker.checkAppLabels($0.allLabels).allowed) == true }
    }
}
