public import Foundation

/// The request and response bodies of the auth API (HTTPS + JSON over mutual TLS, `/v1/...`).
public enum AuthAPI {
    /// The DNS name every auth server's certificate carries and every client verifies (not a real
    /// DNS name: clients dial by address and check this name, so only the auth service's own
    /// certificate — not a node's or a proxy's — is accepted as the auth server).
    public static let serverName = "teleport.cluster.local"
    /// The TLS server name kubectl sends to a proxy's web port for Kubernetes access (its
    /// kubeconfig's `tls-server-name`); the proxy's host certificate carries it and the web
    /// port routes connections naming it (or any name with ``kubeProxyServerNamePrefix``).
    public static let kubeProxyServerName = "kube-teleport-proxy-alpn.teleport.cluster.local"
    /// The server-name prefix the web port routes to Kubernetes access.
    public static let kubeProxyServerNamePrefix = "kube-teleport-proxy-alpn."
    /// The ALPN protocol a client may offer instead of the server name for Kubernetes access.
    public static let kubeALPNProtocol = "teleport-kube"
    /// The header with which a proxy asks on behalf of a web UI user: the web session's secret id.
    /// Honoured only from a proxy's identity; the call then runs as the session's user.
    public static let webSessionHeader = "Teleport-Web-Session"

    /// `GET /v1/ping`.
    public struct PingResponse: Codable, Sendable, Equatable {
        /// The cluster name.
        public var clusterName: String
        /// The server's version.
        public var serverVersion: String
        /// Who the caller is, as the server sees it.
        public var identity: String
        /// The caller's roles.
        public var roles: [String]
        /// `auth_service.session_recording`: `node` or `off` (nodes follow it).
        public var sessionRecording: String?
        /// `teleport.storage.audit_failure`: `fail_closed` or `continue` (nodes follow it).
        public var auditFailure: String?

        enum CodingKeys: String, CodingKey {
            case clusterName = "cluster_name"
            case serverVersion = "server_version"
            case sessionRecording = "session_recording"
            case auditFailure = "audit_failure"
            case identity, roles
        }

        /// Creates a response.
        public init(
            clusterName: String, serverVersion: String, identity: String, roles: [String], sessionRecording: String? = nil,
            auditFailure: String? = nil
        ) {
            self.auditFailure = auditFailure
            self.clusterName = clusterName
            self.serverVersion = serverVersion
            self.identity = identity
            self.roles = roles
            self.sessionRecording = sessionRecording
        }
    }

    /// One CA in `GET /v1/status`.
    public struct CAStatus: Codable, Sendable, Equatable {
        /// `user` or `host`.
        public var type: String
        /// SHA-256 fingerprints of the SSH signing keys (`SHA256:...`).
        public var sshFingerprints: [String]
        /// The X.509 CA certificates, PEM.
        public var tlsCertificates: [String]
        /// `never updated` or the last rotation time.
        public var lastRotated: Date?
        /// The rotation state.
        public var rotationState: String
        /// The rotation phase (`standby` when not rotating).
        public var rotationPhase: String?
        /// `auto` or `manual` during a rotation.
        public var rotationMode: String?
        /// When the grace period of the rotation in progress ends.
        public var gracePeriodEnds: Date?

        enum CodingKeys: String, CodingKey {
            case type
            case sshFingerprints = "ssh_fingerprints"
            case tlsCertificates = "tls_certificates"
            case lastRotated = "last_rotated"
            case rotationState = "rotation_state"
            case rotationPhase = "rotation_phase"
            case rotationMode = "rotation_mode"
            case gracePeriodEnds = "grace_period_ends"
        }

        /// Creates a status.
        public init(type: String, sshFingerprints: [String], tlsCertificates: [String], lastRotated: Date?, rotationState: String) {
            self.type = type
            self.sshFingerprints = sshFingerprints
            self.tlsCertificates = tlsCertificates
            self.lastRotated = lastRotated
            self.rotationState = rotationState
        }
    }

    /// `GET /v1/status`.
    public struct StatusResponse: Codable, Sendable, Equatable {
        /// The cluster name.
        public var clusterName: String
        /// The server's version.
        public var serverVersion: String
        /// The user, host and database CAs.
        public var certAuthorities: [CAStatus]
        /// The pin of the host CA, `sha256:<hex>`.
        public var caPin: String

        enum CodingKeys: String, CodingKey {
            case clusterName = "cluster_name"
            case serverVersion = "server_version"
            case certAuthorities = "cert_authorities"
            case caPin = "ca_pin"
        }

        /// Creates a response.
        public init(clusterName: String, serverVersion: String, certAuthorities: [CAStatus], caPin: String) {
            self.clusterName = clusterName
            self.serverVersion = serverVersion
            self.certAuthorities = certAuthorities
            self.caPin = caPin
        }
    }

    /// The body of every error reply.
    public struct ErrorResponse: Codable, Sendable, Equatable {
        /// The error.
        public var error: Body

        /// Code and message.
        public struct Body: Codable, Sendable, Equatable {
            /// A ``TeleportError/Code`` raw value.
            public var code: String
            /// The message.
            public var message: String
        }

        /// Creates an error body.
        public init(code: String, message: String) {
            error = Body(code: code, message: message)
        }
    }
}

