public import Foundation

extension AuthAPI {
    /// `POST /webapi/trustedclusters/validate` (the root proxy's web port, no client certificate)
    /// and `POST /v1/trustedclusters/validate` (the root proxy to its auth service): a leaf offers
    /// the root's `trusted_cluster` token and its own user and host CAs (public halves only).
    public struct ValidateTrustRequest: Codable, Sendable, Equatable {
        /// The root's single-use `trusted_cluster` token (never logged, never stored in clear).
        public var token: String
        /// The leaf's cluster name.
        public var leafClusterName: String
        /// The leaf's user and host CAs, without private keys.
        public var certAuthorities: [CertAuthority]
        /// The address the leaf called from, as the root proxy saw it (set by the proxy).
        public var remoteAddress: String?
        /// The root cluster's name as the leaf's `trusted_cluster` names it: a root with another
        /// name refuses before it spends the token.
        public var rootClusterName: String?

        enum CodingKeys: String, CodingKey {
            case token
            case leafClusterName = "leaf_cluster_name"
            case certAuthorities = "cert_authorities"
            case remoteAddress = "remote_address"
            case rootClusterName = "root_cluster_name"
        }

        /// Creates a request.
        public init(
            token: String, leafClusterName: String, certAuthorities: [CertAuthority], remoteAddress: String? = nil, rootClusterName: String? = nil
        ) {
            self.rootClusterName = rootClusterName
            self.token = token
            self.leafClusterName = leafClusterName
            self.certAuthorities = certAuthorities
            self.remoteAddress = remoteAddress
        }
    }

    /// The root's answer: its name, its user and host CAs (public halves), and a seal over them
    /// keyed by the token, so that the leaf knows the answer comes from whoever made the token.
    public struct ValidateTrustResponse: Codable, Sendable, Equatable {
        /// The root's cluster name.
        public var clusterName: String
        /// The root's user and host CAs, without private keys.
        public var certAuthorities: [CertAuthority]
        /// HMAC-SHA256 (hex) keyed by the token over the names and CAs (`TrustExchangeSeal`).
        public var seal: String

        enum CodingKeys: String, CodingKey {
            case seal
            case clusterName = "cluster_name"
            case certAuthorities = "cert_authorities"
        }

        /// Creates a response.
        public init(clusterName: String, certAuthorities: [CertAuthority], seal: String) {
            self.clusterName = clusterName
            self.certAuthorities = certAuthorities
            self.seal = seal
        }
    }

    /// One CA as `tctl auth ls` shows it.
    public struct AuthorityListing: Codable, Sendable, Equatable {
        /// The cluster the CA belongs to.
        public var clusterName: String
        /// `user`, `host`, `db` or `jwt`.
        public var type: String
        /// SHA256 fingerprints of its trusted SSH keys (or of its X.509 certificates when it has none).
        public var fingerprints: [String]
        /// For a trusted root's user CA on a leaf: the leaf roles its users may get (`role_map`);
        /// nil elsewhere.
        public var mappedRoles: String?

        enum CodingKeys: String, CodingKey {
            case type, fingerprints
            case clusterName = "cluster_name"
            case mappedRoles = "mapped_roles"
        }

        /// Creates a listing line.
        public init(clusterName: String, type: String, fingerprints: [String], mappedRoles: String? = nil) {
            self.clusterName = clusterName
            self.type = type
            self.fingerprints = fingerprints
            self.mappedRoles = mappedRoles
        }
    }

    /// `GET /v1/authorities`: the local cluster's CAs and those of trusted clusters.
    public struct AuthoritiesResponse: Codable, Sendable, Equatable {
        /// This cluster's name.
        public var clusterName: String
        /// This cluster's CAs.
        public var local: [AuthorityListing]
        /// Other clusters' CAs this cluster trusts (a root's on a leaf, leaves' on a root).
        public var trusted: [AuthorityListing]

        enum CodingKeys: String, CodingKey {
            case local, trusted
            case clusterName = "cluster_name"
        }

        /// Creates a response.
        public init(clusterName: String, local: [AuthorityListing], trusted: [AuthorityListing]) {
            self.clusterName = clusterName
            self.local = local
            self.trusted = trusted
        }
    }
}
