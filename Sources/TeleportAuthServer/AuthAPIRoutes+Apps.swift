import Foundation
import Hummingbird
import TeleportAPI
import TeleportBackend
import TeleportCrypto
import TeleportServices

extension AuthAPIRoutes {
    /// `POST /v1/presence/apps` (an application service: records naming its own host only),
    /// `GET /v1/apps` (the administrator and proxies: every app; users: those their roles'
    /// `app_labels` allow), `POST /v1/certs/approute` (the proxy, for `tsh apps login`) and
    /// `POST /v1/jwt/app` (an application service, for its own apps only); the browser's app
    /// sessions (the proxy only): `POST /v1/appsessions/launch`, `/redeem`, `/authenticate`.
    func registerAppRoutes(on v1: RouterGroup<AuthRequestContext>) {
        v1.post("presence/apps") { request, context in
            await APIResponse.handling(context) {
                let caller = try caller(context)
                guard caller.kind == .system(.app) || caller.isAdmin else {
                    throw TeleportError.accessDenied("only application services send app heartbeats")
                }
                let body = Data(try await request.body.collect(upTo: ResourceCodec.maxDocumentBytes).readableBytesView)
                var app = try ownHeartbeat(AppServer.self, body: body, caller: caller, name: \.spec.hostID, what: "application service")
                try app.validate()
                app.metadata.expires = nil
                app.metadata.revision = nil
                let expires = auth.clock.now().addingTimeInterval(Presence.nodeTTL)
                try await auth.presence.record(Item(key: AppServer.storagePrefix + app.name, value: try ResourceCodec.json(app), expires: expires))
                return try APIResponse.json(["status": "ok"])
            }
        }
        v1.get("apps") { _, context in
            await APIResponse.handling(context) {
                let caller = try caller(context)
                let all = try await auth.apps()
                switch caller.kind {
                case .system(.admin), .system(.proxy):
                    return try APIResponse.json(all)
                case .user:
                    return try APIResponse.json(try await auth.apps(all, visibleTo: caller.identity.roles))
                default:
                    throw TeleportError.accessDenied("only users, proxies and the administrator list apps")
                }
            }
        }
        v1.post("certs/approute") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                let sign = try await body(AuthAPI.AppRouteCertRequest.self, request)
                var fields: [String: JSONValue] = ["cert_type": "app_route", "app_name": .string(String(sign.appName.prefix(256)))]
                do {
                    let (issued, user) = try await auth.issueAppRouteCertificate(sign)
                    fields["user"] = .string(user)
                    fields["success"] = true
                    try await auth.emit(AuditEventType.certCreate, fields: fields)
                    return try APIResponse.json(issued)
                } catch let error as TeleportError {
                    fields["success"] = false
                    fields["error"] = .string(error.message)
                    try await auth.emit(AuditEventType.certCreateFailure, fields: fields)
                    throw error
                }
            }
        }
        v1.post("appsessions/launch") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                return try APIResponse.json(try await auth.launchApp(try await body(AuthAPI.AppLaunchRequest.self, request)))
            }
        }
        v1.post("appsessions/redeem") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                return try APIResponse.json(try await auth.redeemAppLaunch(try await body(AuthAPI.AppSessionRequest.self, request)))
            }
        }
        v1.post("appsessions/authenticate") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                return try APIResponse.json(try await auth.authenticateAppSession(try await body(AuthAPI.AppSessionRequest.self, request)))
            }
        }
        v1.post("jwt/app") { request, context in
            await APIResponse.handling(context) {
                let caller = try caller(context)
                let hostID: String?
                switch caller.kind {
                case .system(.app): hostID = String(caller.identity.username.split(separator: ".").first ?? "")
                case .system(.admin): hostID = nil
                default: throw TeleportError.accessDenied("only application services ask for app tokens")
                }
                let sign = try await body(AuthAPI.AppJWTRequest.self, request)
                return try APIResponse.json(try await auth.signAppJWT(sign, callerHostID: hostID))
            }
        }
    }
}
