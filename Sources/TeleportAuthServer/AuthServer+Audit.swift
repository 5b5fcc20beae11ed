import Crypto
import Logging
public import Foundation
public import TeleportAPI
import TeleportBackend
import TeleportCrypto
public import TeleportEvents
import TeleportServices

extension AuthServer {
    /// The largest event stored whole; larger ones have their long strings cut and `truncated` set.
    static let maxEventBytes = 64 * 1024
    /// The longest string field kept in an event that was too large.
    static let maxTruncatedField = 1024

    /// Stores events a node or proxy sent. The caller's own host ID becomes `server_id` (a host
    /// speaks only for itself); the rest is checked for form and size. A node's session events
    /// (`fromNode`) are also what its recording uploads are checked against.
    public func receiveEvents(_ events: [AuditEvent], fromHost hostID: String?, fromNode: Bool = false) async throws {
        for var event in events {
            guard !event.event.isEmpty, event.event.count <= 64, event.event.allSatisfy({ $0.isLetter || $0 == "." || $0 == "_" }),
                event.code.count <= 16, event.code.allSatisfy({ $0.isLetter || $0.isNumber })
            else {
                throw TeleportError.badParameter("an audit event needs an event name (letters, dots) and a code such as T2000I")
            }
            if let hostID { event.fields["server_id"] = .string(hostID) }
            // Encoded to measure only when a bound on its size could pass the limit (the usual
            // event is far below it, and is encoded once, by the log).
            if Self.sizeBound(event) > Self.maxEventBytes, try event.jsonLine().count > Self.maxEventBytes { event = Self.truncated(event) }
            do {
                try await audit.emit(event)
                settings.metrics?.increment(.auditEventsWritten)
                // Session events are what recording uploads are checked against.
                if fromNode, let hostID { await trackSession(event, fromHost: hostID) }
            } catch {
                if settings.auditFailure == "continue" {
                    AuditMetrics.countDropped()
                    logger.error("ALERT: an audit event from a host was dropped: \(error) (audit_failure: continue)")
                    continue
                }
                throw TeleportError(
                    .auditUnavailable,
                    "the auth service cannot write its audit log (\((error as? TeleportError)?.message ?? "\(error)")); free space or fix the audit_events_uri storage")
            }
        }
    }

    /// At least the length of `event`'s JSON line: every string as if each byte were escaped
    /// (`\u00XX`, 6 bytes), every number 32 bytes, and the punctuation around each value.
    static func sizeBound(_ event: AuditEvent) -> Int {
        func bound(_ value: JSONValue) -> Int {
            switch value {
            case .string(let text): return 2 + 6 * text.utf8.count
            case .int, .double, .bool, .null: return 32
            case .array(let items): return 2 + items.reduce(0) { $0 + 1 + bound($1) }
            case .object(let object): return 2 + object.reduce(0) { $0 + 4 + 6 * $1.key.utf8.count + bound($1.value) }
            }
        }
        // event, code, uid, time, prev_hash and hash, with their keys.
        let common = 6 * (event.event.utf8.count + event.code.utf8.count + event.uid.utf8.count) + 400
        return common + bound(.object(event.fields))
    }

    /// `event` with every long string field cut, marked `truncated`.
    static func truncated(_ event: AuditEvent) -> AuditEvent {
        var cut = event
        func shorten(_ value: JSONValue) -> JSONValue {
            switch value {
            case .string(let text) where text.utf8.count > maxTruncatedField:
                return .string(String(decoding: Array(text.utf8.prefix(maxTruncatedField)), as: UTF8.self) + "…")
            case .array(let items): return .array(Array(items.prefix(100)).map(shorten))
            case .object(let object): return .object(object.mapValues(shorten))
            default: return value
            }
        }
        cut.fields = cut.fields.mapValues(shorten)
        cut.fields["truncated"] = true
        return cut
    }

