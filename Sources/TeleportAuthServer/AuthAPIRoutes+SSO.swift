import Foundation
import Hummingbird
import TeleportAPI

extension AuthAPIRoutes {
    /// Single sign-on, for the proxy only: the login settings and connectors (`GET /v1/sso/settings`),
    /// starting a login (`POST /v1/sso/requests`) and completing one from the provider's callback
    /// (`POST /v1/sso/callback`). The auth service makes every call to the provider.
    func registerSSORoutes(on v1: RouterGroup<AuthRequestContext>) {
        v1.get("sso/settings") { _, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                return try APIResponse.json(try await auth.authPreference())
            }
        }
        v1.post("sso/requests") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                return try APIResponse.json(try await auth.createSSORequest(try await body(AuthAPI.CreateSSORequest.self, request)))
            }
        }
        v1.post("sso/callback") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                return try APIResponse.json(try await auth.completeSSOCallback(try await body(AuthAPI.SSOCallbackRequest.self, request)))
            }
        }
    }
}
