public import Foundation

extension AuthAPI {
    /// Leaf side, `POST /v1/trustedclusters/rootusers` (Proxy only): a root cluster's user
    /// certificate that the root's proxy passed on through the leaf's reverse tunnel, to be checked
    /// against the root's user CA and mapped to this cluster's roles (the trusted cluster's
    /// `role_map`).
    public struct RootUserRequest: Codable, Sendable, Equatable {
        /// The root cluster's name (the trusted cluster whose tunnel the request came through).
        public var cluster: String
        /// The user's OpenSSH certificate line, as the root's user CA signed it.
        public var certificate: String
        /// True to record, for the certificate's key, a certificate of this cluster with the mapped
        /// roles (so this cluster's nodes accept the key); false only maps (a listing).
        public var record: Bool

        /// Creates a request.
        public init(cluster: String, certificate: String, record: Bool) {
            self.cluster = cluster
            self.certificate = certificate
            self.record = record
        }
    }

    /// The answer to ``RootUserRequest``: who the user is here.
    public struct RootUserAdmission: Codable, Sendable, Equatable {
        /// The user's name (the root certificate's key ID).
        public var user: String
        /// The root cluster the user comes from.
        public var cluster: String
        /// The user's roles in the root cluster (the certificate's).
        public var rootRoles: [String]
        /// This cluster's roles the role map gives (never empty: no mapping is a refusal).
        public var roles: [String]
        /// The user's traits (the root certificate's `teleport-traits`).
        public var traits: [String: [String]]
        /// The logins the mapped roles allow here.
        public var logins: [String]
        /// When the admission ends (the root certificate's expiry).
        public var validBefore: Date

        enum CodingKeys: String, CodingKey {
            case user, cluster, roles, traits, logins
            case rootRoles = "root_roles"
            case validBefore = "valid_before"
        }

        /// Creates an answer.
        public init(user: String, cluster: String, rootRoles: [String], roles: [String], traits: [String: [String]], logins: [String], validBefore: Date) {
            self.user = user
            self.cluster = cluster
            self.rootRoles = rootRoles
            self.roles = roles
            self.traits = traits
            self.logins = logins
            self.validBefore = validBefore
        }
    }
}
