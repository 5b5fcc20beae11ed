import Foundation
import Logging
import NIOCore
import TeleportAPI
import TeleportAccess
import TeleportAuthClient
import TeleportCrypto
import TeleportWire

/// Joining a live interactive Kubernetes session (`tsh join SID`, `tsh kube join SID`): the
/// joiner's `tsh` reaches this service through the proxy like `kubectl`, with a certificate that
/// routes to the session's cluster, and upgrades `GET /teleport/v1/sessions/SID/join?mode=MODE`
/// to a WebSocket speaking `v5.channel.k8s.io`. It gets the session's output from then on (and
/// its status at the end); in `peer` mode its standard input goes to the pod as well.
extension KubeSessions {
    /// The path prefix of a join (never a Kubernetes API path).
    static let joinPrefix = "/teleport/v1/sessions/"

    /// Registers a session that can be joined, lists it cluster-wide for `tsh sessions ls`.
    func startLive(_ live: KubeLiveSession, audited: KubeAudit.Connection, info: KubeRequestInfo) {
        service.live.add(live)
        let command = info.parameters("command").joined(separator: " ")
        let active = AuthAPI.ActiveSession(
            sid: live.sid, user: audited.user, login: audited.kubeUser, serverID: configuration.hostUUID,
            serverHostname: "\(live.cluster)/\(live.namespace)/\(live.pod)", created: Date(), command: command.isEmpty ? nil : command)
        var reported = active
        reported.kind = "kube"
        reported.kubeCluster = live.cluster
        let auth = service.auth
        let logger = service.logger
        Task {
            do { try await auth.reportActiveSession(reported) } catch { logger.debug("the live Kubernetes session was not listed: \(error)") }
        }
    }

    /// The session ended: its joiners get its status and are let go; it is no longer listed.
    func endLive(_ live: KubeLiveSession, status: [UInt8]?) {
        service.live.remove(live.sid)
        live.end(status: status)
        let auth = service.auth
        let sid = live.sid
        Task { try? await auth.endActiveSession(sid) }
    }

    /// Serves a join request; false: the connection closes after it.
    func serveJoin(
        _ head: HTTP1Head, reader: ByteReader, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, accepted: Accepted, audited: KubeAudit.Connection
    ) async throws -> Bool {
        let info = KubeRequestInfo(method: head.first, target: head.second)
        func refuse(_ code: Int, _ message: String) async throws -> Bool {
            service.audit.request(audited, info: info, method: head.first, status: code, error: message)
            service.logger.info("Kubernetes session join refused: \(message)", metadata: ["tp.user": "\(audited.user)"])
            try await Self.respond(outbound, code: code, message: message, close: true)
            return false
        }
        let rest = info.path.dropFirst(Self.joinPrefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard rest.count == 2, rest[1] == "join" else {
            return try await refuse(404, "no such path: a join is GET \(Self.joinPrefix)SID/join?mode=observer|peer")
        }
        let sid = String(rest[0])
        guard head.first == "GET", head.value("upgrade")?.lowercased() == "websocket", let key = head.value("sec-websocket-key"), !key.isEmpty else {
            return try await refuse(400, "a join is a WebSocket upgrade (GET with Upgrade: websocket and Sec-WebSocket-Key)")
        }
        let mode = info.parameter("mode") ?? "observer"
        guard mode == "observer" || mode == "peer" else { return try await refuse(400, "mode=\(mode.prefix(32)): expected observer or peer") }
        guard let live = service.live.session(sid), live.cluster == accepted.cluster.name else {
            return try await refuse(
                404, "no live session \(sid.prefix(64)) on Kubernetes cluster \(accepted.cluster.name) (tsh sessions ls lists them)")
        }
        guard accepted.identity.username == live.owner || accepted.checker.checkRule(kind: "session", verb: "join").allowed else {
            return try await refuse(403, "joining \(live.owner)'s session \(sid) needs a role that allows join on session")
        }
        let offered = head.values("sec-websocket-protocol").flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        let proto = offered.contains("v5.channel.k8s.io") || offered.isEmpty ? "v5.channel.k8s.io" : offered[0]
        guard proto == "v5.channel.k8s.io" else { return try await refuse(400, "a join speaks v5.channel.k8s.io, not \(proto.prefix(64))") }
        let answer =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: \(WebSocketAccept.value(for: key))\r\nSec-WebSocket-Protocol: \(proto)\r\n\r\n"
        let (id, outbox) = live.join(user: accepted.identity.username)
        service.audit.party(audited, sid: sid, mode: mode, joined: true)
        service.logger.info("\(audited.user) joined \(live.owner)'s Kubernetes session \(sid) as \(mode)")
        defer {
            live.leave(id)
            service.audit.party(audited, sid: sid, mode: mode, joined: false)
        }
        try await outbound.write(ByteBuffer(string: answer))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for await frame in outbox { try await outbound.write(ByteBuffer(bytes: frame)) }
                    try await outbound.write(ByteBuffer(bytes: WebSocketFrameEncoder.frame(opcode: WebSocketFrameEncoder.close, payload: [0x03, 0xE8])))
                } catch {}
            }
            group.addTask {
                var reader = reader
                var scanner = WebSocketFrameScanner(payloadLimit: Self.maxClientFrame)
                do {
                    reading: while let chunk = try await reader.next(max: 64 * 1024) {
                        for frame in try scanner.feed(chunk.readableBytesView) {
                            switch frame.opcode {
                            case WebSocketFrameEncoder.close: break reading
                            case WebSocketFrameEncoder.binary where mode == "peer" && frame.payload.first == 0 && frame.length == frame.payload.count:
                                // A peer's keystrokes go to the pod as the session's own client frames.
                                try await live.inject(WebSocketFrameEncoder.frame(opcode: 2, payload: frame.payload, mask: WebSocketFrameEncoder.newMask()))
                            default: continue
                            }
                        }
                    }
                } catch {}
            }
            await group.next()
            group.cancelAll()
        }
        return false
    }
}
