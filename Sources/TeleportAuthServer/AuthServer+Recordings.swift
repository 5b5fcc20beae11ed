public import Foundation
public import TeleportAPI
import Logging
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

    /// Where recordings are stored: S3 (`audit_sessions_uri: s3://`) or ``sessionsDirectory``.
    var recordingStorage: any RecordingStorage {
        settings.recordingStorage ?? (DirectoryRecordingStorage(directory: sessionsDirectory) as any RecordingStorage)
    }

    static func checkSessionID(_ sid: String) throws {
        guard SessionRecording.validSessionID(sid) else {
            throw TeleportError.badParameter("\(sid.prefix(64).debugDescription) is not a session id (a lower-case UUID)")
        }
    }

    static let trackedPrefix = Keys.key("sessions", "tracked") + "/"
    static let claimPrefix = Keys.key("recordingclaims") + "/"
    /// How long a tracked session waits for its recording.
    static let trackedTTL: TimeInterval = 30 * 86400

    /// An interactive session as its own audit events describe it: which host ran it, whose it
    /// is, and who took part. Uploads are checked against it and readers decided from it.
    struct TrackedSession: Codable, Sendable {
        var sid: String
        var serverID: String
        var user: String
        var login: String
        var participants: [String]

        enum CodingKeys: String, CodingKey {
            case sid, user, login, participants
            case serverID = "server_id"
        }
    }

    func trackedSession(_ sid: String) async -> TrackedSession? {
        guard let item = try? await stores.backend.get(Self.trackedPrefix + sid) else { return nil }
        return try? ResourceCodec.jsonDecoder().decode(TrackedSession.self, from: item.value)
    }

    /// Follows a host's `session.start`, `session.join` and `session.end` events of interactive
    /// sessions, and a database service's successful `db.session.start` (already stored in the
    /// audit log, with the host's own `server_id`). The first start
    /// of a session id wins; later events count only from the host that started it.
    func trackSession(_ event: AuditEvent, fromHost hostID: String) async {
        guard case .string(let sid)? = event.fields["sid"], SessionRecording.validSessionID(sid) else { return }
        func text(_ key: String) -> String? { if case .string(let value)? = event.fields[key] { value } else { nil } }
        let key = Self.trackedPrefix + sid
        let expires = clock.now().addingTimeInterval(Self.trackedTTL)
        switch event.event {
        case AuditEventType.sessionStart.0:
            guard event.fields["interactive"] == .bool(true), let user = text("user") else { return }
            let tracked = TrackedSession(sid: sid, serverID: hostID, user: user, login: text("login") ?? "", participants: [user])
            guard let value = try? ResourceCodec.json(tracked) else { return }
            _ = try? await stores.backend.create(Item(key: key, value: value, expires: expires))
        case AuditEventType.dbSessionStart.0:
            // A database session (a `Db` host's successful start): its login is the database user.
            guard event.code == AuditEventType.dbSessionStart.1, let user = text("user") else { return }
            let tracked = TrackedSession(sid: sid, serverID: hostID, user: user, login: text("db_user") ?? "", participants: [user])
            guard let value = try? ResourceCodec.json(tracked) else { return }
            _ = try? await stores.backend.create(Item(key: key, value: value, expires: expires))
        case AuditEventType.sessionJoin.0, AuditEventType.sessionEnd.0:
            guard var tracked = await trackedSession(sid), tracked.serverID == hostID else { return }
            var names = text("user").map { [$0] } ?? []
            if event.event == AuditEventType.sessionEnd.0, case .array(let listed)? = event.fields["participants"] {
                names = listed.compactMap { if case .string(let name) = $0 { name } else { nil } }
            }
            let added = names.filter { !tracked.participants.contains($0) }
            guard !added.isEmpty else { return }
            tracked.participants += added
            guard let value = try? ResourceCodec.json(tracked) else { return }
            _ = try? await stores.backend.put(Item(key: key, value: value, expires: expires))
        default: return
        }
    }

    /// Refuses an upload: audited as `session.upload` failure, then thrown.
    func refuseUpload(_ sid: String, hostID: String?, _ error: TeleportError) async throws -> Never {
        try? await emit(
            AuditEventType.sessionUploadFailure,
            fields: ["sid": .string(sid), "error": .string(error.message), "server_id": .string(hostID ?? ""), "success": false])
        logger.warning("refused a session upload", metadata: ["tp.sid": "\(sid)", "tp.error": "\(error.message)"])
        throw error
    }

    /// Checks an upload against the session's own audit trail: a host uploads only sessions it
    /// ran (its `session.start` reached the audit log), and the header must agree with that start.
    func checkUpload(_ header: SessionRecording.Header, sid: String, hostID: String) async throws -> TrackedSession {
        guard header.serverID == hostID else {
            try await refuseUpload(
                sid, hostID: hostID,
                .accessDenied("the recording of session \(sid) names server \(header.serverID), but host \(hostID) uploaded it: a host uploads only its own sessions"))
        }
        guard let tracked = await trackedSession(sid) else {
            // The start event may still be on its way (the host's audit queue after an outage): retried.
            try await refuseUpload(
                sid, hostID: hostID,
                .notFound("no session.start of session \(sid) from host \(hostID) is in the audit log (yet); the upload is retried"))
        }
        guard tracked.serverID == hostID else {
            try await refuseUpload(sid, hostID: hostID, .accessDenied("session \(sid) ran on host \(tracked.serverID), not on \(hostID)"))
        }
        guard tracked.user == header.user, tracked.login == header.login else {
            try await refuseUpload(
                sid, hostID: hostID,
                .accessDenied(
                    "the recording of session \(sid) names \(header.user)@\(header.login), but the session's start event names \(tracked.user)@\(tracked.login)"))
        }
        return tracked
    }

    /// Stores a node's upload: `<sid>.events.gz` (the recording as sent) and `<sid>.chunks.gz` (the
    /// raw output, so `zcat` shows the session), and indexes it. A corrupt or truncated upload is
    /// kept aside under `corrupt/`, reported, and not served.
    ///
    /// A host uploads only recordings of sessions it ran (``checkUpload(_:sid:hostID:)``); a stored
    /// recording is never replaced: the same bytes again (a retry whose answer was lost) are
    /// accepted as already stored, anything else is refused and audited.
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
        let header = parsed.header
        let storage = recordingStorage
        let tracked = try await hostID.asyncMap { try await checkUpload(header, sid: sid, hostID: $0) }
        do {
            try await stores.backend.create(Item(key: Self.claimPrefix + sid, value: Data((hostID ?? "admin").utf8)))
        } catch let error as TeleportError where error.code == .alreadyExists {
            // (A read that fails is thrown, so the host retries: only a different recording is refused.)
            if let stored = try await storage.read("\(sid).events.gz"), (try? SessionRecording.decompress(stored)) == (try? SessionRecording.decompress(gzip)) {
                return
            }
            try await refuseUpload(
                sid, hostID: hostID,
                .alreadyExists("a recording of session \(sid) is already stored; a stored recording is never replaced"))
        }
        do {
            try await storage.write(gzip, name: "\(sid).events.gz")
            try await storage.write(try SessionRecording.compress(parsed.output), name: "\(sid).chunks.gz")
            // Whose recording it is comes from the session's start event, not from the header.
            let info = AuthAPI.RecordingInfo(
                sid: sid, user: tracked?.user ?? header.user, login: tracked?.login ?? header.login, serverID: tracked?.serverID ?? header.serverID,
                serverHostname: header.serverHostname, start: header.start, durationMs: parsed.durationMs, complete: parsed.complete)
            try await stores.backend.put(Item(key: Self.recordingPrefix + sid, value: try ResourceCodec.json(info)))
            if let tracked {
                // Kept as long as the recording: its participants may read it.
                try await stores.backend.put(Item(key: Self.trackedPrefix + sid, value: try ResourceCodec.json(tracked)))
            }
        } catch {
            try? await stores.backend.delete(Self.claimPrefix + sid)
            throw error
        }
        try await emit(
            AuditEventType.sessionUpload,
            fields: [
                "sid": .string(sid), "user": .string(header.user), "login": .string(header.login), "server_id": .string(header.serverID),
                "complete": .bool(parsed.complete), "url": .string("sessions/default/\(sid).events.gz"),
            ])
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
            .asyncFilter { info in
                if all || info.user == user { return true }
                return await self.readers(of: info).contains(user ?? "")
            }
            .sorted { $0.start > $1.start }
    }

    /// Who took part in a recorded session, from its own audit events (the owner at least).
    func readers(of info: AuthAPI.RecordingInfo) async -> [String] {
        (await trackedSession(info.sid))?.participants ?? [info.user]
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
        var participant = info.user == user
        if !participant { participant = await readers(of: info).contains(user ?? "") }
        let allowed = participant || user == nil ? true : await readsAllRecordings(user: user, roles: roles)
        guard allowed else {
            try await emit(
                AuditEventType.sessionRecordingAccessFailure,
                fields: ["sid": .string(sid), "user": .string(reader), "success": false, "error": "not a participant"])
            throw TeleportError.accessDenied(
                "\(reader) may not read the recording of session \(sid): only its participants and roles that allow read on session may")
        }
        guard let data = try await recordingStorage.read("\(sid).events.gz") else {
            throw TeleportError.notFound("the recording of session \(sid) is missing")
        }
        let lines = try SessionRecording.decompress(data)
        try await emit(AuditEventType.sessionRecordingAccess, fields: ["sid": .string(sid), "user": .string(reader), "success": true])
        return lines
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}

extension Array {
    func asyncFilter(_ isIncluded: (Element) async -> Bool) async -> [Element] {
        var kept: [Element] = []
        for element in self where await isIncluded(element) { kept.append(element) }
        return kept
    }
}
