import Foundation
public import TeleportAPI
import TeleportAccess
import TeleportCrypto
import TeleportServices

extension AuthServer {
    /// Certificates for the web terminal: a short-lived SSH (and X.509) user certificate for a key
    /// the proxy generated on behalf of the web session `caller` acts for, so that the proxy can
    /// SSH to a node as the user exactly like `tsh ssh` (the node checks RBAC, records and audits).
    ///
    /// Only a caller acting for a web session (``Caller/webSessionID``) is served. The request must
    /// prove possession of both keys for the session's user (``LoginProof`` with purpose
    /// `webSession`); the roles and logins are read now; the lifetime is the requested one capped
    /// by the shortest `max_session_ttl` of the roles and by the web session's hard end. Every
    /// outcome is audited as `cert.create` with `method: web_session`.
    public func webSessionCertificates(for caller: Caller, _ request: AuthAPI.SignUserRequest) async throws -> AuthAPI.LoginResponse {
        guard caller.kind == .user, let sessionID = caller.webSessionID else {
            throw TeleportError.accessDenied("web terminal certificates are issued only to a proxy acting for a signed-in web session")
        }
        let fields: [String: JSONValue] = [
            "user": .string(caller.identity.username), "identity": .string(caller.identity.username), "cert_type": "user",
            "method": "web_session",
        ]
        return try await auditingCertificate(fields) { fields in
            let session = try await authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: sessionID, renew: false))
            guard session.user == caller.identity.username, request.user == session.user else {
                throw TeleportError.accessDenied("the certificate request names \(request.user), not the web session's user \(session.user)")
            }
            let keys = try proveKeys(
                sshPublicKey: request.sshPublicKey, tlsPublicKeyPEM: request.tlsPublicKeyPEM, user: session.user, proof: request.keyProof,
                purpose: .webSession)
            let user = try await stores.users.get(session.user)
            let ttl = Self.webTerminalTTL(
                requested: request.ttlSeconds,
                roleCap: AccessChecker(roles: await existingRoles(user.spec.roles), traits: [:]).maxSessionTTL(fallback: settings.maxSessionTTL),
                sessionEnd: session.expires, now: clock.now())
            guard ttl > 0 else { throw TeleportError.accessDenied("the web session has expired or was ended; log in again") }
            fields["ttl_seconds"] = .int(Int(ttl))
            return try await issueUserCertificates(user: user, keys: keys, ttl: ttl)
        }
    }

    /// The web terminal certificate's lifetime (seconds): the requested one (the role cap when
    /// none is asked for), never past the roles' cap nor the web session's hard end.
    static func webTerminalTTL(requested: TimeInterval, roleCap: TimeInterval, sessionEnd: Date, now: Date) -> TimeInterval {
        let asked = requested > 0 ? requested : roleCap
        return max(0, min(asked, roleCap, sessionEnd.timeIntervalSince(now)))
    }
}
