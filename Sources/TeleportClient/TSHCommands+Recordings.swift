import Foundation
import Glibc
import NIOCore
public import TeleportAPI
import TeleportCrypto
import TeleportEvents
import TeleportSSHClient

/// How `tsh play` shows a recording.
public enum PlayFormat: String, Sendable {
    /// Replays the output with its original timing (the default).
    case pty
    /// The text the terminal showed, at once, without control sequences (`tsh play --format=text SID > session.txt`).
    case text
    /// The recording's frames as JSON lines.
    case json
}

extension WebClient {
    /// The recordings the user may read.
    func recordings() async throws -> [AuthAPI.RecordingInfo] {
        try decode([AuthAPI.RecordingInfo].self, try await transport.get("/webapi/sessions/recordings"), what: "recordings")
    }

    /// One recording's JSON lines.
    func recording(_ sid: String) async throws -> Data {
        let reply = try await transport.get("/webapi/sessions/\(Self.escape(sid))/recording")
        guard (200..<300).contains(reply.status) else {
            _ = try decode(JSONValue.self, reply, what: "recording")
            throw TeleportError.connectionProblem("the proxy answered HTTP \(reply.status)")
        }
        return reply.body
    }
}

extension TSHCommands {
    /// `tsh recordings ls`: completed sessions the user may replay.
    public static func recordings(
        _ options: ClientOptions, json: Bool, from: String? = nil, to: String? = nil, cluster: String? = nil, context: ClientContext
    ) async throws -> Outcome {
        func time(_ text: String, _ flag: String) throws -> Date {
            if let date = RFC3339.parse(text) ?? RFC3339.parse(text + "T00:00:00Z") { return date }
            if let seconds = GoDuration.parse(text) { return context.clock.now().addingTimeInterval(-seconds) }
            throw TeleportError.badParameter("\(flag)=\(text) is not a time: use 2026-11-21, an RFC 3339 time or a duration back such as 2h")
        }
        let start = try from.map { try time($0, "--from") }
        let end = try to.map { try time($0, "--to") }
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        // A leaf cluster's recordings: listed by the leaf for the user's mapped roles (trusted clusters).
        let all = try await checkCluster(cluster, profileCluster: session.cluster, web: web)
            ? try await web.leafRecordings(cluster: cluster ?? "", certificate: session.key.sshCertificate) : try await web.recordings()
        let list = all.filter { info in
            (start.map { info.start >= $0 } ?? true) && (end.map { info.start <= $0 } ?? true)
        }
        if json { return Outcome(output: String(decoding: try ResourceCodec.json(list), as: UTF8.self) + "\n") }
        let rows = list.map { info in
            [
                info.sid, info.user, info.login, info.serverHostname, RFC3339.format(info.start),
                Self.duration(info.durationMs) + (info.complete ? "" : " (partial)"),
            ]
        }
        return Outcome(output: Table.render(headers: ["ID", "User", "Login", "Node", "Started", "Duration"], rows: rows))
    }

    static func duration(_ ms: Int) -> String {
        let seconds = ms / 1000
        return seconds >= 60 ? "\(seconds / 60)m\(seconds % 60)s" : "\(seconds)s"
    }

    /// `tsh play SID`: replays a recorded session on this terminal with its timing (`speed` times
    /// faster; pauses longer than `maxIdle` seconds shortened to it when given), or prints it.
    public static func play(
        _ options: ClientOptions, sessionID: String, format: PlayFormat, speed: Double, maxIdle: Double?, cluster: String? = nil,
        context: ClientContext
    ) async throws {
        guard SessionRecording.validSessionID(sessionID) else {
            throw TeleportError.badParameter("\(sessionID.prefix(64).debugDescription) is not a session id: tsh recordings ls lists them")
        }
        guard speed > 0, speed <= 1000 else { throw TeleportError.badParameter("--speed must be between 0 and 1000") }
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        // A leaf cluster's recording: the leaf decides with the user's mapped roles (trusted clusters).
        let leaf = try await checkCluster(cluster, profileCluster: session.cluster, web: web)
        let data = leaf
            ? try await web.leafRecording(cluster: cluster ?? "", certificate: session.key.sshCertificate, sessionID: sessionID)
            : try await web.recording(sessionID)
        if format == .json {
            FileDescriptorWriter.writeAll(1, .init(bytes: data))
            return
        }
        let recording = try SessionRecording.parse(data)
        if format == .text {
            // What the terminal showed, not the escape sequences that drew it.
            FileDescriptorWriter.writeAll(1, .init(string: TerminalScreen.render(Array(recording.output))))
            return
        }
        // The recorded bytes are a terminal's output already (\r\n included): a raw terminal shows
        // them exactly as the user saw them.
        let terminal = LocalTerminal()
        if isatty(1) != 0 { terminal.makeRaw() }
        defer { terminal.restore() }
        var previous = 0
        for frame in recording.frames {
            var wait = Double(frame.ms - previous) / 1000 / speed
            if let maxIdle { wait = min(wait, maxIdle) }
            if wait > 0 { try await Task.sleep(for: .milliseconds(Int(wait * 1000))) }
            previous = frame.ms
            if let output = frame.output { FileDescriptorWriter.writeAll(1, .init(bytes: output)) }
        }
    }
}

