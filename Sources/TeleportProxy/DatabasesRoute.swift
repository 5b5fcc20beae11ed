import Foundation
import Hummingbird
import TeleportAccess
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto

/// `GET /webapi/databases?labels=k=v,...` for `tsh db ls`: the databases the logged-in user (the
/// TLS client certificate's) may see: their roles' `db_labels` allow them (roles as the proxy's
/// certificate cache has them now), and they match the label filter.
struct DatabasesRoute {
    let auth: AuthClient
    let clusterName: String
    /// The roles of these names, as the proxy's certificate cache has them.
    let roles: @Sendable ([String]) -> [Role]

    func register(on router: Router<ProxyRequestContext>) {
        router.get("webapi/databases") { request, context -> Response in
            do {
                let identity = try await NodesRoute.user(context, clusterName: clusterName)
                let selector = try LabelSelector.parse(request.uri.queryParameters.get("labels") ?? "")
                let checker = AccessChecker(roles: roles(identity.roles), traits: ["internal.logins": identity.logins])
                let visible = try await auth.databases().filter {
                    let labels = $0.allLabels
                    return selector.matches(labels) && (try? checker.checkDatabaseLabels(labels).allowed) == true
                }
                return WebResponse.json(NodesRoute.htmlSafe(try ResourceCodec.json(visible)))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
    }
}