    /// Events between `from` and `to` of the given types (all when empty), `limit` from `startKey` on.
    public func searchEvents(
        from: Date, to: Date, types: Set<String>, limit: Int, startKey: Int, user: String? = nil, sessionID: String? = nil
    ) async throws -> AuthAPI.EventsPage {
        if let searcher = AuditChain.chainedLog(of: audit) as? any AuditSearcher {
            let (events, more) = try await searcher.search(
                from: from, to: to, types: types, user: user, sessionID: sessionID, limit: max(limit, 1), offset: max(startKey, 0))
            let page = try events.map { try ResourceCodec.jsonDecoder().decode([String: JSONValue].self, from: $0.jsonLine()) }
            return AuthAPI.EventsPage(events: page, nextKey: more ? String(max(startKey, 0) + events.count) : nil)
        }
        guard let reader = audit as? any AuditReader else {
            throw TeleportError.badParameter("the audit log of this cluster cannot be searched: configure a file:// audit_events_uri")
        }
        let all = try await reader.events(from: from, to: to).filter { event in
            (types.isEmpty || types.contains(event.event))
                && (user.map { event.fields["user"] == .string($0) } ?? true)
                && (sessionID.map { event.fields["sid"] == .string($0) } ?? true)
        }
        let start = min(max(startKey, 0), all.count)
        let end = min(start + max(limit, 1), all.count)
        let page = try all[start..<end].map { try ResourceCodec.jsonDecoder().decode([String: JSONValue].self, from: $0.jsonLine()) }
        return AuthAPI.EventsPage(events: page, nextKey: end < all.count ? String(end) : nil)
    }
}

extension AuthServer {
    static let checkpointPrefix = Keys.key("audit", "checkpoints") + "/"

    /// Signs the audit log's chain head with the host CA when it moved since the last checkpoint,
    /// and stores the checkpoint (one per day file, or per auth server's chain in a shared
    /// `postgresql://` log; the newest wins) in the backend.
    public func signAuditCheckpoint() async throws {
        guard let log = AuditChain.chainedLog(of: audit), let head = try await log.chainHead() else { return }
        let key = Self.checkpointPrefix + head.file
        if let stored = try? await stores.backend.get(key),
            let previous = try? ResourceCodec.jsonDecoder().decode(AuditChain.Checkpoint.self, from: stored.value), previous.head == head
        {
            return
        }
        let hostCA = try await certAuthority(.host)
        guard let pem = hostCA.spec.activeKeys.ssh.first?.privateKey, case .ed25519(let caKey) = try OpenSSHPrivateKey(pemRepresentation: pem).key
        else { throw TeleportError.internalError("the host CA has no Ed25519 signing key") }
        var checkpoint = AuditChain.Checkpoint(head: head, time: clock.now(), signature: "")
        checkpoint.signature = try caKey.signature(for: checkpoint.message).base64EncodedString()
        try await stores.backend.put(Item(key: key, value: try ResourceCodec.json(checkpoint)))
    }

    /// Checks the audit log's hash chain and its signed checkpoints between two days (all when nil).
    public func verifyAudit(from: Date?, to: Date?) async throws -> AuditChain.Report {
        guard let log = AuditChain.chainedLog(of: audit) else {
            throw TeleportError.badParameter("this cluster has no file:// or postgresql:// audit log to verify")
        }
        let hostCA = try await certAuthority(.host)
        // Keys a rotation retired still verify the checkpoints they signed before it.
        let caKeys = (hostCA.trustedKeys.ssh.map(\.publicKey) + (hostCA.spec.retiredSSHPublicKeys ?? []))
            .compactMap { try? SSHPublicKey(authorizedKeyLine: $0) }
        var checkpoints: [AuditChain.Checkpoint] = []
        for item in try await stores.backend.getRange(prefix: Self.checkpointPrefix) {
            guard let checkpoint = try? ResourceCodec.jsonDecoder().decode(AuditChain.Checkpoint.self, from: item.value),
                let signature = Data(base64Encoded: checkpoint.signature),
                caKeys.contains(where: { key in
                    if case .ed25519(let publicKey) = key { return publicKey.isValidSignature(signature, for: checkpoint.message) }
                    return false
                })
            else {
                return AuditChain.Report(
                    ok: false, files: 0, events: 0, checkpoints: 0, problem: "the checkpoint \(item.key) is not signed by this cluster's host CA")
            }
            checkpoints.append(checkpoint)
        }
        return try await log.verifyChain(from: from, to: to, checkpoints: checkpoints)
    }
}
