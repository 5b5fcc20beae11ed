import Foundation
import Hummingbird
import TeleportAPI

extension AuthAPIRoutes {
    /// `POST /v1/websessions/certs`: the web terminal's certificate, for a proxy acting for a web
    /// session (`Teleport-Web-Session`); anyone else gets 403 (see
    /// ``AuthServer/webSessionCertificates(for:_:)``).
    func registerWebTerminalRoutes(on v1: RouterGroup<AuthRequestContext>) {
        v1.post("websessions/certs") { request, context in
            await APIResponse.handling(context) {
                let caller = try caller(context)
                guard caller.kind == .user, caller.webSessionID != nil else {
                    throw TeleportError.accessDenied("web terminal certificates are issued only to a proxy acting for a signed-in web session")
                }
                let sign = try await body(AuthAPI.SignUserRequest.self, request)
                return try APIResponse.json(try await auth.webSessionCertificates(for: caller, sign))
            }
        }
    }
}
