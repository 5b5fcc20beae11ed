public import Foundation
public import TeleportAPI
import Logging
import TeleportCrypto
import TeleportServices

/// Trusted clusters (issue 20): a leaf follows its root's CA rotations. The root's proxies send
/// the root's current CAs (``exchangeableAuthorities()``: both keys while a rotation is under way,
/// the new one alone once it completed) on each leaf's reverse tunnel; the leaf's proxy passes
/// them here. The leaf replaces what it holds of the root, so root users with certificates of the
/// new CA reach the leaf's nodes, and once the root's rotation completed the old CA is refused.
///
/// Whom this trusts: the tunnel the CAs come through, which the leaf's proxy dialed itself and
/// on which it checked the root proxy's certificate against the root's host CA it holds. A root
/// proxy can therefore replace the root's CAs on the leaf (as it can in Teleport); the CAs must
/// name the root cluster, and the trust must exist.
extension AuthServer {
    /// Leaf side (`POST /v1/trustedclusters/rootauthorities`, from this cluster's proxy): stores
    /// the root's CAs when they differ from the ones held; audited when they change or are refused.
    public func updateRootAuthorities(_ update: AuthAPI.RootAuthoritiesUpdate) async throws -> AuthAPI.RootAuthoritiesUpdated {
        var fields: [String: JSONValue] = ["cluster_name": .string(String(update.cluster.prefix(253))), "role": "leaf"]
        do {
            guard update.cluster != clusterName, (try? await trustedClusters.get(update.cluster)) != nil else {
                throw TeleportError.notFound("this cluster trusts no root cluster \(String(update.cluster.prefix(253)).debugDescription); its CAs were not stored")
            }
            let received = try Self.checkExchanged(update.certAuthorities, cluster: update.cluster, side: "root")
            var changed: [String] = []
            for ca in received {
                let held = try await trustedAuthority(cluster: update.cluster, type: ca.spec.type)
                if let held, Self.samePublicKeys(held, ca) { continue }
                try await trustedAuthorityStore(update.cluster).upsert(ca)
                changed.append(ca.spec.type.rawValue)
            }
            if !changed.isEmpty {
                fields["ca_types"] = .array(changed.map { .string($0) })
                fields["fingerprints"] = .array(received.flatMap(Self.sshFingerprints).map { .string($0) })
                try await emit(AuditEventType.trustedClusterAuthoritiesUpdate, fields: fields)
                logger.info("the root cluster's CAs changed; now trusting its new keys", metadata: ["tp.cluster": "\(update.cluster)", "tp.types": "\(changed)"])
            }
            return AuthAPI.RootAuthoritiesUpdated(updated: changed)
        } catch let error as TeleportError {
            fields["error"] = .string(error.message)
            try? await emit(AuditEventType.trustedClusterAuthoritiesUpdateFailure, fields: fields)
            throw error
        }
    }

    /// Whether two CAs hold the same public keys (SSH and X.509), in any order.
    static func samePublicKeys(_ a: CertAuthority, _ b: CertAuthority) -> Bool {
        func keys(_ ca: CertAuthority) -> (Set<String>, Set<String>) {
            let trusted = ca.trustedKeys
            return (Set(trusted.ssh.map(\.publicKey)), Set(trusted.tls.map(\.cert)))
        }
        return keys(a) == keys(b)
    }

    /// The SHA256 fingerprints of a CA's SSH keys.
    static func sshFingerprints(_ ca: CertAuthority) -> [String] {
        ca.trustedKeys.ssh.compactMap { try? SSHPublicKey(authorizedKeyLine: $0.publicKey).fingerprintSHA256 }
    }
}
