import Foundation
public import TeleportAPI
import TeleportAccess
import TeleportCrypto
import TeleportServices

/// Trusted clusters (issue 20), leaf side: a root cluster's users on this cluster. The root's
/// proxy passes the user's SSH certificate through the leaf's reverse tunnel; this checks it
/// against the root's user CA stored at the trust exchange (while the trust is enabled), maps the
/// certificate's roles with the trusted cluster's `role_map`, and, for a connection, records a
/// certificate of this cluster for the same key with the mapped roles only: this cluster's nodes
/// then check the user's key exactly as a local user's (the certificate-bound key registry), with
/// this cluster's roles. A certificate whose roles map to nothing, or one the root's user CA did
/// not sign (a third cluster's relayed through the root), is refused and audited
/// (`trusted_cluster.user.denied`). The mapping is read at every request, so a change of
/// `role_map` applies to the next connection without a new exchange.
extension AuthServer {
    /// The extension naming the cluster a user comes from, in certificates this cluster records
    /// for root users (the nodes put it in their session events).
    public static let userClusterExtension = SSHCertificate.userClusterExtension

    /// Checks and maps a root user's certificate (see the type's comment); records a certificate
    /// of this cluster for its key when `request.record`.
    ///
    /// - Throws: ``TeleportError`` `accessDenied` (audited) when the trust is unknown or disabled,
    ///   the certificate is not a current user certificate of the root's user CA, the user is
    ///   locked here, or the roles map to none of this cluster's roles.
    public func admitRootUser(_ request: AuthAPI.RootUserRequest) async throws -> AuthAPI.RootUserAdmission {
        var fields: [String: JSONValue] = ["cluster_name": .string(clusterName), "user_cluster": .string(request.cluster)]
        do {
            return try await admit(request, fields: &fields)
        } catch let error as TeleportError {
            fields["reason"] = .string(error.message)
            try await emit(AuditEventType.trustedClusterUserDenied, fields: fields)
            throw error
        }
    }

    private func admit(_ request: AuthAPI.RootUserRequest, fields: inout [String: JSONValue]) async throws -> AuthAPI.RootUserAdmission {
        let root = request.cluster
        // Bound as one value first: release builds miscompile `guard let (a, b) = try await f()`
        // (see EtcdBackend.get).
        let authority = try await enabledRootUserAuthority(cluster: root)
        guard let authority else {
            if let trusted = try? await trustedClusters.get(root), !trusted.spec.enabled {
                throw TeleportError.accessDenied(
                    "the trust of cluster \(clusterName) in root cluster \(root) is disabled (trusted_cluster \(root) has enabled: false); "
                        + "an administrator of \(clusterName) can enable it again with tctl create -f")
            }
            throw TeleportError.accessDenied("cluster \(clusterName) does not trust a root cluster named \(root.debugDescription)")
        }
        let (trusted, ca) = authority
        let certificate: SSHCertificate
        do {
            certificate = try SSHCertificate(authorizedKeyLine: request.certificate)
        } catch {
            throw TeleportError.accessDenied("the root user's certificate cannot be read: \((error as? TeleportError)?.message ?? "\(error)")")
        }
        fields["user"] = .string(certificate.keyID)
        // The root's user CA only: never its host CA, this cluster's own CA or another cluster's.
        let rootKeys = ca.trustedKeys.ssh.compactMap { try? SSHPublicKey(authorizedKeyLine: $0.publicKey) }
        let checked = try SSHCertificateChecker(clock: clock).check(
            certificate, trustedCAs: rootKeys, expectedType: .user, login: nil, clientAddress: nil)
        let rootRoles = Self.certificateRoles(checked.extensions)
        let traits = Self.certificateTraits(checked.extensions)
        fields["root_roles"] = .array(rootRoles.map { .string($0) })
        let mapped = RoleMap.map(rootRoles, with: trusted.spec.roleMap)
        let existing = await existingRoles(mapped)
        fields["roles"] = .array(existing.map { .string($0.name) })
        guard !existing.isEmpty else {
            let why = mapped.isEmpty
                ? "the role_map of trusted_cluster \(root) maps none of them" : "the roles they map to (\(mapped.joined(separator: ", "))) do not exist here"
            throw TeleportError.accessDenied(
                "root user \(certificate.keyID) of \(root) has no roles in cluster \(clusterName): their roles (\(rootRoles.joined(separator: ", "))) "
                    + "give nothing because \(why); an administrator of \(clusterName) can add a mapping (tctl create -f the trusted_cluster)")
        }
        let now = clock.now()
        if let lock = try await locks().first(where: { $0.applies(user: certificate.keyID, login: nil, node: [], at: now) }) {
            throw TeleportError.accessDenied(lock.refusal)
        }
        let logins = AccessChecker(roles: existing, traits: AccessChecker.templateTraits(traits)).allowedLogins
        let admission = AuthAPI.RootUserAdmission(
            user: certificate.keyID, cluster: root, rootRoles: rootRoles, roles: existing.map(\.name), traits: traits, logins: logins,
            validBefore: certificate.validBefore)
        if request.record {
            var issued = fields
            issued["cert_type"] = "user"
            issued["trusted_cluster"] = .string(root)
            try await auditingCertificate(issued) { _ in
                try await recordUserCertificate(try rootUserCertificate(certificate, admission: admission, extensions: checked.extensions))
            }
        }
        return admission
    }

    /// The certificate of this cluster for a root user's key: the mapped roles, the logins they
    /// allow (a placeholder when none), the root certificate's expiry (never later) and its
    /// `permit-*` extensions, and the user's cluster.
    func rootUserCertificate(_ root: SSHCertificate, admission: AuthAPI.RootUserAdmission, extensions: [String: String]) async throws -> SSHCertificate {
        let material = try await userIssuingMaterial()
        var granted = extensions.filter { $0.key.hasPrefix("permit-") && SSHCertificate.standardUserExtensions[$0.key] != nil }
        let roles: [String: JSONValue] = ["version": "v1", "roles": .array(admission.roles.map { .string($0) })]
        granted["teleport-roles"] = String(decoding: try ResourceCodec.json(roles), as: UTF8.self)
        granted["teleport-route-to-cluster"] = clusterName
        granted["teleport-traits"] = String(decoding: try ResourceCodec.json(admission.traits), as: UTF8.self)
        granted[Self.userClusterExtension] = admission.cluster
        let now = clock.now()
        let logins = admission.logins.isEmpty ? ["-teleport-nologin-" + UUID().uuidString.lowercased()] : admission.logins
        return try SSHCertificate.sign(
            publicKey: root.publicKey, type: .user, serial: UInt64.random(in: 1...UInt64.max), keyID: admission.user, validPrincipals: logins,
            validAfter: now.addingTimeInterval(-60), validBefore: root.validBefore, extensions: granted, caKey: material.sshSigningKey)
    }

    /// The roles in a certificate's `teleport-roles` extension.
    static func certificateRoles(_ extensions: [String: String]) -> [String] {
        guard let text = extensions["teleport-roles"],
            case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)), case .array(let list)? = object["roles"]
        else { return [] }
        return list.compactMap { if case .string(let name) = $0 { name } else { nil } }
    }

    /// The traits in a certificate's `teleport-traits` extension.
    static func certificateTraits(_ extensions: [String: String]) -> [String: [String]] {
        guard let text = extensions["teleport-traits"], let traits = try? JSONDecoder().decode([String: [String]].self, from: Data(text.utf8))
        else { return [:] }
        return traits
    }
}