extension WebClient {
    /// The interactive sessions running now that the user may see.
    func activeSessions() async throws -> [AuthAPI.ActiveSession] {
        try decode([AuthAPI.ActiveSession].self, try await transport.get("/webapi/sessions/active"), what: "active sessions")
    }
}

extension TSHCommands {
    /// `tsh sessions ls`: sessions with a terminal running now (shells, and commands run with
    /// `-t`, with their command).
    public static func activeSessions(_ options: ClientOptions, json: Bool, cluster: String? = nil, context: ClientContext) async throws -> Outcome {
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        // A leaf cluster's sessions: listed by the leaf for the user's mapped roles (trusted clusters).
        let list = try await checkCluster(cluster, profileCluster: session.cluster, web: web)
            ? try await web.leafSessions(cluster: cluster ?? "", certificate: session.key.sshCertificate) : try await web.activeSessions()
        if json { return Outcome(output: String(decoding: try ResourceCodec.json(list), as: UTF8.self) + "\n") }
        let rows = list.map { [$0.sid, $0.user, $0.login, $0.serverHostname, RFC3339.format($0.created), $0.command ?? "(shell)"] }
        return Outcome(output: Table.render(headers: ["ID", "User", "Login", "Node", "Started", "Command"], rows: rows))
    }

    /// `tsh join SID [--mode observer|peer]`: attaches this terminal to a live session (SSH, or
    /// Kubernetes through the session's Kubernetes service; `tsh kube join` takes only those).
    public static func join(
        _ options: ClientOptions, sessionID: String, mode: String, cluster: String? = nil, kubeOnly: Bool = false, context: ClientContext
    ) async throws -> Int32 {
        guard SessionRecording.validSessionID(sessionID) else {
            throw TeleportError.badParameter("\(sessionID.prefix(64).debugDescription) is not a session id: tsh sessions ls lists them")
        }
        guard mode == "observer" || mode == "peer" else { throw TeleportError.badParameter("--mode=\(mode): expected observer or peer") }
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        // A leaf cluster's session: listed by the leaf for the user's mapped roles (trusted clusters).
        let leaf = try await checkCluster(cluster, profileCluster: session.cluster, web: web)
        let sessions = leaf
            ? try await web.leafSessions(cluster: cluster ?? "", certificate: session.key.sshCertificate) : try await web.activeSessions()
        guard let live = sessions.first(where: { $0.sid == sessionID }) else {
            throw TeleportError.notFound("no live session \(sessionID) that you may join (tsh sessions ls lists them)")
        }
        if live.isKube {
            guard !leaf else { throw TeleportError.badParameter("joining a leaf cluster's Kubernetes session is not supported yet") }
            return try await kubeJoin(options, live: live, mode: mode, context: context)
        }
        guard !kubeOnly else {
            throw TeleportError.badParameter("session \(sessionID) is an SSH session, not a Kubernetes one: tsh join \(sessionID)")
        }
        // The joiner logs in to the node as one of its own logins.
        guard let login = try session.key.parsedSSHCertificate().validPrincipals.first else {
            throw TeleportError.accessDenied("your certificate lists no logins")
        }
        var ssh = SSHCommandOptions(
            login: login, target: live.serverID, command: [], port: nil, tty: true, localForwards: [], remoteForwards: [], noCommand: false,
            cluster: leaf ? cluster : nil)
        ssh.environment = ["TELEPORT_SESSION": sessionID, "TELEPORT_JOIN_MODE": mode]
        return try await TSHCommands.ssh(options, ssh, context: context)
    }
}
