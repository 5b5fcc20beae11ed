import Crypto
import Foundation
import TeleportAccess
public import TeleportAPI
import TeleportCrypto
import TeleportEvents
import TeleportServices
import X509

extension AuthServer {
    /// Every registered Kubernetes cluster (expired records left out), sorted by name.
    public func kubeServers() async throws -> [KubeServer] {
        let now = clock.now()
        return try await stores.list(kind: KubeServer.kind).compactMap { $0 as? KubeServer }
            .filter { $0.metadata.expires.map { $0 > now } ?? true }
            .sorted { $0.name < $1.name }
    }

    /// The clusters whose labels the roles named `roleNames` (as they are now) allow.
    public func kubeServers(_ all: [KubeServer], visibleTo roleNames: [String]) async throws -> [KubeServer] {
        let checker = AccessChecker(roles: await existingRoles(roleNames), traits: [:])
        return all.filter { (try? checker.checkKubeLabels($0.allLabels).allowed) == true }
    }

    /// `tsh kube login`: a copy of the user's current X.509 certificate (same key, identity and
    /// expiry) that also carries the Kubernetes cluster route and the user's traits. The cluster
    /// must be registered and the user's roles (as they are now) must allow its labels.
    ///
    /// - Returns: the certificate and the user's name.
    public func issueKubeRouteCertificate(_ request: AuthAPI.KubeRouteCertRequest) async throws -> (AuthAPI.DatabaseRouteCertResponse, String) {
        let (presented, found) = try await verifiedUserCertificate(request.userCertificatePEM, purpose: "carry a Kubernetes route")
        var identity = found
        let user = try await stores.users.get(identity.username)
        identity.traits = user.spec.traits
        identity.routeToDatabase = nil
        identity.routeToApp = nil
        try ResourceName.validate(request.kubeCluster, kind: "Kubernetes cluster name")
        guard let cluster = try await kubeServers().first(where: { $0.name == request.kubeCluster }) else {
            throw TeleportError.notFound("Kubernetes cluster \"\(request.kubeCluster)\" is not registered (tsh kube ls lists them)")
        }
        let checker = AccessChecker(roles: await existingRoles(user.spec.roles), traits: user.spec.traits)
        let decision = try checker.checkKubeLabels(cluster.allLabels)
        guard decision.allowed else {
            throw TeleportError.accessDenied("access to Kubernetes cluster \(cluster.name) denied: \(decision.reasons.joined(separator: "; "))")
        }
        identity.kubernetesCluster = cluster.name
        guard let key = P256.Signing.PublicKey(presented.publicKey) else {
            throw TeleportError.badParameter("the user certificate's key is not ECDSA P-256")
        }
        let validity = presented.notValidAfter.timeIntervalSince(clock.now())
        let certificate = try await tlsAuthority(.user).issue(publicKey: key, identity: identity, validity: validity, clock: clock)
        settings.metrics?.increment(.certificatesIssued, ["type": "kube_route"])
        return (AuthAPI.DatabaseRouteCertResponse(certificatePEM: try certificate.pemText()), identity.username)
    }
}
