public import Crypto
public import Foundation
public import Logging
public import TeleportAPI
public import TeleportBackend
public import TeleportCrypto
public import TeleportEvents
public import TeleportServices
public import X509
import Synchronization

/// The auth service's logic: the cluster's name and CAs, the identities it issues, and the resources
/// it stores. Transports (the HTTPS API) call into it; it knows nothing of HTTP.
public final class AuthServer: Sendable {
    /// The typed stores.
    public let stores: ClusterStores
    /// The audit log.
    public let audit: any AuditEmitter
    /// The clock for certificate validity and events.
    public let clock: any WallClock
    /// The cluster name.
    public let clusterName: String
    /// Join tokens.
    public let tokens: TokenService
    /// Local users' passwords, TOTP and tokens.
    public let secrets: UserSecretsStore
    /// The web UI's browser sessions.
    public let webSessions: WebSessionStore
    /// Authentication settings.
    public let settings: AuthSettings
    let logger: Logger
    /// Batches node heartbeats into few transactions; run by ``AuthAPIServer``.
    let presence: PresenceWriter
    /// The issued-certificate registry's first writes, grouped into one transaction when
    /// certificates are issued at once.
    let registryCreates: CoalescingCreates
    /// The change feed of issued user certificates (certificate-bound keys).
    let userCertificates: UserCertificateFeed
    /// Parsed X.509 CAs, kept a few seconds: every API request checks its client certificate
    /// against them, and reading and parsing them from the backend each time costs more than the
    /// rest of a heartbeat. Writes to a CA clear it (``forgetCachedAuthorities()``).
    let authorityCache = Mutex<[CertAuthority.CAType: (loaded: Date, authority: TLSAuthority)]>([:])
    static let authorityCacheLifetime: TimeInterval = 5
    /// The trusted X.509 CA certificates of each type (active and additional), parsed, as above.
    let trustCache = Mutex<[CertAuthority.CAType: (loaded: Date, certificates: [Certificate])]>([:])
    /// What issuing a user's certificates takes from the user and host CAs (the parsed SSH signing
    /// key, the CA key lines and known-hosts lines every reply carries), kept like the X.509 signer:
    /// reading, decoding and parsing both CAs for each certificate cost more than signing it.
    let userIssuingCache = Mutex<(loaded: Date, material: UserIssuingMaterial)?>(nil)
    /// Identity providers' keys between single sign-on logins.
    let ssoCache = SSOCache()
    /// Called (in order, awaited) after this auth server moves a CA rotation (``onRotation(_:)``).
    let rotationObservers = Mutex<[@Sendable () async -> Void]>([])

    init(
        stores: ClusterStores, audit: any AuditEmitter, clock: any WallClock, clusterName: String,
        staticTokens: [TokenService.StaticToken], settings: AuthSettings, logger: Logger
    ) {
        self.stores = stores
        self.secrets = UserSecretsStore(backend: stores.backend)
        self.webSessions = WebSessionStore(backend: stores.backend)
        self.presence = PresenceWriter(backend: stores.backend)
        self.registryCreates = CoalescingCreates(backend: stores.backend)
        self.userCertificates = UserCertificateFeed(backend: stores.backend, logger: logger)
        self.settings = settings
        self.tokens = TokenService(stores: stores, staticTokens: staticTokens, clock: clock)
        self.audit = audit
        self.clock = clock
        self.clusterName = clusterName
        self.logger = logger
    }

