public import Foundation

/// One audit event: the seed's common fields (`event`, `code`, `uid`, `time`) plus event fields.
///
/// Encoded as one flat JSON object per line, as the seed's audit log shows.
public struct AuditEvent: Sendable, Equatable {
    /// The event type, e.g. `session.start`.
    public var event: String
    /// The stable code, e.g. `T2000I`.
    public var code: String
    /// A unique id (UUID), for de-duplication.
    public var uid: String
    /// When it happened (UTC).
    public var time: Date
    /// The other fields, e.g. `user`, `login`, `addr.remote`.
    public var fields: [String: JSONValue]

    /// Creates an event.
    public init(event: String, code: String, time: Date, uid: String = UUID().uuidString.lowercased(), fields: [String: JSONValue] = [:]) {
        self.event = event
        self.code = code
        self.uid = uid
        self.time = time
        self.fields = fields
    }

    /// The event as one JSON object (keys sorted).
    public func jsonLine() throws -> Data {
        var object = fields
        object["event"] = .string(event)
        object["code"] = .string(code)
        object["uid"] = .string(uid)
        object["time"] = .string(RFC3339.format(time))
        // JSONText writes what JSONEncoder would, without Codable; a double is left to JSONEncoder.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(512)
        if JSONText.write(object, into: &bytes) { return Data(bytes) }
        return try ResourceCodec.jsonEncoder().encode(object)
    }

    /// Reads an event from one JSON line.
    public init(jsonLine: Data) throws {
        guard case .object(let object) = try JSONText.parse(jsonLine) else {
            throw TeleportError.badParameter("an audit event must be a JSON object")
        }
        try self.init(object: object)
    }

    /// Reads an event from its decoded JSON object (as ``init(jsonLine:)`` does, without
    /// encoding the object again first).
    public init(object: [String: JSONValue]) throws {
        guard case .string(let event)? = object["event"], case .string(let code)? = object["code"],
            case .string(let uid)? = object["uid"], case .string(let timeText)? = object["time"],
            let time = RFC3339.parse(timeText)
        else {
            throw TeleportError.badParameter("an audit event needs event, code, uid and time")
        }
        var fields = object
        for key in ["event", "code", "uid", "time"] { fields[key] = nil }
        self.init(event: event, code: code, time: time, uid: uid, fields: fields)
    }
}

