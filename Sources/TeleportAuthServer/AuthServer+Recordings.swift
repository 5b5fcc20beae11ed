public import Foundation
public import TeleportAPI
import TeleportAccess
import TeleportBackend
import TeleportEvents
import TeleportServices

extension AuthServer {
    static let recordingPrefix = Keys.key("recordings") + "/"
    /// The largest upload accepted (compressed).
    public static let maxRecordingUpload = 256 << 20
    /// Roles whose users may read every recording (until RBAC decides).

    var sessionsDirectory: URL {
        settings.sessionsDirectory ?? URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("teleport-sessions")
    }

    static func checkSessionID(_ sid: String) throws {
        guard SessionRecording.validSessionID(sid) else {
            throw TeleportError.badParameter("\(sid.prefix(64).debugDescription) is not a session id (a lower-case UUID)")
        }
    }

    /// Stores a node's upload: `<sid>.events.gz` (the recording as sent) and `<sid>.chunks.gz` (the
    /// raw output, so `zcat` shows the session), and indexes it. A corrupt or truncated upload is
    /// kept aside under `corrupt/`, reported, and not served.
    public func storeRecording(sessionID sid: String, gzip: Data, fromHost hostID: String?) async throws {
        try Self.checkSessionID(sid)
        let directory = sessionsDirectory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        let parsed: SessionRecording.Parsed
        do {
            parsed = try SessionRecording.parse(try SessionRecording.decompress(gzip))
            guard parsed.header.sid == sid else { throw TeleportError.badParameter("the recording is of session \(parsed.header.sid), not \(sid)") }
        } catch {
            let aside = directory.appendingPathComponent("corrupt")
            try? FileManager.default.createDirectory(at: aside, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
            let path = aside.appendingPathComponent("\(sid)-\(Int(clock.now().timeIntervalSince1970)).gz")
            try? gzip.write(to: path)
            let reason = (error as? TeleportError)?.message ?? "\(error)"
            try? await emit(
                AuditEventType.sessionUploadFailure,
                fields: ["sid": .string(sid), "error": .string(reason), "server_id": .string(hostID ?? ""), "kept": .string(path.path)])
            throw TeleportError.badParameter("the recording of session \(sid) is corrupt or truncated (\(reason)); it was kept aside, not stored")
        }
        try write(gzip, to: directory.appendingPathComponent("\(sid).events.gz"))
        try write(try SessionRecording.compress(parsed.output), to: directory.appendingPathComponent("\(sid).chunks.gz"))
        let header = parsed.header
        let info = AuthAPI.RecordingInfo(
            sid: sid, user: header.user, login: header.login, serverID: header.serverID, serverHostname: header.serverHostname,
            start: header.start, durationMs: parsed.durationMs, complete: parsed.complete)
        try await stores.backend.put(Item(key: Self.recordingPrefix + sid, value: try ResourceCodec.json(info)))
        try await emit(
            AuditEventType.sessionUpload,
            fields: [
                "sid": .string(sid), "user": .string(header.user), "login": .string(header.login), "server_id": .string(header.serverID),
                "complete": .bool(parsed.complete), "url": .string("sessions/default/\(sid).events.gz"),
            ])
    }

    private func write(_ data: Data, to url: URL) throws {
        let temporary = url.appendingPathExtension("tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: data, attributes: [.posixPermissions: 0o640]),
            rename(temporary.path, url.path) == 0
        else { throw TeleportError.connectionProblem("cannot write \(url.path)") }
    }

    /// Whether `user` (nil: the administrator) may read every recording: a role must allow
    /// `read` on `session`. Anyone may read the recordings of their own sessions.
    func readsAllRecordings(user: String?, roles: [String]) async -> Bool {
        guard user != nil else { return true }
        return AccessChecker(roles: await existingRoles(roles), traits: [:]).checkRule(kind: "session", verb: "read").allowed
    }

    /// The recordings `user` may read (all for the administrator), newest first.
    public func recordings(forUser user: String?, roles: [String]) async throws -> [AuthAPI.RecordingInfo] {
        let all = await readsAllRecordings(user: user, roles: roles)
        return try await stores.backend.getRange(prefix: Self.recordingPrefix)
            .compactMap { try? ResourceCodec.jsonDecoder().decode(AuthAPI.RecordingInfo.self, from: $0.value) }
            .filter { all || $0.user == user }
            .sorted { $0.start > $1.start }
    }

    /// A recording's lines, for `user`: allowed for its participant and privileged roles, denied
    /// otherwise; both are audited (`session.recording.access`).
    public func recording(sessionID sid: String, forUser user: String?, roles: [String]) async throws -> Data {
        try Self.checkSessionID(sid)
        let reader = user ?? "admin"
        guard let item = try? await stores.backend.get(Self.recordingPrefix + sid),
            let info = try? ResourceCodec.jsonDecoder().decode(AuthAPI.RecordingInfo.self, from: item.value)
        else {
            throw TeleportError.notFound("no recording of session \(sid)")
        }
        let allowed = info.user == user || user == nil ? true : await readsAllRecordings(user: user, roles: roles)
        guard allowed else {
            try await emit(
                AuditEventType.sessionRecordingAccessFailure,
                fields: ["sid": .string(sid), "user": .string(reader), "success": false, "error": "not a participant"])
            throw TeleportError.accessDenied(
                "\(reader) may not read the recording of session \(sid): only its participants and roles that allow read on session may")
        }
        let url = sessionsDirectory.appendingPathComponent("\(sid).events.gz")
        guard let data = FileManager.default.contents(atPath: url.path) else { throw TeleportError.notFound("the recording of session \(sid) is missing") }
        let lines = try SessionRecording.decompress(data)
        try await emit(AuditEventType.sessionRecordingAccess, fields: ["sid": .string(sid), "user": .string(reader), "success": true])
        return lines
    }
}