    /// Opens the auth service over `backend`: on first start creates the cluster name (from
    /// `configuredName`, else a generated UUID) and the user, host and database CAs (and any of them missing on a later start), after importing
    /// `bootstrap` resources if the backend is empty. On later starts the stored name wins and a
    /// different configured name is an error (renaming a cluster invalidates every certificate).
    public static func open(
        backend: any Backend, audit: any AuditEmitter, clock: any WallClock, configuredName: String?,
        staticTokens: [String] = [], settings: AuthSettings = AuthSettings(), bootstrap: [AnyResource] = [], logger: Logger
    ) async throws -> AuthServer {
        let stores = ClusterStores(backend: backend)
        let parsedTokens = try TokenService.parseStatic(staticTokens)
        let existing = try? await stores.clusterName.get("cluster-name")
        if existing == nil, !bootstrap.isEmpty {
            try await importBootstrap(bootstrap, stores: stores, logger: logger)
        }
        var name: String
        if let stored = try? await stores.clusterName.get("cluster-name") {
            name = stored.spec.clusterName
            if let configuredName, configuredName != name {
                throw TeleportError.badParameter(
                    "auth_service.cluster_name is \"\(configuredName)\" but this data_dir belongs to cluster \"\(name)\"; "
                        + "a cluster cannot be renamed (use another data_dir for a new cluster)")
            }
        } else {
            name = configuredName ?? UUID().uuidString.lowercased()
            try ResourceName.validate(name, kind: "auth_service.cluster_name")
            do {
                try await stores.clusterName.create(
                    ClusterNameResource(clusterName: name, clusterID: UUID().uuidString.lowercased()))
                logger.info("created the cluster", metadata: [LogKeys.cluster: "\(name)"])
            } catch let error as TeleportError where error.code == .alreadyExists {
                // Another auth server sharing the store won the race: its name is the cluster's.
                name = try await stores.clusterName.get("cluster-name").spec.clusterName
                if let configuredName, configuredName != name {
                    throw TeleportError.badParameter(
                        "auth_service.cluster_name is \"\(configuredName)\" but the shared store belongs to cluster \"\(name)\"; "
                            + "give every auth server of a cluster the same cluster_name")
                }
            }
        }
        let server = AuthServer(
            stores: stores, audit: audit, clock: clock, clusterName: name, staticTokens: parsedTokens, settings: settings,
            logger: logger)
        for type in CertAuthority.CAType.allCases {
            try await server.ensureCA(type)
        }
        try await server.ensurePresetRoles()
        try await server.userCertificates.start()
        return server
    }

    static func importBootstrap(_ resources: [AnyResource], stores: ClusterStores, logger: Logger) async throws {
        for resource in resources {
            try await stores.put(resource, upsert: true)
        }
        logger.info("imported bootstrap resources", metadata: ["tp.count": "\(resources.count)"])
    }

    func ensureCA(_ type: CertAuthority.CAType) async throws {
        // Also on the start of an existing cluster: a CA type added by an upgrade (the db CA) is
        // created then.
        if (try? await stores.certAuthorities.get(type.rawValue)) != nil { return }
        if type == .jwt {
            // ES256: one P-256 key, no certificate.
            let key = P256.Signing.PrivateKey()
            let ca = CertAuthority(
                type: .jwt, clusterName: clusterName,
                activeKeys: .init(ssh: [], tls: [], jwt: [.init(publicKey: key.publicKey.pemRepresentation, privateKey: key.pemRepresentation)]))
            try await createCA(ca, type: type)
            return
        }
        let ca = CertAuthority(type: type, clusterName: clusterName, activeKeys: try generateKeys(type))
        try await createCA(ca, type: type)
    }

    /// A fresh key set for a CA of `type` (first start, and a rotation's `init` phase).
    func generateKeys(_ type: CertAuthority.CAType) throws -> CertAuthority.KeySet {
        if type == .jwt {
            let key = P256.Signing.PrivateKey()
            return .init(ssh: [], tls: [], jwt: [.init(publicKey: key.publicKey.pemRepresentation, privateKey: key.pemRepresentation)])
        }
        var sshPairs: [CertAuthority.SSHKeyPair] = []
        if type.hasSSHKeys {
            let ssh = Curve25519.Signing.PrivateKey()
            let sshPublic = SSHPublicKey.ed25519(ssh.publicKey).authorizedKeyLine(comment: "")
            let sshPrivate = OpenSSHPrivateKey(.ed25519(ssh), comment: "\(clusterName) \(type.rawValue) CA").pemRepresentation()
            sshPairs = [.init(publicKey: sshPublic, privateKey: sshPrivate)]
        }
        let tls = try TLSAuthority.generate(clusterName: clusterName, type: type.rawValue, clock: clock)
        return .init(ssh: sshPairs, tls: [.init(cert: try tls.certificatePEM, key: tls.keyPEM)])
    }

