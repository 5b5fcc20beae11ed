import Foundation
import Hummingbird
import TeleportAPI
import TeleportCrypto

/// CA rotation and agents' identity renewal.
///
/// | route | who | what |
/// | --- | --- | --- |
/// | `POST /v1/certauthorities/rotate` | Admin; users whose roles allow `update` on `cert_authority` | `tctl auth rotate`: starts an automatic rotation or moves a manual one; audited as `cert.rotation` (refusals too) |
/// | `POST /v1/certs/renew` | Node, Proxy, Db, App (its own identity) | a new certificate for the caller's role, host and names from the host CA's signing keys |
extension AuthAPIRoutes {
    func registerRotationRoutes(on v1: RouterGroup<AuthRequestContext>) {
        v1.post("certauthorities/rotate") { request, context in
            await APIResponse.handling(context) {
                let rotate = try await body(AuthAPI.RotateRequest.self, request)
                let who = (try? caller(context).identity.username) ?? ""
                do {
                    try await authorize(context, kind: CertAuthority.kind, verb: "update")
                    return try APIResponse.json(try await auth.rotate(rotate, by: who))
                } catch let error as TeleportError {
                    var fields: [String: JSONValue] = [
                        "cert_type": .string(rotate.type), "user": .string(who), "mode": .string(rotate.mode), "error": .string(error.message),
                    ]
                    if let phase = rotate.phase { fields["phase"] = .string(phase) }
                    try? await auth.emit(AuditEventType.certRotationFailure, fields: fields)
                    throw error
                }
            }
        }
        v1.post("certs/renew") { request, context in
            await APIResponse.handling(context) {
                let caller = try caller(context)
                guard case .system(let role) = caller.kind, let leaf = try await peerCertificates.read(context.channel) else {
                    throw TeleportError.accessDenied("only an agent renews its own identity")
                }
                let renew = try await body(AuthAPI.RenewIdentityRequest.self, request)
                return try APIResponse.json(try await auth.renewHostIdentity(presented: leaf, role: role, publicKeyPEM: renew.publicKeyPEM))
            }
        }
    }
}
