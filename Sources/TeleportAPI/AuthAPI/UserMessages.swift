public import Foundation

extension AuthAPI {
    /// What a user token is for.
    public enum UserTokenKind: String, Codable, Sendable {
        /// Set a first password (and TOTP) for a new user.
        case signup
        /// Set a new password (and TOTP) for an existing user; unlocks the account.
        case reset
    }

    /// `POST /v1/users` (Admin): create a user and a signup token.
    public struct CreateUserRequest: Codable, Sendable, Equatable {
        /// The user to create.
        public var user: User
        /// The signup token's lifetime (default 1h, at most 48h).
        public var ttlSeconds: Double

        enum CodingKeys: String, CodingKey {
            case user
            case ttlSeconds = "ttl_seconds"
        }

        /// Creates a request.
        public init(user: User, ttlSeconds: Double) {
            self.user = user
            self.ttlSeconds = ttlSeconds
        }
    }

    /// A signup or reset token. `token` is the secret (only in the reply that creates it);
    /// `totpSecret` only in the proxy's lookup (it shows it to the user once, on the form).
    public struct UserTokenInfo: Codable, Sendable, Equatable {
        /// The secret token (32 hex characters).
        public var token: String
        /// The user it is for.
        public var user: String
        /// Signup or reset.
        public var kind: UserTokenKind
        /// When it expires.
        public var expires: Date
        /// The TOTP secret to enrol, base32 (when the cluster uses OTP).
        public var totpSecret: String?
        /// The cluster name (for the otpauth:// label).
        public var clusterName: String?
        /// The page to open, `https://<proxy public address>/web/newuser/<token>` (in the reply that creates it).
        public var url: String?

        enum CodingKeys: String, CodingKey {
            case token, user, kind, expires, url
            case totpSecret = "totp_secret"
            case clusterName = "cluster_name"
        }

        /// Creates token info.
        public init(
            token: String, user: String, kind: UserTokenKind, expires: Date, totpSecret: String?, clusterName: String?, url: String? = nil
        ) {
            self.url = url
            self.token = token
            self.user = user
            self.kind = kind
            self.expires = expires
            self.totpSecret = totpSecret
            self.clusterName = clusterName
        }
    }

    /// `POST /v1/usertokens/complete` (Proxy): the form of the signup or reset page.
    public struct CompleteUserTokenRequest: Codable, Sendable, Equatable {
        /// The token from the URL.
        public var token: String
        /// The new password.
        public var password: String
        /// The current TOTP code from the enrolled secret (when the cluster uses OTP).
        public var otpCode: String?
        /// The browser's address, for the audit log.
        public var clientAddress: String?

        enum CodingKeys: String, CodingKey {
            case token, password
            case otpCode = "otp_code"
            case clientAddress = "client_address"
        }

        /// Creates a request.
        public init(token: String, password: String, otpCode: String?, clientAddress: String?) {
            self.token = token
            self.password = password
            self.otpCode = otpCode
            self.clientAddress = clientAddress
        }
    }

    /// Proof that the caller holds the private keys it asks to certify: signatures with both keys
    /// over a canonical message binding the purpose, the user name, both public keys and
    /// `timestamp` (TeleportCrypto's `LoginProof` makes and checks them). The auth service
    /// refuses a request without a valid one.
    public struct KeyProof: Codable, Sendable, Equatable {
        /// The signing time, Unix seconds (the server accepts 5 minutes either way).
        public var timestamp: Int64
        /// The SSH signature blob (`string "ssh-ed25519", string signature`), base64.
        public var sshSignature: String
        /// The ECDSA P-256 signature (SHA-256, DER), base64.
        public var tlsSignature: String

        enum CodingKeys: String, CodingKey {
            case timestamp
            case sshSignature = "ssh_signature"
            case tlsSignature = "tls_signature"
        }

        /// Creates a proof from its fields.
        public init(timestamp: Int64, sshSignature: String, tlsSignature: String) {
            self.timestamp = timestamp
            self.sshSignature = sshSignature
            self.tlsSignature = tlsSignature
        }
    }

    /// `POST /v1/login` (Proxy, on behalf of a client) and the proxy's `POST /webapi/ssh/certs`
    /// (the client itself, then `clientAddress` is ignored and set by the proxy).
    public struct LoginRequest: Codable, Sendable, Equatable {
        /// The user name.
        public var user: String
        /// The password.
        public var password: String
        /// The TOTP code.
        public var otpCode: String?
        /// The SSH public key to certify, an authorized_keys line (Ed25519).
        public var sshPublicKey: String
        /// The X.509 public key to certify, PEM (ECDSA P-256).
        public var tlsPublicKeyPEM: String
        /// The requested certificate lifetime; capped by the cluster (12h) and the user's roles.
        public var ttlSeconds: Double
        /// The client's address, for the audit log (set by the proxy).
        public var clientAddress: String?
        /// Signatures with both private keys (purpose `teleport login v1`); required.
        public var keyProof: KeyProof?