    /// Stores a new CA (another auth server may have won the race) and audits it.
    private func createCA(_ ca: CertAuthority, type: CertAuthority.CAType) async throws {
        do {
            try await stores.certAuthorities.create(ca)
        } catch let error as TeleportError where error.code == .alreadyExists {
            return
        }
        logger.info("created a certificate authority", metadata: [LogKeys.caType: "\(type.rawValue)"])
        try await audit.emit(
            AuditEvent(
                event: AuditEventType.certAuthorityCreate.0, code: AuditEventType.certAuthorityCreate.1, time: clock.now(),
                fields: ["cert_type": .string(type.rawValue), "cluster_name": .string(clusterName)]))
    }

    /// The CA of `type`, with its private keys.
    public func certAuthority(_ type: CertAuthority.CAType) async throws -> CertAuthority {
        try await stores.certAuthorities.get(type.rawValue)
    }

    /// The X.509 signer of the CA of `type`.
    public func tlsAuthority(_ type: CertAuthority.CAType) async throws -> TLSAuthority {
        let now = clock.now()
        if let cached = authorityCache.withLock({ $0[type] }), now.timeIntervalSince(cached.loaded) < Self.authorityCacheLifetime {
            return cached.authority
        }
        let ca = try await certAuthority(type)
        guard let pair = ca.spec.activeKeys.tls.first, let key = pair.key else {
            throw TeleportError.internalError("the \(type.rawValue) CA has no X.509 private key")
        }
        let authority = try TLSAuthority(certificatePEM: pair.cert, keyPEM: key)
        authorityCache.withLock { $0[type] = (now, authority) }
        return authority
    }

    /// Drops the parsed CAs (after a CA was written).
    public func forgetCachedAuthorities() {
        authorityCache.withLock { $0.removeAll() }
        trustCache.withLock { $0.removeAll() }
        userIssuingCache.withLock { $0 = nil }
    }

    /// The X.509 CA certificates of `type` trusted now (the active ones, and during a rotation the
    /// additional ones), parsed, kept a few seconds like ``tlsAuthority(_:)``.
    public func trustedAuthorities(_ type: CertAuthority.CAType) async throws -> [Certificate] {
        let now = clock.now()
        if let cached = trustCache.withLock({ $0[type] }), now.timeIntervalSince(cached.loaded) < Self.authorityCacheLifetime {
            return cached.certificates
        }
        let certificates = try await certAuthority(type).trustedKeys.tls.map { try Certificate.fromPEM($0.cert) }
        trustCache.withLock { $0[type] = (now, certificates) }
        return certificates
    }

    /// True when a trusted certificate of the CA of `type` signed `leaf`.
    public func signedByTrusted(_ type: CertAuthority.CAType, _ leaf: Certificate) async throws -> Bool {
        try await trustedAuthorities(type).contains { $0.publicKey.isValidSignature(leaf.signature, for: leaf) }
    }

    /// The X.509 CA certificates of the user and host CAs (what the cluster's servers trust for
    /// client certificates). Never the database CA's: what it signs is for databases only.
    public func trustedTLSCertificates() async throws -> [Certificate] {
        var certificates: [Certificate] = []
        for type in CertAuthority.CAType.clusterTrust {
            for pair in try await certAuthority(type).trustedKeys.tls {
                certificates.append(try Certificate.fromPEM(pair.cert))
            }
        }
        return certificates
    }

