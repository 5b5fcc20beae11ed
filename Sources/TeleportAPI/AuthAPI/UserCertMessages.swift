public import Foundation

extension AuthAPI {
    /// `GET /v1/usercerts?after=CURSOR&wait=SECONDS`: the user certificates the cluster issued, as a
    /// change feed for the certificate-bound key caches of proxies and nodes.
    ///
    /// With no cursor, or a cursor the server no longer knows (it restarted, or the caller fell too
    /// far behind), the reply is a full snapshot (`reset` true); otherwise it lists what was issued
    /// after the cursor, waiting up to `wait` seconds for something new.
    public struct UserCertChanges: Codable, Sendable, Equatable {
        /// Pass this back as `after` to get what follows.
        public var cursor: String
        /// True when `certificates` is everything current, replacing what the caller holds.
        public var reset: Bool
        /// OpenSSH certificate lines.
        public var certificates: [String]
        /// The user CA's SSH public keys (authorized_keys lines) that certificates must be signed by.
        public var userCAKeys: [String]
        /// Every lock in force.
        public var locks: [Lock]?
        /// Every role (a node checks each session against the roles in force, not those of the
        /// moment the certificate was issued).
        public var roles: [Role]?

        enum CodingKeys: String, CodingKey {
            case cursor, reset, certificates, locks, roles
            case userCAKeys = "user_ca_keys"
        }

        /// Creates a reply.
        public init(
            cursor: String, reset: Bool, certificates: [String], userCAKeys: [String], locks: [Lock]? = nil, roles: [Role]? = nil
        ) {
            self.cursor = cursor
            self.reset = reset
            self.certificates = certificates
            self.userCAKeys = userCAKeys
            self.locks = locks
            self.roles = roles
        }
    }

    /// `GET /v1/usercerts/FINGERPRINT`: one certificate by its subject key's SHA-256 (hex).
    public struct UserCertLookup: Codable, Sendable, Equatable {
        /// The OpenSSH certificate line.
        public var certificate: String
        /// The user CA's SSH public keys.
        public var userCAKeys: [String]
        /// Every lock in force.
        public var locks: [Lock]?
        /// Every role.
        public var roles: [Role]?

        enum CodingKeys: String, CodingKey {
            case certificate, locks, roles
            case userCAKeys = "user_ca_keys"
        }

        /// Creates a reply.
        public init(certificate: String, userCAKeys: [String], locks: [Lock]? = nil, roles: [Role]? = nil) {
            self.certificate = certificate
            self.userCAKeys = userCAKeys
            self.locks = locks
            self.roles = roles
        }
    }
}