        enum CodingKeys: String, CodingKey {
            case user, password
            case otpCode = "otp_code"
            case sshPublicKey = "ssh_public_key"
            case tlsPublicKeyPEM = "tls_public_key"
            case ttlSeconds = "ttl_seconds"
            case clientAddress = "client_address"
            case keyProof = "key_proof"
        }

        /// Creates a request.
        public init(
            user: String, password: String, otpCode: String?, sshPublicKey: String, tlsPublicKeyPEM: String, ttlSeconds: Double,
            clientAddress: String? = nil, keyProof: KeyProof? = nil
        ) {
            self.keyProof = keyProof
            self.user = user
            self.password = password
            self.otpCode = otpCode
            self.sshPublicKey = sshPublicKey
            self.tlsPublicKeyPEM = tlsPublicKeyPEM
            self.ttlSeconds = ttlSeconds
            self.clientAddress = clientAddress
        }
    }

    /// The certificates a login (or `tctl auth sign`) returns.
    public struct LoginResponse: Codable, Sendable, Equatable {
        /// The user name.
        public var username: String
        /// The cluster name.
        public var clusterName: String
        /// The SSH user certificate, as a `...-cert.pub` line.
        public var sshCertificate: String
        /// The X.509 client certificate, PEM.
        public var tlsCertificatePEM: String
        /// The cluster's X.509 CA certificates (user and host), PEM.
        public var tlsCAPEMs: [String]
        /// known_hosts lines trusting the host CA (`@cert-authority *.CLUSTER,CLUSTER ...`).
        public var knownHosts: [String]
        /// The user CA's SSH public keys, authorized_keys lines.
        public var userCAKeys: [String]
        /// The OS logins in the certificate.
        public var logins: [String]
        /// The user's roles.
        public var roles: [String]
        /// When the certificates expire.
        public var validBefore: Date

        enum CodingKeys: String, CodingKey {
            case username, logins, roles
            case clusterName = "cluster_name"
            case sshCertificate = "ssh_certificate"
            case tlsCertificatePEM = "tls_certificate"
            case tlsCAPEMs = "tls_ca_certificates"
            case knownHosts = "known_hosts"
            case userCAKeys = "user_ca_keys"
            case validBefore = "valid_before"
        }

        /// Creates a response.
        public init(
            username: String, clusterName: String, sshCertificate: String, tlsCertificatePEM: String, tlsCAPEMs: [String],
            knownHosts: [String], userCAKeys: [String], logins: [String], roles: [String], validBefore: Date
        ) {
            self.username = username
            self.clusterName = clusterName
            self.sshCertificate = sshCertificate
            self.tlsCertificatePEM = tlsCertificatePEM
            self.tlsCAPEMs = tlsCAPEMs
            self.knownHosts = knownHosts
            self.userCAKeys = userCAKeys
            self.logins = logins
            self.roles = roles
            self.validBefore = validBefore
        }
    }

    /// `POST /v1/certs/user` (Admin): `tctl auth sign --user`: certificates without a password.
    public struct SignUserRequest: Codable, Sendable, Equatable {
        /// The user.
        public var user: String
        /// SSH public key line.
        public var sshPublicKey: String
        /// X.509 public key, PEM.
        public var tlsPublicKeyPEM: String
        /// Lifetime.
        public var ttlSeconds: Double
        /// Signatures with both private keys (purpose `teleport sign user v1`); required.
        public var keyProof: KeyProof?

        enum CodingKeys: String, CodingKey {
            case user
            case sshPublicKey = "ssh_public_key"
            case tlsPublicKeyPEM = "tls_public_key"
            case ttlSeconds = "ttl_seconds"
            case keyProof = "key_proof"
        }

        /// Creates a request.
        public init(user: String, sshPublicKey: String, tlsPublicKeyPEM: String, ttlSeconds: Double, keyProof: KeyProof? = nil) {
            self.keyProof = keyProof
            self.user = user
            self.sshPublicKey = sshPublicKey
            self.tlsPublicKeyPEM = tlsPublicKeyPEM
            self.ttlSeconds = ttlSeconds
        }
    }

    /// `POST /v1/certs/host` (Admin): `tctl auth sign --host --format=openssh`: an SSH host
    /// certificate for an OpenSSH sshd.
    public struct SignHostRequest: Codable, Sendable, Equatable {
        /// Principals (host names and addresses).
        public var principals: [String]
        /// The host's SSH public key line.
        public var sshPublicKey: String
        /// Lifetime.
        public var ttlSeconds: Double