    /// Issues an X.509 identity of a cluster member (`Admin`, `Auth`, `Node`, `Proxy`) from the host
    /// CA. `hostID` becomes the common name (`<uuid>.<cluster>` for hosts).
    public func issueSystemIdentity(
        role: SystemRole, hostID: String, publicKey: P256.Signing.PublicKey, serverNames: TLSAuthority.ServerNames? = nil,
        validity: TimeInterval = 365 * 86400
    ) async throws -> IssuedIdentity {
        let authority = try await tlsAuthority(.host)
        let identity = X509Identity(username: hostID, roles: [role.rawValue], clusterName: clusterName)
        let certificate = try authority.issue(
            publicKey: publicKey, identity: identity, serverNames: serverNames, validity: validity, clock: clock)
        settings.metrics?.increment(.certificatesIssued, ["type": "host"])
        if role == .node || role == .proxy {
            // The host's current certificate: older ones (and all of them once the host is removed
            // with `tctl rm node/UUID`) are refused, so a removed host must join again.
            try await stores.backend.put(
                Item(key: Self.hostIdentityKey(hostID, role), value: Data(String(describing: certificate.serialNumber).utf8)))
        }
        return IssuedIdentity(certificatePEM: try certificate.pemText(), caPEMs: try await caPEMs())
    }

    static func hostIdentityKey(_ hostID: String, _ role: SystemRole) -> String {
        let uuid = hostID.split(separator: ".").first.map(String.init) ?? hostID
        return Keys.key("hostidentities", uuid, role.rawValue.lowercased())
    }

    /// The certificate a host renewed away from (``renewHostIdentity(presented:role:publicKeyPEM:)``),
    /// still accepted for ``renewalOverlap``: requests the host sent before it switched.
    static func previousHostIdentityKey(_ hostID: String, _ role: SystemRole) -> String {
        hostIdentityKey(hostID, role) + "-previous"
    }

    /// How long a renewed host's previous certificate stays current.
    static let renewalOverlap: TimeInterval = 60

    /// True when `certificate` is the current identity of a Node or Proxy host.
    func isCurrentHostIdentity(_ certificate: Certificate, hostID: String, role: SystemRole) async throws -> Bool {
        // Only a missing record means "removed": a backend that fails to answer must not make
        // hosts delete their identity (they retry instead).
        let item: Item
        do {
            item = try await stores.backend.get(Self.hostIdentityKey(hostID, role))
        } catch let error as TeleportError where error.code == .notFound {
            return false
        }
        let serial = Array(String(describing: certificate.serialNumber).utf8)
        if ConstantTime.equal(Array(item.value), serial) { return true }
        guard let previous = try? await stores.backend.get(Self.previousHostIdentityKey(hostID, role)) else { return false }
        return ConstantTime.equal(Array(previous.value), serial)
    }

    /// Forgets a host's Node identity (`tctl rm node/UUID`): its node certificate stops working
    /// and the UUID is free to join again. A Proxy identity of the same host is kept (the proxy
    /// service of that host keeps working), and so is the host key while the host has one.
    public func removeHostIdentities(hostID: String) async throws {
        try? await stores.backend.delete(Self.previousHostIdentityKey(hostID, .node))
        try? await stores.backend.delete(Self.hostIdentityKey(hostID, .node))
        if (try await stores.backend.getRange(prefix: Keys.key("hostidentities", hostID) + "/")).isEmpty {
            try? await stores.backend.delete(Keys.key("hostkeys", hostID))
        }
    }

    /// The PEMs of the user and host CAs' trusted X.509 certificates (parsed ones kept a few seconds,
    /// like ``trustedAuthorities(_:)``).
    public func caPEMs() async throws -> [String] {
        var pems: [String] = []
        for type in CertAuthority.CAType.clusterTrust {
            pems += try await trustedAuthorities(type).map { try $0.pemText() }
        }
        return pems
    }

    /// The status `tctl status` prints.
    public func status() async throws -> AuthAPI.StatusResponse {
        var cas: [AuthAPI.CAStatus] = []
        var pin = ""
        for type in CertAuthority.CAType.allCases {
            let ca = try await certAuthority(type)
            let fingerprints = try ca.spec.activeKeys.ssh.map { try SSHPublicKey(authorizedKeyLine: $0.publicKey).fingerprintSHA256 }
            var entry = AuthAPI.CAStatus(
                type: type.rawValue, sshFingerprints: fingerprints, tlsCertificates: ca.spec.activeKeys.tls.map(\.cert),
                lastRotated: ca.spec.rotation?.lastRotated, rotationState: ca.spec.rotation?.state ?? "standby")
            entry.rotationPhase = ca.rotationPhase.rawValue
            entry.rotationMode = ca.spec.rotation?.mode
            entry.gracePeriodEnds = ca.spec.rotation?.schedule?.standby
            cas.append(entry)
            if type == .host, let first = ca.spec.activeKeys.tls.first {
                pin = try CAPin.pin(of: try Certificate.fromPEM(first.cert))
            }
        }
        return .init(clusterName: clusterName, serverVersion: TeleportVersion.version, certAuthorities: cas, caPin: pin)
    }

