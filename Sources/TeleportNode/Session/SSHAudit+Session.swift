public import TeleportRecording
public import Foundation
import TeleportAPI
import TeleportEvents
public import TeleportSSH

// The session events of ``SSHAudit``: they name the node's session types, so they live with the
// session code in the node module (TeleportSSH, which the proxy and the client core share, keeps
// authentication, rejection and port-forwarding events).
extension SSHAudit {
    /// The fields every session event carries.
    func sessionFields(_ event: SessionEvent) -> [String: JSONValue] {
        [
            "sid": .string(event.sessionID), "user": .string(event.user.username), "login": .string(event.user.login),
            "addr.remote": Self.address(event.remoteAddress), "addr.local": Self.address(event.localAddress),
            "interactive": .bool(event.terminal),
        ].merging(event.user.clusterAuditFields) { $1 }
    }

    /// `session.start` (and `sftp` for the sftp subsystem).
    public func started(_ event: SessionEvent) {
        metrics?.increment(.sessions, ["service": service])
        metrics?.increment(.sessionsActive, ["service": service])
        var fields = sessionFields(event)
        if let size = event.terminalSize { fields["size"] = .string(size) }
        add(AuditEventType.sessionStart, fields)
        if case .subsystem("sftp") = event.kind {
            add(AuditEventType.sftp, sessionFields(event).merging(["action": "open"]) { $1 })
        }
    }

    /// `resize`.
    public func resized(_ event: SessionEvent, columns: Int, rows: Int) {
        add(AuditEventType.resize, sessionFields(event).merging(["size": .string("\(columns):\(rows)")]) { $1 })
    }

    /// `exec` (and `scp` for scp's server side), then `session.end`.
    public func ended(_ event: SessionEvent, exit: ProcessExit, started: Date, participants: [String]) {
        metrics?.decrement(.sessionsActive, ["service": service])
        let now = clock.now()
        if case .exec(let command) = event.kind {
            var fields = sessionFields(event)
            fields["command"] = .string(command)
            switch exit {
            case .status(let code):
                fields["exitCode"] = .int(code)
                fields["exitError"] = .string(code == 0 ? "" : "exit status \(code)")
            case .signal(let name, _):
                fields["exitCode"] = .int(-1)
                fields["exitError"] = .string("signal \(name)")
            }
            add(exit == .status(0) ? AuditEventType.exec : AuditEventType.execFailure, fields)
            if let scp = Self.scpTransfer(command) {
                var scpFields = sessionFields(event)
                scpFields["path"] = .string(scp.path)
                scpFields["action"] = .string(scp.upload ? "upload" : "download")
                scpFields["command"] = .string(command)
                add(scp.upload ? AuditEventType.scpUpload : AuditEventType.scpDownload, scpFields)
            }
        }
        var fields = sessionFields(event)
        fields["participants"] = .array(participants.map { .string($0) })
        fields["session_start"] = .string(RFC3339.format(started))
        fields["session_stop"] = .string(RFC3339.format(now))
        fields["duration_ms"] = .int(Int((now.timeIntervalSince(started) * 1000).rounded()))
        add(AuditEventType.sessionEnd, fields)
    }

    /// The path and direction of scp's server side (`scp -t PATH` receives, `scp -f PATH` sends).
    static func scpTransfer(_ command: String) -> (path: String, upload: Bool)? {
        let words = command.split(separator: " ").map(String.init)
        guard let first = words.first, first == "scp" || first.hasSuffix("/scp") else { return nil }
        var upload: Bool?
        var path: String?
        for word in words.dropFirst() {
            if word.hasPrefix("-") {
                if word.contains("t") { upload = true }
                if word.contains("f") { upload = false }
            } else {
                path = word
            }
        }
        guard let upload, let path else { return nil }
        return (path, upload)
    }

    /// `session.join` / `session.leave`.
    public func party(_ session: LiveSession, _ user: SSHAuthenticatedUser, joined: Bool) {
        add(
            joined ? AuditEventType.sessionJoin : AuditEventType.sessionLeave,
            [
                "sid": .string(session.sessionID), "user": .string(user.username), "login": .string(user.login),
                "owner": .string(session.owner.username),
            ])
    }
}
