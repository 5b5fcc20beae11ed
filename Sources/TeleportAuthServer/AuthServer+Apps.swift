import Crypto
import Foundation
import TeleportAccess
public import TeleportAPI
import TeleportCrypto
import TeleportEvents
import TeleportServices
import X509

extension AuthServer {
    /// Every registered app (expired records left out), sorted by name.
    public func apps() async throws -> [AppServer] {
        let now = clock.now()
        return try await stores.list(kind: AppServer.kind).compactMap { $0 as? AppServer }
            .filter { $0.metadata.expires.map { $0 > now } ?? true }
            .sorted { $0.name < $1.name }
    }

    /// The apps whose labels the roles named `roleNames` (as they are now) allow.
    public func apps(_ all: [AppServer], visibleTo roleNames: [String]) async throws -> [AppServer] {
        let checker = AccessChecker(roles: await existingRoles(roleNames), traits: [:])
        return all.filter { (try? checker.checkAppLabels($0.allLabels).allowed) == true }
    }

    /// A presented user certificate, checked: signed by this cluster's user CA, current, a
    /// user's (not a host's) of this cluster.
    func verifiedUserCertificate(_ pem: String, purpose: String) async throws -> (Certificate, X509Identity) {
        let presented: Certificate
        do {
            presented = try Certificate.fromPEM(pem)
        } catch {
            throw TeleportError.badParameter("user_certificate is not a PEM certificate")
        }
        guard try await signedByTrusted(.user, presented) else {
            throw TeleportError.accessDenied("the certificate is not signed by this cluster's user CA")
        }
        let now = clock.now()
        guard presented.notValidBefore <= now, now < presented.notValidAfter else {
            throw TeleportError.accessDenied("the certificate has expired: log in again (tsh login)")
        }
        let identity = try X509Identity(certificate: presented)
        guard identity.clusterName == clusterName, identity.systemRole == nil else {
            throw TeleportError.accessDenied("only a user certificate of this cluster can \(purpose)")
        }
        return (presented, identity)
    }

    /// `tsh apps login`: a copy of the user's current X.509 certificate (same key, identity and
    /// expiry) that also carries the app route. The app must be registered and the user's roles
    /// (as they are now) must allow its labels.
    ///
    /// - Returns: the certificate and the user's name.
    public func issueAppRouteCertificate(_ request: AuthAPI.AppRouteCertRequest) async throws -> (AuthAPI.DatabaseRouteCertResponse, String) {
        let (presented, found) = try await verifiedUserCertificate(request.userCertificatePEM, purpose: "carry an app route")
        var identity = found
        let user = try await stores.users.get(identity.username)
        identity.traits = user.spec.traits
        identity.routeToDatabase = nil
        try ResourceName.validate(request.appName, kind: "app name")
        guard let app = try await apps().first(where: { $0.name == request.appName }) else {
            throw TeleportError.notFound("app \"\(request.appName)\" is not registered (tsh apps ls lists them)")
        }
        let checker = AccessChecker(roles: await existingRoles(user.spec.roles), traits: user.spec.traits)
        let decision = try checker.checkAppLabels(app.allLabels)
        guard decision.allowed else {
            throw TeleportError.accessDenied("access to app \(app.name) denied: \(decision.reasons.joined(separator: "; "))")
        }
        identity.routeToApp = X509Identity.AppRoute(name: app.name, publicAddr: app.spec.publicAddr)
        guard let key = P256.Signing.PublicKey(presented.publicKey) else {
            throw TeleportError.badParameter("the user certificate's key is not ECDSA P-256")
        }
        let validity = presented.notValidAfter.timeIntervalSince(clock.now())
        let certificate = try await tlsAuthority(.user).issue(publicKey: key, identity: identity, validity: validity, clock: clock)
        settings.metrics?.increment(.certificatesIssued, ["type": "app_route"])
        return (AuthAPI.DatabaseRouteCertResponse(certificatePEM: try certificate.pemText()), identity.username)
    }

    /// The `teleport-jwt-assertion` for one user's requests to `request.appName`, signed by the
    /// `jwt` CA: `username`, `roles`, `traits` (the user's, now), `iss` (the cluster), `aud` (the
    /// app's URI), `iat`, `nbf` and `exp` (the certificate's end: the session's). `callerHostID`
    /// must be the host that heartbeats the app: a service gets tokens for its own apps only.
    public func signAppJWT(_ request: AuthAPI.AppJWTRequest, callerHostID: String?) async throws -> AuthAPI.AppJWTResponse {
        let (presented, identity) = try await verifiedUserCertificate(request.userCertificatePEM, purpose: "get an app token")
        guard let app = try await apps().first(where: { $0.name == request.appName }) else {
            throw TeleportError.notFound("app \"\(request.appName.prefix(64))\" is not registered")
        }
        if let callerHostID, app.spec.hostID != callerHostID {
            throw TeleportError.accessDenied("app \(app.name) is served by another application service; a service gets tokens for its own apps only")
        }
        guard identity.routeToApp?.name == app.name else {
            throw TeleportError.accessDenied("the certificate carries no route to app \(app.name)")
        }
        let user = try await stores.users.get(identity.username)
        let ca = try await certAuthority(.jwt)
        guard let pem = ca.spec.activeKeys.jwt?.first?.privateKey else {
            throw TeleportError.internalError("the jwt CA has no private key")
        }
        let now = Int(clock.now().timeIntervalSince1970)
        let expires = Int(presented.notValidAfter.timeIntervalSince1970)
        let traits = user.spec.traits.mapValues { JSONValue.array($0.map { .string($0) }) }
        let claims: [String: JSONValue] = [
            "username": .string(identity.username), "roles": .array(user.spec.roles.map { .string($0) }), "traits": .object(traits),
            "iss": .string(clusterName), "aud": .array([.string(app.spec.uri)]), "sub": .string(identity.username),
            "iat": .int(now), "nbf": .int(now), "exp": .int(expires),
        ]
        let token = try JWTSigner(privateKeyPEM: pem).sign(claims: claims)
        settings.metrics?.increment(.certificatesIssued, ["type": "jwt"])
        return AuthAPI.AppJWTResponse(token: token, expires: expires)
    }
}
