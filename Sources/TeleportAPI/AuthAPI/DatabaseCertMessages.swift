public import Foundation

extension AuthAPI {
    /// `POST /v1/certs/db` (Admin): `tctl auth sign --format=db`: an X.509 certificate from the
    /// database CA, for a database server (`hosts`) or a database client (`user`).
    public struct SignDatabaseRequest: Codable, Sendable, Equatable {
        /// What the certificate is for.
        public enum Usage: String, Codable, Sendable, CaseIterable {
            /// A database server's certificate: subject alternative names from `hosts`.
            case server
            /// A client certificate whose common name is the database user.
            case client
        }

        /// Server or client.
        public var usage: Usage
        /// The server's DNS names and IP addresses (server certificates).
        public var hosts: [String]
        /// The database user (client certificates).
        public var user: String?
        /// The ECDSA P-256 public key to certify, PEM.
        public var publicKeyPEM: String
        /// Lifetime.
        public var ttlSeconds: Double
        /// Proof of possession: the key's signature over ``DatabaseKeyProof`` 's message.
        public var keyProof: DatabaseKeyProof?

        enum CodingKeys: String, CodingKey {
            case usage, hosts, user
            case publicKeyPEM = "public_key"
            case ttlSeconds = "ttl_seconds"
            case keyProof = "key_proof"
        }

        /// Creates a request.
        public init(
            usage: Usage, hosts: [String] = [], user: String? = nil, publicKeyPEM: String, ttlSeconds: Double,
            keyProof: DatabaseKeyProof? = nil
        ) {
            self.usage = usage
            self.hosts = hosts
            self.user = user
            self.publicKeyPEM = publicKeyPEM
            self.ttlSeconds = ttlSeconds
            self.keyProof = keyProof
        }
    }

    /// A signature with the key a database certificate request asks to certify.
    public struct DatabaseKeyProof: Codable, Sendable, Equatable {
        /// The signing time, Unix seconds (the server accepts 5 minutes either way).
        public var timestamp: Int64
        /// The ECDSA P-256 signature (SHA-256, DER), base64.
        public var signature: String

        /// Creates a proof from its fields.
        public init(timestamp: Int64, signature: String) {
            self.timestamp = timestamp
            self.signature = signature
        }
    }

    /// The reply to `POST /v1/certs/db`.
    public struct SignDatabaseResponse: Codable, Sendable, Equatable {
        /// The certificate, PEM.
        public var certificatePEM: String
        /// The database CA's certificates, PEM (what a database trusts for client certificates and
        /// a client trusts for the server).
        public var caPEMs: [String]

        enum CodingKeys: String, CodingKey {
            case certificatePEM = "certificate"
            case caPEMs = "ca_certificates"
        }

        /// Creates a response.
        public init(certificatePEM: String, caPEMs: [String]) {
            self.certificatePEM = certificatePEM
            self.caPEMs = caPEMs
        }
    }
}

extension AuthAPI {
    /// `POST /v1/certs/dbroute` (Proxy, for `tsh db login`): the user's current X.509 certificate
    /// (which the proxy verified in its TLS handshake) and the route to put in a new one with the
    /// same key, identity and expiry.
    public struct DatabaseRouteCertRequest: Codable, Sendable, Equatable {
        /// The user's certificate, PEM.
        public var userCertificatePEM: String
        /// The database (`db_server` name).
        public var serviceName: String
        /// The database user.
        public var username: String
        /// The database name (empty: the user's default).
        public var database: String

        enum CodingKeys: String, CodingKey {
            case username, database
            case userCertificatePEM = "user_certificate"
            case serviceName = "service_name"
        }

        /// Creates a request.
        public init(userCertificatePEM: String, serviceName: String, username: String, database: String) {
            self.userCertificatePEM = userCertificatePEM
            self.serviceName = serviceName
            self.username = username
            self.database = database
        }
    }

    /// The route-carrying certificate.
    public struct DatabaseRouteCertResponse: Codable, Sendable, Equatable {
        /// The certificate, PEM (user CA).
        public var certificatePEM: String

        enum CodingKeys: String, CodingKey {
            case certificatePEM = "certificate"
        }

        /// Creates a response.
        public init(certificatePEM: String) { self.certificatePEM = certificatePEM }
    }
}
