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
        /// During a rotation (phases `init` to `update_servers`, and `rollback`): the other key set,
        /// trusted beside ``activeKeys`` but never used to sign. In `init` it holds the new keys; from
        /// `update_clients` on the old ones (the new keys are active); in `rollback` the new ones again.
        public var additionalTrustedKeys: KeySet?
        /// SSH public keys of key sets a rotation retired: never trusted for access, kept only so that
        /// `tctl audit verify` checks audit checkpoints signed before the rotation.
        public var retiredSSHPublicKeys: [String]?

        enum CodingKeys: String, CodingKey {
            case type, rotation
            case clusterName = "cluster_name"
            case activeKeys = "active_keys"
            case additionalTrustedKeys = "additional_trusted_keys"
            case retiredSSHPublicKeys = "retired_ssh_public_keys"
        }

        /// Creates a spec.
        public init(type: CAType, clusterName: String, activeKeys: KeySet, rotation: Rotation? = nil) {
            self.type = type
            self.clusterName = clusterName
            self.activeKeys = activeKeys
            self.rotation = rotation
        }
    }

    /// Every key set trusted now: the active one, then (during a rotation) the additional one.
    /// Trust stores (mutual TLS roots, SSH user CA keys, known hosts) are built from these; signing
    /// uses ``Spec/activeKeys`` only.
    public var trustedKeys: KeySet {
        guard let extra = spec.additionalTrustedKeys else { return spec.activeKeys }
        let active = spec.activeKeys
        return KeySet(
            ssh: active.ssh + extra.ssh, tls: active.tls + extra.tls,
            jwt: active.jwt == nil && extra.jwt == nil ? nil : (active.jwt ?? []) + (extra.jwt ?? []))
    }

    /// The rotation phase (``CARotation/Phase/standby`` when not rotating or unknown).
    public var rotationPhase: CARotation.Phase {
        CARotation.Phase(rawValue: spec.rotation?.phase ?? "standby") ?? .standby
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

    /// Where a CA is in its rotation (see ``CARotation``).
    public struct Rotation: Codable, Sendable, Equatable {
        /// `standby` when not rotating, `in_progress` during a rotation.
        public var state: String
        /// The rotation phase: `standby`, `init`, `update_clients`, `update_servers` or `rollback`.
        public var phase: String?
        /// When the CA last finished a rotation (`nil`: never).
        public var lastRotated: Date?
        /// `auto` (the phases follow ``schedule``) or `manual`; nil when not rotating.
        public var mode: String?
        /// When the rotation started.
        public var started: Date?
        /// The grace period of the rotation, in seconds.
        public var gracePeriodSeconds: Double?
        /// An automatic rotation's phase changes.
        public var schedule: Schedule?

        enum CodingKeys: String, CodingKey {
            case state, phase, mode, started, schedule
            case lastRotated = "last_rotated"
            case gracePeriodSeconds = "grace_period_seconds"
        }

        /// Creates a rotation state.
        public init(
            state: String = "standby", phase: String? = nil, lastRotated: Date? = nil, mode: String? = nil, started: Date? = nil,
            gracePeriodSeconds: Double? = nil, schedule: Schedule? = nil
        ) {
            self.state = state
            self.phase = phase
            self.lastRotated = lastRotated
            self.mode = mode
            self.started = started
            self.gracePeriodSeconds = gracePeriodSeconds
            self.schedule = schedule
        }
    }

    /// When an automatic rotation moves to each phase: the grace period in thirds.
    public struct Schedule: Codable, Sendable, Equatable {
        /// `init` → `update_clients`.
        public var updateClients: Date
        /// `update_clients` → `update_servers`.
        public var updateServers: Date
        /// `update_servers` → `standby` (the old keys are no longer trusted).
        public var standby: Date

        enum CodingKeys: String, CodingKey {
            case updateClients = "update_clients"
            case updateServers = "update_servers"
            case standby
        }

        /// Creates a schedule.
        public init(updateClients: Date, updateServers: Date, standby: Date) {
            self.updateClients = updateClients
            self.updateServers = updateServers
            self.standby = standby
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
        copy.spec.additionalTrustedKeys = spec.additionalTrustedKeys?.withoutSecrets
        return copy
    }

    public func validate() throws {
        try validateEnvelope()
        guard metadata.name == spec.type.rawValue else {
            throw TeleportError.badParameter("cert_authority: metadata.name must equal spec.type (\(spec.type.rawValue))")
        }
        try Self.validate(spec.activeKeys, type: spec.type, field: "active_keys")
        if let extra = spec.additionalTrustedKeys {
            try Self.validate(extra, type: spec.type, field: "additional_trusted_keys")
        }
        if let phase = spec.rotation?.phase, CARotation.Phase(rawValue: phase) == nil {
            throw TeleportError.badParameter(
                "cert_authority \(name): spec.rotation.phase \"\(phase)\" is not one of standby, init, update_clients, update_servers, rollback")
        }
    }

    private static func validate(_ keys: KeySet, type: CAType, field: String) throws {
        if type == .jwt {
            guard !(keys.jwt ?? []).isEmpty, keys.tls.isEmpty, keys.ssh.isEmpty else {
                throw TeleportError.badParameter("cert_authority jwt: spec.\(field) needs a jwt key pair and no ssh or tls key pair")
            }
            return
        }
        guard !keys.tls.isEmpty, type.hasSSHKeys ? !keys.ssh.isEmpty : keys.ssh.isEmpty else {
            throw TeleportError.badParameter(
                type.hasSSHKeys
                    ? "cert_authority \(type.rawValue): spec.\(field) needs an ssh and a tls key pair"
                    : "cert_authority \(type.rawValue): spec.\(field) needs a tls key pair and no ssh key pair (the db CA is X.509 only)")
        }
    }
}
