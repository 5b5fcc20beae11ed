import Crypto
import Foundation
import Synchronization
import TeleportAPI
import TeleportCrypto

/// What issuing a user's certificates takes from the CAs, derived once from the stored user and host
/// CAs and kept for ``AuthServer/authorityCacheLifetime`` (see ``AuthServer/userIssuingMaterial()``).
struct UserIssuingMaterial: Sendable {
    /// The user CA's active SSH signing key.
    let sshSigningKey: Curve25519.Signing.PrivateKey
    /// The user CA's trusted SSH public key lines (the reply's `user_ca_keys`).
    let userCAKeys: [String]
    /// `@cert-authority` lines for the host CA's trusted SSH keys (the reply's `known_hosts`).
    let knownHosts: [String]
    /// The user and host CAs' trusted X.509 certificates, PEM (the reply's `tls_ca_pems`).
    let caPEMs: [String]
}

extension AuthServer {
    /// The user CA's signing key and the CA lines a login reply carries, kept a few seconds like
    /// ``tlsAuthority(_:)``; a write to a CA clears it (``forgetCachedAuthorities()``).
    func userIssuingMaterial() async throws -> UserIssuingMaterial {
        let now = clock.now()
        if let cached = userIssuingCache.withLock({ $0 }), now.timeIntervalSince(cached.loaded) < Self.authorityCacheLifetime {
            return cached.material
        }
        let userCA = try await certAuthority(.user)
        guard let caPEM = userCA.spec.activeKeys.ssh.first?.privateKey,
            case .ed25519(let caKey) = try OpenSSHPrivateKey(pemRepresentation: caPEM).key
        else { throw TeleportError.internalError("the user CA has no Ed25519 signing key") }
        let hostCA = try await certAuthority(.host)
        let knownHosts = try hostCA.trustedKeys.ssh.map {
            "@cert-authority *.\(clusterName),\(clusterName) " + (try SSHPublicKey(authorizedKeyLine: $0.publicKey)).authorizedKeyLine(comment: "type=host")
        }
        let material = UserIssuingMaterial(
            sshSigningKey: caKey, userCAKeys: userCA.trustedKeys.ssh.map(\.publicKey), knownHosts: knownHosts, caPEMs: try await caPEMs())
        userIssuingCache.withLock { $0 = (now, material) }
        return material
    }
}