/// Event types and codes (Teleport's convention: `T<group><n><I|W|E>`).
public enum AuditEventType {
    /// `user.login` success.
    public static let userLogin = ("user.login", "T1000I")
    /// `user.login` failure.
    public static let userLoginFailure = ("user.login", "T1000W")
    /// `user.password_change`: a signup or reset form set a password.
    public static let passwordChange = ("user.password_change", "T1005I")
    /// `user.locked`: too many failed logins.
    public static let userLocked = ("user.locked", "T1006W")
    /// `cert.create`: certificates issued by an administrator (`tctl auth sign`).
    public static let certCreate = ("cert.create", "TC000I")
    /// `cert.create` refused (`tctl auth sign --user` without a valid key proof, or for a key
    /// certified for another user); `error` says why.
    public static let certCreateFailure = ("cert.create", "TC000W")
    /// `user.create`.
    public static let userCreate = ("user.create", "T1002I")
    /// `user.update`.
    public static let userUpdate = ("user.update", "T1003I")
    /// `user.delete`.
    public static let userDelete = ("user.delete", "T1004I")
    /// `role.created`.
    public static let roleCreated = ("role.created", "T9000I")
    /// `role.deleted`.
    public static let roleDeleted = ("role.deleted", "T9001I")
    /// `lock.created`.
    public static let lockCreated = ("lock.created", "T9006I")
    /// `lock.deleted`.
    public static let lockDeleted = ("lock.deleted", "T9007I")
    /// `join_token.create`.
    public static let joinTokenCreate = ("join_token.create", "T9003I")
    /// `resource.create` for other kinds.
    public static let resourceCreate = ("resource.create", "T9100I")
    /// `resource.delete` for other kinds.
    public static let resourceDelete = ("resource.delete", "T9101I")
    /// `node.join`: a host joined the cluster.
    public static let nodeJoin = ("node.join", "T9200I")
    /// `node.join` that failed (bad token, wrong role).
    public static let nodeJoinFailure = ("node.join", "T9200W")
    /// `join_token.delete`.
    public static let joinTokenDelete = ("join_token.delete", "T9004I")
    /// `auth`: an SSH login to a node or proxy succeeded.
    public static let sshAuth = ("auth", "T3007I")
    /// `auth`: an SSH login was refused (the `error` field says why).
    public static let sshAuthFailure = ("auth", "T3007W")
    /// `db.session.start`: a database session began (the service checked the role and reached
    /// the database).
    public static let dbSessionStart = ("db.session.start", "TDB00I")
    /// `db.session.start` refused: roles, certificate or database (`error` says why).
    public static let dbSessionStartFailure = ("db.session.start", "TDB00W")
    /// `db.session.end`.
    public static let dbSessionEnd = ("db.session.end", "TDB01I")
    /// `db.session.query`: a simple-protocol query (`db_query`).
    public static let dbSessionQuery = ("db.session.query", "TDB02I")
    /// `app.session.start`: a user's connection to an app began (certificate, route and roles checked).
    public static let appSessionStart = ("app.session.start", "TAP00I")
    /// `app.session.start` refused: no or a foreign certificate, another app's route, roles (`error` says why).
    public static let appSessionStartFailure = ("app.session.start", "TAP00W")
    /// `app.session.end`.
    public static let appSessionEnd = ("app.session.end", "TAP01I")
    /// `app.session.request`: one HTTP request forwarded (method, path, status, duration; never bodies or cookies).
    public static let appSessionRequest = ("app.session.request", "TAP02I")
    /// `kube.request`: one Kubernetes API request forwarded (verb, resource, namespace, name,
    /// status, the impersonated user and groups; never bodies).
    public static let kubeRequest = ("kube.request", "T3009I")
    /// `kube.request` refused: no or a foreign certificate, another cluster's route, roles, a
    /// refused `Impersonate-*` header (`error` says why).
    public static let kubeRequestFailure = ("kube.request", "T3009W")
    /// `session.start`: a shell, command or subsystem started on a node.
    public static let sessionStart = ("session.start", "T2000I")
    /// `session.rejected`: a node refused a session or a request in one (unknown login, a refused
    /// `env` variable, an unknown subsystem, access denied by roles); `reason` says why.
    public static let sessionRejected = ("session.rejected", "T2000W")
    /// `session.join`.
    public static let sessionJoin = ("session.join", "T2001I")
    /// `resize`: the terminal of a session changed size.
    public static let resize = ("resize", "T2002I")
    /// `session.leave`.
    public static let sessionLeave = ("session.leave", "T2003I")
    /// `session.end`.
    public static let sessionEnd = ("session.end", "T2004I")
    /// `session.upload`: a recording reached the auth service.
    public static let sessionUpload = ("session.upload", "T2005I")
    /// `session.upload` that failed: a corrupt or truncated recording was kept aside.
    public static let sessionUploadFailure = ("session.upload", "T2005E")
    /// `session.recording.access`: someone read a recording.
    public static let sessionRecordingAccess = ("session.recording.access", "T2012I")
    /// `session.recording.access` refused.
    public static let sessionRecordingAccessFailure = ("session.recording.access", "T2012W")
    /// `exec`: a command ran (`exitCode` 0).
    public static let exec = ("exec", "T3002I")
    /// `exec` that failed (non-zero `exitCode`, or a signal in `exitError`).
    public static let execFailure = ("exec", "T3002E")
    /// `port`: a port forward started.
    public static let port = ("port", "T3003I")
    /// `port`: a port forward was refused.
    public static let portFailure = ("port", "T3003E")
    /// `scp` from the node (`action` download).
    public static let scpDownload = ("scp", "T3004I")
    /// `scp` to the node (`action` upload).
    public static let scpUpload = ("scp", "T3005I")
    /// `sftp`: an SFTP session (the system sftp-server serves it; `path` is not known).
    public static let sftp = ("sftp", "T3008I")
    /// `audit.checkpoint`: the auth service signed the hash chain so far.
    public static let auditCheckpoint = ("audit.checkpoint", "T9300I")
    /// `cert_authority.create`: a CA was created at first start.
    public static let certAuthorityCreate = ("cert_authority.create", "T9102I")
    /// `cert.rotation`: a CA's rotation moved to another phase (`cert_type`, `phase`, `from`, `mode`, `user`).
    public static let certRotation = ("cert.rotation", "T9103I")
    /// `cert.rotation`: a rotation request was refused (not allowed, or a phase the rotation cannot take).
    public static let certRotationFailure = ("cert.rotation", "T9103W")
    /// `reverse_tunnel.rejected`: the proxy refused an agent's reverse tunnel (a certificate of
    /// another role, cluster or host, a failed handshake, a locked or unknown node).
    public static let reverseTunnelRejected = ("reverse_tunnel.rejected", "T9400W")
    /// `trusted_cluster.create`: a leaf established trust with a root (on both sides: the root
    /// records the leaf it admitted, the leaf the root it now trusts).
    public static let trustedClusterCreate = ("trusted_cluster.create", "T7000I")
    /// `trusted_cluster.create` refused: a bad, spent, expired or wrong-type token, or a root whose
    /// answer the token does not vouch for.
    public static let trustedClusterCreateFailure = ("trusted_cluster.create", "T7000W")
    /// `trusted_cluster.delete`: a trust was removed (`tctl rm tc/NAME` on the leaf, `tctl rm rc/NAME` on the root).
    public static let trustedClusterDelete = ("trusted_cluster.delete", "T7001I")
    /// `trusted_cluster.update`: a trust was enabled or disabled.
    public static let trustedClusterUpdate = ("trusted_cluster.update", "T7003I")
    /// `trusted_cluster.user.denied`: a root cluster's user was refused on this leaf (a certificate
    /// the root's user CA did not sign, roles the role map maps to nothing, a disabled trust, ...).
    public static let trustedClusterUserDenied = ("trusted_cluster.user.denied", "T7010W")
    /// `trusted_cluster.authorities.update`: this leaf took the root's new CAs (a rotation on the
    /// root), as the root's proxy sent them on the tunnel.
    public static let trustedClusterAuthoritiesUpdate = ("trusted_cluster.authorities.update", "T7011I")
    /// `trusted_cluster.authorities.update` refused: CAs that are not the root's, or no such trust.
    public static let trustedClusterAuthoritiesUpdateFailure = ("trusted_cluster.authorities.update", "T7011W")
}
