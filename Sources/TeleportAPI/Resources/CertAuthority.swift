public import Foundation

/// A certificate authority of the cluster (`kind: cert_authority`): the user CA, the host CA or the
/// database CA.
///
/// The user and host CAs each hold an SSH signing key (Ed25519) and an X.509 CA (ECDSA P-256); the
/// database CA is X.509 only and is never trusted by the cluster's own mutual TLS. Private keys are stored in
/// the backend of the auth service and leave it only for `tctl get --with-secrets` (backups).
public struct CertAuthority: Resource {
    public static let kind = "cert_authority"
    public static let currentVersion = "v2"
    public var kind: String
    public var version: String
    /// `metadata.name` is the CA type: `user`, `host` or `db`.
    public var metadata: Metadata
    public var spec: Spec

    /// The CA type.
    public enum CAType: String, Codable, Sendable, CaseIterable {
        /// Signs user certificates.
        case user
        /// Signs host certificates.
        case host
        /// Signs certificates for databases (`tctl auth sign --format=db`): X.509 only, outside the
        /// cluster's own mutual TLS.
        case db
        /// Signs the JSON Web Tokens an application service adds to each request it forwards
        /// (`teleport-jwt-assertion`): an ECDSA P-256 key only (ES256), published as a JWKS.
        case jwt

        /// The CAs whose X.509 certificates the cluster's mutual TLS trusts (the auth API's client
        /// and server certificates, identity files). The database CA is not one of them: a
        /// certificate it signs must never authenticate to the cluster.
        public static let clusterTrust: [CAType] = [.user, .host]

        /// True when the CA has an SSH key pair (the database CA has none).
        public var hasSSHKeys: Bool { self != .db && self != .jwt }

        /// True when the CA has an X.509 CA certificate (the JWT CA has none).
        public var hasTLSKeys: Bool { self != .jwt }
    }

    /// The CA's keys and rotation state.
    public struct Spec: Codable, Sendable, Equatable {
        /// `user`, `host` or `db`.
        public var type: CAType
        /// The cluster the CA belongs to.
        public var clusterName: String
        /// The keys in use.
        public var activeKeys: KeySet
        /// Rotation state.
        public var rotation: Rotation?

        enum CodingKeys: String, CodingKey {
            case type, rotation
            case clusterName = "cluster_name"
            case activeKeys = "active_keys"
        }

        /// Creates a spec.
        public init(type: CAType, clusterName: String, activeKeys: KeySet, rotation: Rotation? = nil) {
            self.type = type
            self.clusterName = clusterName
            self.activeKeys = activeKeys
            self.rotation = rotation
        }
    }

    /// SSH and TLS key pairs.
    public struct KeySet: Codable, Sendable, Equatable {
        /// SSH signing keys.
        public var ssh: [SSHKeyPair]
        /// X.509 CA key pairs.
        public var tls: [TLSKeyPair]
        /// JWT signing key pairs (the `jwt` CA only).
        public var jwt: [JWTKeyPair]?

        /// Creates a key set.
        public init(ssh: [SSHKeyPair], tls: [TLSKeyPair], jwt: [JWTKeyPair]? = nil) {
            self.ssh = ssh
            self.tls = tls
            self.jwt = jwt
        }

        /// The same keys with every private key removed.
        public var withoutSecrets: KeySet {
            KeySet(
                ssh: ssh.map { SSHKeyPair(publicKey: $0.publicKey, privateKey: nil) },
                tls: tls.map { TLSKeyPair(cert: $0.cert, key: nil) },
                jwt: jwt.map { $0.map { JWTKeyPair(publicKey: $0.publicKey, privateKey: nil) } })
        }
    }

    /// A JWT signing key pair: ECDSA P-256, both PEM (SubjectPublicKeyInfo and PKCS#8).
    public struct JWTKeyPair: Codable, Sendable, Equatable {
        /// The public key, PEM.
        public var publicKey: String
        /// The private key, PEM; absent when exported without secrets.
        public var privateKey: String?

        enum CodingKeys: String, CodingKey {
            case publicKey = "public_key"
            case privateKey = "private_key"
        }

        /// Creates a pair.
        public init(publicKey: String, privateKey: String?) {
            self.publicKey = publicKey
            self.privateKey = privateKey
        }
    }

    /// An SSH key pair: the public key as an authorized_keys line, the private key in OpenSSH PEM form.
    public struct SSHKeyPair: Codable, Sendable, Equatable {
        /// `ssh-ed25519 AAAA...`.
        public var publicKey: String
        /// `-----BEGIN OPENSSH PRIVATE KEY-----...`, absent when exported without secrets.
        public var privateKey: String?

        enum CodingKeys: String, CodingKey {
            case publicKey = "public_key"
            case privateKey = "private_key"
        }

        /// Creates a pair.
        public init(publicKey: String, privateKey: String?) {
            self.publicKey = publicKey
            self.privateKey = privateKey
        }
    }

    /// An X.509 CA: certificate and key, both PEM.
    public struct TLSKeyPair: Codable, Sendable, Equatable {
        /// The CA certificate, PEM.
        public var cert: String
        /// The private key, PKCS#8 PEM; absent when exported without secrets.
        public var key: String?

        /// Creates a pair.
        public init(cert: String, key: String?) {
            self.cert = cert
            self.key = key
        }
    }

    /// Where a CA is in its rotation.
    public struct Rotation: Codable, Sendable, Equatable {
        /// `standby` when not rotating.
        public var state: String
        /// The rotation phase.
        public var phase: String?
        /// When the CA last finished a rotation (`nil`: never).
        public var lastRotated: Date?

        enum CodingKeys: String, CodingKey {
            case state, phase
            case lastRotated = "last_rotated"
        }

        /// Creates a rotation state.
        public init(state: String = "standby", phase: String? = nil, lastRotated: Date? = nil) {
            self.state = state
            self.phase = phase
            self.lastRotated = lastRotated
        }
    }

    /// Creates a CA resource.
    public init(type: CAType, clusterName: String, activeKeys: KeySet) {
        self.kind = Self.kind
        self.version = Self.currentVersion
        self.metadata = Metadata(name: type.rawValue)
        self.spec = Spec(type: type, clusterName: clusterName, activeKeys: activeKeys, rotation: Rotation())
    }

    /// The same CA with private keys removed.
    public var withoutSecrets: CertAuthority {
        var copy = self
        copy.spec.activeKeys = spec.activeKeys.withoutSecrets
        return copy
    }

    public func validate() throws {
        try validateEnvelope()
        guard metadata.name == spec.type.rawValue else {
            throw TeleportError.badParameter("cert_authority: metadata.name must equal spec.type (\(spec.type.rawValue))")
        }
        if spec.type == .jwt {
            guard !(spec.activeKeys.jwt ?? []).isEmpty, spec.activeKeys.tls.isEmpty, spec.activeKeys.ssh.isEmpty else {
                throw TeleportError.badParameter("cert_authority jwt: spec.active_keys needs a jwt key pair and no ssh or tls key pair")
            }
            return
        }
        guard !spec.activeKeys.tls.isEmpty, spec.type.hasSSHKeys ? !spec.activeKeys.ssh.isEmpty : spec.activeKeys.ssh.isEmpty else {
            throw TeleportError.badParameter(
                spec.type.hasSSHKeys
                    ? "cert_authority \(name): spec.active_keys needs an ssh and a tls key pair"
                    : "cert_authority \(name): spec.active_keys needs a tls key pair and no ssh key pair (the db CA is X.509 only)")
        }
    }
}
