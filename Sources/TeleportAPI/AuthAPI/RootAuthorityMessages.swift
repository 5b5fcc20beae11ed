public import Foundation

extension AuthAPI {
    /// Leaf side, `POST /v1/trustedclusters/rootauthorities` (Proxy only): the root cluster's
    /// current user and host CAs (public halves; both keys while the root rotates one), as the
    /// root's proxy sent them on the leaf's reverse tunnel. The leaf replaces the root's CAs it
    /// holds with these, so it follows the root's CA rotations.
    public struct RootAuthoritiesUpdate: Codable, Sendable, Equatable {
        /// The root cluster's name (the trusted cluster whose tunnel the update came through).
        public var cluster: String
        /// One user and one host CA of that cluster.
        public var certAuthorities: [CertAuthority]

        enum CodingKeys: String, CodingKey {
            case cluster
            case certAuthorities = "cert_authorities"
        }

        /// Creates an update.
        public init(cluster: String, certAuthorities: [CertAuthority]) {
            self.cluster = cluster
            self.certAuthorities = certAuthorities
        }
    }

    /// The answer to ``RootAuthoritiesUpdate``: the CA types that changed (empty: nothing new).
    public struct RootAuthoritiesUpdated: Codable, Sendable, Equatable {
        /// `user`, `host`, both or none.
        public var updated: [String]

        /// Creates an answer.
        public init(updated: [String]) {
            self.updated = updated
        }
    }
}