        enum CodingKeys: String, CodingKey {
            case principals
            case sshPublicKey = "ssh_public_key"
            case ttlSeconds = "ttl_seconds"
        }

        /// Creates a request.
        public init(principals: [String], sshPublicKey: String, ttlSeconds: Double) {
            self.principals = principals
            self.sshPublicKey = sshPublicKey
            self.ttlSeconds = ttlSeconds
        }
    }

    /// The reply to `POST /v1/certs/host`.
    public struct SignHostResponse: Codable, Sendable, Equatable {
        /// The host certificate line.
        public var sshCertificate: String

        enum CodingKeys: String, CodingKey {
            case sshCertificate = "ssh_certificate"
        }

        /// Creates a response.
        public init(sshCertificate: String) { self.sshCertificate = sshCertificate }
    }
}

/// The proxy's public HTTPS API for `tsh` (`/webapi/...`).
public enum WebAPI {
    /// `GET /webapi/ping`.
    public struct PingResponse: Codable, Sendable, Equatable {
        /// The cluster name.
        public var clusterName: String
        /// The server version.
        public var serverVersion: String
        /// Authentication settings.
        public var auth: Auth
        /// Proxy settings.
        public var proxy: Proxy

        /// `auth` block.
        public struct Auth: Codable, Sendable, Equatable {
            /// `local`.
            public var type: String
            /// `otp` or `off`.
            public var secondFactor: String
            /// Whether password logins are allowed (`local_auth`; absent from older proxies: true).
            public var localAuth: Bool?
            /// The default connector (`connector_name`), when the type is not `local`.
            public var connectorName: String?
            /// The single sign-on connectors (absent from older proxies).
            public var connectors: [AuthAPI.ConnectorSummary]?

            enum CodingKeys: String, CodingKey {
                case type, connectors
                case secondFactor = "second_factor"
                case localAuth = "local_auth"
                case connectorName = "connector_name"
            }

            /// Creates the block.
            public init(
                type: String, secondFactor: String, localAuth: Bool? = nil, connectorName: String? = nil, connectors: [AuthAPI.ConnectorSummary]? = nil
            ) {
                self.type = type
                self.secondFactor = secondFactor
                self.localAuth = localAuth
                self.connectorName = connectorName
                self.connectors = connectors
            }
        }

        /// `proxy` block.
        public struct Proxy: Codable, Sendable, Equatable {
            /// SSH settings.
            public var ssh: SSH

            /// SSH listener.
            public struct SSH: Codable, Sendable, Equatable {
                /// The proxy's SSH listen address.
                public var listenAddr: String
                /// The public address users reach the proxy at.
                public var publicAddr: String

                enum CodingKeys: String, CodingKey {
                    case listenAddr = "listen_addr"
                    case publicAddr = "public_addr"
                }

                /// Creates the block.
                public init(listenAddr: String, publicAddr: String) {
                    self.listenAddr = listenAddr
                    self.publicAddr = publicAddr
                }
            }

            /// Database listeners (absent from proxies without one).
            public var db: DB?
            /// `proxy.tls_routing_enabled`: the web port is the proxy's one port (reverse tunnels,
            /// and databases by ALPN, which it routes in any case).
            public var tlsRoutingEnabled: Bool?

            enum CodingKeys: String, CodingKey {
                case ssh
                case db
                case tlsRoutingEnabled = "tls_routing_enabled"
            }

            /// Database listeners.
            public struct DB: Codable, Sendable, Equatable {
                /// `proxy_service.postgres_listen_addr` (empty: none).
                public var postgresListenAddr: String
                /// `proxy_service.mysql_listen_addr` (empty or absent: none).
                public var mysqlListenAddr: String?

                enum CodingKeys: String, CodingKey {
                    case postgresListenAddr = "postgres_listen_addr"
                    case mysqlListenAddr = "mysql_listen_addr"
                }

                /// Creates the block.
                public init(postgresListenAddr: String, mysqlListenAddr: String? = nil) {
                    self.postgresListenAddr = postgresListenAddr
                    self.mysqlListenAddr = mysqlListenAddr
                }
            }

            /// Creates the block.
            public init(ssh: SSH, db: DB? = nil) {
                self.ssh = ssh
                self.db = db
            }
        }

        /// Creates a response.
        public init(clusterName: String, serverVersion: String, auth: Auth, proxy: Proxy) {
            self.clusterName = clusterName
            self.serverVersion = serverVersion
            self.auth = auth
            self.proxy = proxy
        }

        enum CodingKeys: String, CodingKey {
            case clusterName = "cluster_name"
            case serverVersion = "server_version"
            case auth, proxy
        }
    }

    /// The path of `tsh login`'s call: body ``AuthAPI/LoginRequest``, reply ``AuthAPI/LoginResponse``.
    public static let loginPath = "/webapi/ssh/certs"
}