    /// Records an audit event; failures are logged and returned to the caller.
    public func emit(_ type: (String, String), fields: [String: JSONValue]) async throws {
        do {
            try await audit.emit(AuditEvent(event: type.0, code: type.1, time: clock.now(), fields: fields))
            settings.metrics?.increment(.auditEventsWritten)
        } catch {
            let reason = (error as? TeleportError)?.message ?? "\(error)"
            guard settings.auditFailure == "continue" else {
                throw TeleportError(.auditUnavailable, "the audit log cannot be written (\(reason)); nothing is done until it can")
            }
            AuditMetrics.countDropped()
            logger.error("ALERT: an audit event was dropped: \(reason) (audit_failure: continue)", metadata: ["tp.event": "\(type.0)"])
        }
    }
}

/// How users authenticate, from `auth_service.authentication` and the proxy's address.
public struct AuthSettings: Sendable {
    /// `otp` (the default) or `off`.
    public var secondFactor: String
    /// The proxy's public address, for signup links (`https://ADDR/web/newuser/TOKEN`).
    public var proxyPublicAddr: String?
    /// The longest certificate a login gets (the seed's 12 hours).
    public var maxSessionTTL: TimeInterval
    /// bcrypt's cost factor.
    public var bcryptCost: UInt8
    /// How long a web session may stay unused before it ends (`auth_service.web_idle_timeout`).
    public var webIdleTimeout: TimeInterval = AuthSettings.defaultWebIdleTimeout
    /// The default ``webIdleTimeout``: 10 minutes.
    public static let defaultWebIdleTimeout: TimeInterval = 600
    /// `session_recording`: `node` or `off`.
    public var sessionRecording = "node"
    /// `audit_failure`: `fail_closed` or `continue`.
    public var auditFailure = "fail_closed"
    /// Where session recordings are stored (`audit_sessions_uri`; default `data_dir/log/sessions/default`).
    public var sessionsDirectory: URL?
    /// Where recordings are stored when not in ``sessionsDirectory`` (`audit_sessions_uri: s3://`).
    public var recordingStorage: (any RecordingStorage)?
    /// Where logins, certificates, heartbeats and audit writes are counted (`/metrics`).
    public var metrics: TeleportMetrics?
    /// `auth_service.authentication.type`: `local`, `oidc` or `github` (the default for `tsh login`).
    public var authType = "local"
    /// `auth_service.authentication.connector_name`: the default connector.
    public var connectorName: String?
    /// `auth_service.authentication.local_auth`: false refuses every password login.
    public var localAuth = true
    /// How the single sign-on flows reach identity providers (nil: ``ProviderHTTPClient``).
    public var ssoHTTPClient: (any SSOHTTPClient)?

    /// Creates settings.
    public init(secondFactor: String = "otp", proxyPublicAddr: String? = nil, maxSessionTTL: TimeInterval = 12 * 3600, bcryptCost: UInt8 = 12) {
        self.secondFactor = secondFactor
        self.proxyPublicAddr = proxyPublicAddr
        self.maxSessionTTL = maxSessionTTL
        self.bcryptCost = bcryptCost
    }

    /// True when logins need a TOTP code.
    public var requiresOTP: Bool { secondFactor != "off" }
}

/// A certificate issued by the auth service, with the CA certificates to trust.
public struct IssuedIdentity: Sendable {
    /// The leaf certificate, PEM.
    public var certificatePEM: String
    /// The CA certificates (user and host), PEM.
    public var caPEMs: [String]
}
