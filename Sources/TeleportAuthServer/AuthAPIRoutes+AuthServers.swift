import Hummingbird
import TeleportAPI

/// | Route | Who | What |
/// |---|---|---|
/// | `GET /v1/authservers` | the cluster's hosts and admin | the auth servers that announced themselves (``AuthAPI/AuthServerEntry``) |
extension AuthAPIRoutes {
    func registerAuthServerRoutes(on v1: RouterGroup<AuthRequestContext>) {
        v1.get("authservers") { _, context in
            await APIResponse.handling(context) {
                try requireHost(context)
                return try APIResponse.json(try await auth.authServers())
            }
        }
    }
}
