public import Foundation

extension AuthAPI {
    /// `POST /v1/join`: a new host offers a join token and its public keys; the only call made
    /// without a client certificate.
    public struct JoinRequest: Codable, Sendable, Equatable {
        /// The join token (never logged, never stored in clear).
        public var token: String
        /// The role to join as.
        public var role: SystemRole
        /// The host's UUID.
        public var hostUUID: String
        /// The host's name.
        public var nodeName: String
        /// Addresses (IPs or DNS names) the host's certificate should be valid for.
        public var addresses: [String]
        /// The public key to certify for the auth API, PEM (ECDSA P-256).
        public var tlsPublicKeyPEM: String
        /// The host's SSH host key, an authorized_keys line; recorded so clients can trust it.
        public var sshHostPublicKey: String?

        enum CodingKeys: String, CodingKey {
            case token, role, addresses
            case hostUUID = "host_uuid"
            case nodeName = "node_name"
            case tlsPublicKeyPEM = "tls_public_key"
            case sshHostPublicKey = "ssh_host_public_key"
        }

        /// Creates a request.
        public init(
            token: String, role: SystemRole, hostUUID: String, nodeName: String, addresses: [String], tlsPublicKeyPEM: String,
            sshHostPublicKey: String?
        ) {
            self.token = token
            self.role = role
            self.hostUUID = hostUUID
            self.nodeName = nodeName
            self.addresses = addresses
            self.tlsPublicKeyPEM = tlsPublicKeyPEM
            self.sshHostPublicKey = sshHostPublicKey
        }
    }

    /// The reply to a join: the host's certificate and the CAs to trust.
    public struct JoinResponse: Codable, Sendable, Equatable {
        /// The cluster name.
        public var clusterName: String
        /// The host's X.509 certificate, PEM.
        public var certificatePEM: String
        /// The cluster's CA certificates, PEM.
        public var caPEMs: [String]

        enum CodingKeys: String, CodingKey {
            case clusterName = "cluster_name"
            case certificatePEM = "certificate"
            case caPEMs = "ca_certificates"
        }

        /// Creates a response.
        public init(clusterName: String, certificatePEM: String, caPEMs: [String]) {
            self.clusterName = clusterName
            self.certificatePEM = certificatePEM
            self.caPEMs = caPEMs
        }
    }

    /// A node's SSH host key as the cluster records it (`GET /v1/hostkeys`).
    public struct HostKey: Codable, Sendable, Equatable {
        /// The node's UUID.
        public var hostID: String
        /// The node's name.
        public var nodeName: String
        /// The public key, an authorized_keys line.
        public var publicKey: String
        /// Its SHA-256 fingerprint.
        public var fingerprint: String

        enum CodingKeys: String, CodingKey {
            case hostID = "host_id"
            case nodeName = "node_name"
            case publicKey = "public_key"
            case fingerprint
        }

        /// Creates a record.
        public init(hostID: String, nodeName: String, publicKey: String, fingerprint: String) {
            self.hostID = hostID
            self.nodeName = nodeName
            self.publicKey = publicKey
            self.fingerprint = fingerprint
        }
    }

    /// `GET /v1/join/ca`: the host CA certificates, public, for the joiner to check against its pin.
    public struct JoinCAResponse: Codable, Sendable, Equatable {
        /// The host CA certificates, PEM.
        public var hostCAPEMs: [String]
        /// During a rotation: each trusted host CA's key and subject signed by the other trusted
        /// host CA, so an agent that missed phases can check the new CA with the old one.
        public var crossSignedPEMs: [String]?

        enum CodingKeys: String, CodingKey {
            case hostCAPEMs = "host_ca_certificates"
            case crossSignedPEMs = "host_ca_cross_signed"
        }

        /// Creates a response.
        public init(hostCAPEMs: [String], crossSignedPEMs: [String]? = nil) {
            self.hostCAPEMs = hostCAPEMs
            self.crossSignedPEMs = crossSignedPEMs
        }
    }

    /// `POST /v1/tokens`: create a join token.
    public struct CreateTokenRequest: Codable, Sendable, Equatable {
        /// The token value; the server generates one when absent.
        public var token: String?
        /// Roles the token grants.
        public var roles: [SystemRole]
        /// Lifetime in seconds.
        public var ttlSeconds: Double

        enum CodingKeys: String, CodingKey {
            case token, roles
            case ttlSeconds = "ttl_seconds"
        }

        /// Creates a request.
        public init(token: String?, roles: [SystemRole], ttlSeconds: Double) {
            self.token = token
            self.roles = roles
            self.ttlSeconds = ttlSeconds
        }
    }

    /// One token in `GET /v1/tokens` and the reply to `POST /v1/tokens`.
    public struct TokenInfo: Codable, Sendable, Equatable {
        /// The token value (only in the reply to its creation) or its masked form.
        public var token: String
        /// The roles.
        public var roles: [SystemRole]
        /// When it expires; `nil` for static tokens.
        public var expires: Date?
        /// True for tokens from `auth_service.tokens`.
        public var isStatic: Bool

        enum CodingKeys: String, CodingKey {
            case token, roles, expires
            case isStatic = "static"
        }

        /// Creates token info.
        public init(token: String, roles: [SystemRole], expires: Date?, isStatic: Bool) {
            self.token = token
            self.roles = roles
            self.expires = expires
            self.isStatic = isStatic
        }
    }
}

