public import TeleportAPI
import TeleportCrypto

extension SSHAuthenticatedUser {
    /// The root cluster this user comes from; nil for the cluster's own users.
    public var userCluster: String? { checked.extensions[SSHCertificate.userClusterExtension] }

    /// What audit events add for a root cluster's user: `user_cluster` and the mapped `user_roles`
    /// (nothing for the cluster's own users).
    public var clusterAuditFields: [String: JSONValue] {
        guard let userCluster else { return [:] }
        return ["user_cluster": .string(userCluster), "user_roles": .array(roles.map { .string($0) })]
    }
}