extension TeleportError.Code {
    /// The HTTP status the auth API answers with for this code.
    public var httpStatus: Int {
        switch self {
        case .notFound: 404
        case .alreadyExists, .compareFailed: 409
        case .badParameter: 400
        case .accessDenied: 403
        case .limitExceeded: 429
        case .connectionProblem: 502
        case .auditUnavailable: 503
        default: 500
        }
    }
}

extension AuthAPI {
    /// A page of `GET /v1/events?from=&to=&type=&limit=&start_key=`.
    public struct EventsPage: Codable, Sendable, Equatable {
        /// The events, as stored (flat objects with `event`, `code`, `uid`, `time`, ...).
        public var events: [[String: JSONValue]]
        /// Pass as `start_key` for the next page; nil on the last.
        public var nextKey: String?

        enum CodingKeys: String, CodingKey {
            case events
            case nextKey = "next_key"
        }

        public init(events: [[String: JSONValue]], nextKey: String?) {
            self.events = events
            self.nextKey = nextKey
        }
    }
}

extension AuthAPI {
    /// A stored session recording, as listed by `GET /v1/sessions`.
    public struct RecordingInfo: Codable, Sendable, Equatable {
        public var sid: String
        public var user: String
        public var login: String
        public var serverID: String
        public var serverHostname: String
        public var start: Date
        public var durationMs: Int
        /// False when the node stopped before the session ended.
        public var complete: Bool

        enum CodingKeys: String, CodingKey {
            case sid, user, login, start, complete
            case serverID = "server_id"
            case serverHostname = "server_hostname"
            case durationMs = "duration_ms"
        }

        public init(sid: String, user: String, login: String, serverID: String, serverHostname: String, start: Date, durationMs: Int, complete: Bool) {
            self.sid = sid
            self.user = user
            self.login = login
            self.serverID = serverID
            self.serverHostname = serverHostname
            self.start = start
            self.durationMs = durationMs
            self.complete = complete
        }
    }
}

extension AuthAPI {
    /// A session with a terminal running now (`tsh sessions ls`, `tsh join`): an interactive shell
    /// or a command run with `-t`, as its node reports it.
    public struct ActiveSession: Codable, Sendable, Equatable {
        public var sid: String
        public var user: String
        public var login: String
        public var serverID: String
        public var serverHostname: String
        public var created: Date
        /// The command the session runs, or nil for a login shell.
        public var command: String?
        /// `kube` for an interactive `kubectl exec`/`attach` (joined through the Kubernetes
        /// service); nil for an SSH session.
        public var kind: String?
        /// The Kubernetes cluster of a `kube` session.
        public var kubeCluster: String?

        /// Whether this is a Kubernetes session.
        public var isKube: Bool { kind == "kube" }

        enum CodingKeys: String, CodingKey {
            case sid, user, login, created, command, kind
            case serverID = "server_id"
            case serverHostname = "server_hostname"
            case kubeCluster = "kubernetes_cluster"
        }

        public init(sid: String, user: String, login: String, serverID: String, serverHostname: String, created: Date, command: String? = nil) {
            self.sid = sid
            self.user = user
            self.login = login
            self.serverID = serverID
            self.serverHostname = serverHostname
            self.created = created
            self.command = command
        }
    }
}

extension AuthAPI {
    /// `POST /v1/certauthorities/rotate`: `tctl auth rotate`.
    public struct RotateRequest: Codable, Sendable {
        /// `user`, `host`, `db` or `jwt`.
        public var type: String
        /// `auto` (all phases on a schedule) or `manual`.
        public var mode: String
        /// With `manual`: the phase to move to (`init`, `update_clients`, `update_servers`, `standby`, `rollback`).
        public var phase: String?
        /// The grace period in seconds (default 48 h).
        public var gracePeriodSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case type, mode, phase
            case gracePeriodSeconds = "grace_period_seconds"
        }

        /// Creates a request.
        public init(type: String, mode: String, phase: String? = nil, gracePeriodSeconds: Double? = nil) {
            self.type = type
            self.mode = mode
            self.phase = phase
            self.gracePeriodSeconds = gracePeriodSeconds
        }
    }

    /// The answer: the CA's phase before and after.
    public struct RotateResponse: Codable, Sendable {
        /// The CA type.
        public var type: String
        /// The phase before.
        public var from: String
        /// The phase now.
        public var phase: String
        /// `auto` or `manual` (nil once back in standby).
        public var mode: String?
        /// When an automatic rotation ends.
        public var gracePeriodEnds: Date?

        enum CodingKeys: String, CodingKey {
            case type, from, phase, mode
            case gracePeriodEnds = "grace_period_ends"
        }

        /// Creates a response.
        public init(type: String, from: String, phase: String, mode: String?, gracePeriodEnds: Date?) {
            self.type = type
            self.from = from
            self.phase = phase
            self.mode = mode
            self.gracePeriodEnds = gracePeriodEnds
        }
    }
}

extension AuthAPI {
    /// `POST /v1/certs/renew`: an agent's new public key (P-256, PEM) for its own identity.
    public struct RenewIdentityRequest: Codable, Sendable {
        /// The new public key, PEM.
        public var publicKeyPEM: String

        enum CodingKeys: String, CodingKey {
            case publicKeyPEM = "public_key"
        }

        /// Creates a request.
        public init(publicKeyPEM: String) {
            self.publicKeyPEM = publicKeyPEM
        }
    }
}
