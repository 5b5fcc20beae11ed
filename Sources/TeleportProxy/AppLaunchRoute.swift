import Foundation
import Hummingbird
import Logging
import TeleportAccess
import TeleportAPI
import TeleportAuthClient

/// The web UI's apps: `GET /web/apps` (the apps the session's roles' `app_labels` allow, each
/// with its public address and a Launch link) and `GET /web/launch/APP`, which asks the auth
/// service for a one-time launch token (60 s, bound to the user, the web session and the app)
/// and redirects the browser to `https://APP_PUBLIC_ADDR[:PORT]/x-teleport-auth?token=...`,
/// where ``AppBrowserFront`` redeems it and sets the app session cookie.
struct AppLaunchRoute {
    let auth: AuthClient
    let clusterName: String
    /// The proxy's public address (`host[:port]`).
    let publicAddr: String
    /// The roles of these names, as the proxy's certificate cache has them.
    let roles: @Sendable ([String]) -> [Role]
    let logger: Logger

    func register(on router: Router<ProxyRequestContext>) {
        let gate = WebSessionGate(auth: auth, logger: logger)
        router.get("web/apps") { request, context -> Response in
            switch await gate.session(request, context: context, stateChanging: false) {
            case .success(let found):
                do {
                    let apps = try await visibleApps(found.info)
                    let port = Self.port(of: request.head.authority ?? "") ?? Self.port(of: publicAddr)
                    return WebUIPages.response(WebUIPages.apps(found.info, clusterName: clusterName, apps: apps, port: port))
                } catch {
                    return gate.unavailable(error)
                }
            case .failure(let failure):
                guard failure.response.status == .unauthorized else { return failure.response }
                return Response(status: .seeOther, headers: [.location: "/web/login", .cacheControl: "no-store"])
            }
        }
        router.get("web/launch/:name") { request, context -> Response in
            switch await gate.session(request, context: context, stateChanging: false) {
            case .success(let found):
                let name = context.parameters.get("name") ?? ""
                do {
                    let launch = try await auth.launchApp(AuthAPI.AppLaunchRequest(webSessionID: found.id, appName: name))
                    let port = Self.port(of: request.head.authority ?? "") ?? Self.port(of: publicAddr)
                    let location = Self.origin(host: launch.publicAddr, port: port) + "/x-teleport-auth?token=" + launch.token
                    return Response(status: .found, headers: [.location: location, .cacheControl: "no-store"])
                } catch {
                    return gate.unavailable(error)
                }
            case .failure(let failure):
                guard failure.response.status == .unauthorized else { return failure.response }
                return Response(status: .seeOther, headers: [.location: "/web/login", .cacheControl: "no-store"])
            }
        }
    }

    /// The apps the session's roles (now) allow, by name (the launch is checked again by the
    /// auth service).
    func visibleApps(_ info: AuthAPI.WebSessionInfo) async throws -> [AppServer] {
        let all = try await auth.apps()
        let checker = AccessChecker(roles: roles(info.roles), traits: ["internal.logins": info.logins])
        return all.filter { (try? checker.checkAppLabels($0.allLabels).allowed) == true }.sorted { $0.name < $1.name }
    }

    /// The port of `host:port` (nil without one).
    static func port(of address: String) -> Int? {
        guard let colon = address.lastIndex(of: ":"), !address.hasSuffix("]") else { return nil }
        return Int(address[address.index(after: colon)...])
    }

    /// `https://HOST[:PORT]` (no port for 443).
    static func origin(host: String, port: Int?) -> String {
        guard let port, port != 443 else { return "https://\(host)" }
        return "https://\(host):\(port)"
    }
}
