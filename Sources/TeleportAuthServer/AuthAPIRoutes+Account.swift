import Foundation
import Hummingbird
import TeleportAPI
import TeleportCrypto

extension AuthAPIRoutes {
    /// The account page's calls: only a user acting through a web session (the proxy's
    /// `Teleport-Web-Session`), and only for themself.
    func registerAccountRoutes(on v1: RouterGroup<AuthRequestContext>) {
        v1.post("account/password") { request, context in
            await APIResponse.handling(context) {
                let user = try accountOwner(context)
                try await auth.changePassword(
                    user: user, try await body(AuthAPI.ChangePasswordRequest.self, request),
                    keepingWebSession: try caller(context).webSessionID)
                return try APIResponse.json(["status": "ok"])
            }
        }
        v1.get("account/totp") { _, context in
            await APIResponse.handling(context) {
                try APIResponse.json(try await auth.totpDevice(user: try accountOwner(context)))
            }
        }
        v1.post("account/totp/begin") { request, context in
            await APIResponse.handling(context) {
                let user = try accountOwner(context)
                return try APIResponse.json(try await auth.beginTOTPReplace(user: user, try await body(AuthAPI.BeginTOTPReplaceRequest.self, request)))
            }
        }
        v1.post("account/totp/confirm") { request, context in
            await APIResponse.handling(context) {
                let user = try accountOwner(context)
                try await auth.confirmTOTPReplace(user: user, try await body(AuthAPI.ConfirmTOTPReplaceRequest.self, request))
                return try APIResponse.json(["status": "ok"])
            }
        }
    }

    /// The signed-in user of a web session; anyone else is refused.
    func accountOwner(_ context: AuthRequestContext) throws -> String {
        let caller = try caller(context)
        guard caller.kind == .user, caller.webSessionID != nil else {
            throw TeleportError.accessDenied("account changes are made by the user themself, signed in to the web UI")
        }
        return caller.identity.username
    }
}
