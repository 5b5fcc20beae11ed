extension SSHCertificate {
    /// The extension naming the root cluster a user comes from (trusted clusters, issue 20): set in
    /// the certificates a leaf cluster records for a root cluster's users, never in a cluster's
    /// certificates for its own users.
    public static let userClusterExtension = "teleport-user-cluster"
}
