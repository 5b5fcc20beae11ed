import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import TeleportAccess
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import TeleportEvents
import TeleportRecording
import TeleportSSH
import TeleportWire
import X509

/// One proxied kubectl connection at the Kubernetes service: the checks (the peer is a proxy;
/// the user's certificate is current, this cluster's, and routes to a cluster this service
/// serves; the roles allow its labels and grant Kubernetes users or groups), then each request
/// relayed to the API server with the impersonation headers, its response streamed back, and a
/// `kube.request` event per request. An upgraded `exec`/`attach` (WebSocket) is relayed both
/// ways; with a terminal (`tty=true`) it is recorded as a session (`tsh play`).
struct KubeSessions: Sendable {
    typealias Connection = NIOAsyncChannel<ByteBuffer, ByteBuffer>
    typealias Upstream = NIOAsyncChannel<ByteBuffer, ByteBuffer>
    let service: KubeService

    var configuration: KubeService.Configuration { service.configuration }

    /// What an accepted connection knows.
    struct Accepted: Sendable {
        var cluster: KubeCluster
        var identity: X509Identity
        var users: [String]
        var groups: [String]
        var checker: AccessChecker
    }

    /// Thrown at the end of the connection's `executeThenClose` body, so that NIOAsyncChannel
    /// closes it on its error path: its normal path asserts (in debug builds) that `closeFuture`
    /// did not fail, and a reverse tunnel's SSH channel fails it (`tcpShutdown`) when the tunnel
    /// drops or the process stops, which stopped the process.
    struct ConnectionEnded: Error {}

    func serve(_ connection: Connection, handoff: EventLoopFuture<DatabaseHandoff>) async {
        let channel = connection.channel
        var audited = KubeAudit.Connection()
        do {
            try await connection.executeThenClose { inbound, outbound in
                var reader = ByteReader(inbound)
                let accepted: Accepted
                do {
                    accepted = try await accept(channel: channel, handoff: handoff, audited: &audited)
                } catch {
                    let message = (error as? TeleportError)?.message ?? "\(error)"
                    service.logger.info("Kubernetes request refused: \(message)", metadata: ["tp.user": "\(audited.user)"])
                    let head = try? await reader.head().flatMap { try? HTTP1Head.request($0) }
                    let info = head.map { KubeRequestInfo(method: $0.first, target: $0.second) }
                    let code = (error as? TeleportError)?.code == .accessDenied ? 403 : 502
                    service.audit.request(audited, info: info, method: head?.first ?? "", status: code, error: message)
                    try await Self.respond(outbound, code: code, message: message, close: true)
                    throw ConnectionEnded()
                }
                while try await handle(&reader, outbound: outbound, accepted: accepted, audited: &audited) {}
                throw ConnectionEnded()
            }
        } catch is ConnectionEnded {
        } catch {
            service.logger.debug("Kubernetes connection ended: \(error)", metadata: ["tp.kube_cluster": "\(audited.cluster)"])
        }
    }

    /// One request and its response; false when the connection must close after it.
    func handle(
        _ reader: inout ByteReader, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, accepted: Accepted, audited: inout KubeAudit.Connection
    ) async throws -> Bool {
        guard let headBytes = try await reader.head() else { return false }
        let head: HTTP1Head
        let framing: HTTP1Head.Framing
        do {
            head = try HTTP1Head.request(headBytes)
            framing = try head.requestFraming()
        } catch {
            let message = "malformed request: \(error)"
            service.audit.request(audited, info: nil, method: "", status: 400, error: message)
            try await Self.respond(outbound, code: 400, message: message, close: true)
            return false
        }
        let info = KubeRequestInfo(method: head.first, target: head.second)
        let keepAlive = !head.connectionHas("close") && head.third == "HTTP/1.1"
        /// Refuses the request (its body is read and dropped when small, else the connection closes).
        func refuse(_ code: Int, _ message: String) async throws -> Bool {
            service.audit.request(audited, info: info, method: head.first, status: code, error: message)
            service.logger.info("Kubernetes request refused: \(message)", metadata: ["tp.user": "\(audited.user)"])
            var close = !keepAlive
            if case .length(let length) = framing, length > 1 << 20 { close = true }
            if case .chunked = framing { close = true }
            if !close { close = !(try await reader.relayBody(framing) { _ in }) }
            try await Self.respond(outbound, code: code, message: message, close: close)
            return !close
        }
        // tsh join of a live session at this service (never relayed to the API server).
        if info.path.hasPrefix(Self.joinPrefix) {
            return try await serveJoin(head, reader: reader, outbound: outbound, accepted: accepted, audited: audited)
        }
        // The roles decide whom the request goes as; the client's own Impersonate-* must match.
        let impersonated: (user: String, groups: [String])
        switch KubeImpersonation.decide(
            headers: head.headers, teleportUser: accepted.identity.username, users: accepted.users, groups: accepted.groups,
            cluster: accepted.cluster.name)
        {
        case .refuse(let reason): return try await refuse(403, reason)
        case .impersonate(let user, let groups): impersonated = (user, groups)
        }
        audited.kubeUser = impersonated.user
        audited.kubeGroups = impersonated.groups
        // A request naming a pod (get, logs, exec, attach, delete...) must be within kubernetes_resources.
        if info.resource == "pods", !info.name.isEmpty {
            let decision = try accepted.checker.checkKubePod(labels: service.labels, namespace: info.namespace, name: info.name)
            guard decision.allowed else {
                return try await refuse(403, "access to pod \(info.namespace)/\(info.name) denied: " + decision.reasons.joined(separator: "; "))
            }
        }
        let upgrade = head.value("upgrade") != nil
        if upgrade, let problem = KubeImpersonation.upgradeProblem(head, info: info) {
            return try await refuse(400, "malformed upgrade request: \(problem)")
        }
        if case .length(let length) = framing, length > configuration.maxRequestBody {
            service.audit.request(audited, info: info, method: head.first, status: 413, error: "request body of \(length) bytes refused")
            try await Self.respond(
                outbound, code: 413, message: "the request body (\(length) bytes) is larger than \(configuration.maxRequestBody) bytes", close: true)
            return false
        }
        guard service.audit.admits else {
            return try await refuse(503, "the audit log is unavailable (events wait for the auth service): refusing an unaudited request")
        }
        let upstream: Upstream
        do {
            upstream = try await connect(accepted.cluster)
        } catch {
            return try await refuse(
                502,
                "cannot reach the Kubernetes API server of cluster \(accepted.cluster.name) at \(accepted.cluster.server): \((error as? TeleportError)?.message ?? "\(error)")"
            )
        }
        // Lists and watches of pods show only the pods kubernetes_resources allow.
        var filter: KubePodFilter?
        if info.resource == "pods", info.name.isEmpty, info.subresource.isEmpty, ["list", "watch"].contains(info.verb),
            try accepted.checker.kubePodsRestricted(labels: service.labels)
        {
            let checker = accepted.checker
            let labels = service.labels
            filter = KubePodFilter(
                allows: { namespace, name in (try? checker.checkKubePod(labels: labels, namespace: namespace, name: name).allowed) == true },
                namespace: info.namespace)
        }
        var rewritten = Self.upstreamHead(
            head, cluster: accepted.cluster, user: impersonated.user, groups: impersonated.groups, upgrade: upgrade)
        if filter != nil { rewritten = Self.filterableHead(rewritten) }
        let watching = info.verb == "watch"
        let cluster = accepted.cluster
        let snapshot = audited
        var clientReader = reader
        let (status, again, leftover) = try await upstream.executeThenClose { upstreamInbound, upstreamOutbound in
            var upstreamReader = ByteReader(upstreamInbound)
            try await upstreamOutbound.write(ByteBuffer(bytes: rewritten.bytes))
            let maxBody = configuration.maxRequestBody
            var sent = 0
            guard
                try await clientReader.relayBody(framing, to: { chunk in
                    sent += chunk.readableBytes
                    guard sent <= maxBody else { throw HTTP1Error("the request body is larger than \(maxBody) bytes") }
                    try await upstreamOutbound.write(chunk)
                })
            else { return (0, false, clientReader) }
            let responseHead: HTTP1Head
            do {
                guard let bytes = try await upstreamReader.head() else {
                    throw HTTP1Error("it closed the connection without an answer")
                }
                responseHead = try HTTP1Head.response(bytes)
            } catch {
                try await Self.respond(
                    outbound, code: 502,
                    message: "the Kubernetes API server of cluster \(cluster.name) at \(cluster.server) gave no valid answer: \(error)", close: true)
                return (502, false, clientReader)
            }
            if upgrade, responseHead.status == 101 {
                try await outbound.write(ByteBuffer(bytes: responseHead.bytes))
                try await relayUpgrade(
                    client: clientReader, clientOut: outbound, upstream: upstreamReader, upstreamOut: upstreamOutbound, info: info,
                    audited: snapshot, responseHead: responseHead)
                return (101, false, clientReader)
            }
            let responseFraming = try responseHead.responseFraming(requestMethod: head.first)
            if let filter, responseHead.status == 200 {
                let (status, complete) = try await Self.relayFiltered(
                    filter, watching: watching, head: responseHead, framing: responseFraming, upstream: &upstreamReader, outbound: outbound,
                    keepAlive: keepAlive)
                return (status, complete && keepAlive, clientReader)
            }
            try await outbound.write(ByteBuffer(bytes: Self.clientHead(responseHead, closing: responseFraming == .untilClose || !keepAlive).bytes))
            let complete = try await upstreamReader.relayBody(responseFraming) { chunk in try await outbound.write(chunk) }
            return (responseHead.status, complete && responseFraming != .untilClose && keepAlive, clientReader)
        }
        reader = leftover
        if status != 101 {
            guard service.audit.request(audited, info: info, method: head.first, status: status) else { return false }
        }
        return again
    }

    /// The request as the API server gets it: hop-by-hop headers, the client's credentials and
    /// impersonation headers removed; the service's token, the impersonated user and groups,
    /// the API server's Host; one request per connection (`Connection: close`) unless upgraded.
    static func upstreamHead(_ head: HTTP1Head, cluster: KubeCluster, user: String, groups: [String], upgrade: Bool) -> HTTP1Head {
        let listed = Set(head.values("connection").map { $0.lowercased() })
        let dropped: Set<String> = [
            "connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "authorization", "host",
            "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-remote-user", "x-remote-group",
        ]
        var headers = head.headers.filter { header in
            let name = header.name.lowercased()
            if name == "upgrade" { return upgrade }
            if name.hasPrefix("impersonate-") || name.hasPrefix("x-remote-extra-") { return false }
            return !dropped.contains(name) && !(listed.contains(name) && !(upgrade && name == "upgrade"))
        }
        headers.insert(HTTP1Head.Header("Host", cluster.hostHeader), at: 0)
        if let token = cluster.token { headers.append(HTTP1Head.Header("Authorization", "Bearer \(token)")) }
        headers.append(HTTP1Head.Header("Impersonate-User", user))
        for group in groups { headers.append(HTTP1Head.Header("Impersonate-Group", group)) }
        headers.append(HTTP1Head.Header("Connection", upgrade ? "Upgrade" : "close"))
        return HTTP1Head(first: head.first, second: cluster.pathPrefix + head.second, third: "HTTP/1.1", headers: headers)
    }

    /// A request whose answer is to be filtered: JSON (a Table when kubectl asked for one), not
    /// compressed.
    static func filterableHead(_ head: HTTP1Head) -> HTTP1Head {
        var copy = head
        let accept = head.value("accept") ?? ""
        copy.headers.removeAll { ["accept-encoding", "accept"].contains($0.name.lowercased()) }
        copy.headers.append(
            HTTP1Head.Header(
                "Accept", accept.contains("as=Table") ? "application/json;as=Table;v=v1;g=meta.k8s.io,application/json" : "application/json"))
        return copy
    }

    /// Relays a pod list or watch answer with the pods `filter` does not allow removed: a list is
    /// read whole (at most ``KubePodFilter/maxBody``) and sent with its new length; a watch is
    /// filtered event by event and sent chunked. Returns the status sent and whether the answer
    /// ended cleanly.
    static func relayFiltered(
        _ filter: KubePodFilter, watching: Bool, head: HTTP1Head, framing: HTTP1Head.Framing, upstream: inout ByteReader,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, keepAlive: Bool
    ) async throws -> (Int, Bool) {
        var copy = clientHead(head, closing: !keepAlive)
        let encoded = head.value("content-encoding").map { $0.lowercased() != "identity" } ?? false
        copy.headers.removeAll { ["content-length", "transfer-encoding"].contains($0.name.lowercased()) }
        guard !encoded else {
            try await respond(
                outbound, code: 502, message: "the API server compressed a pod list that kubernetes_resources must filter", close: true)
            return (502, false)
        }
        if watching {
            copy.headers.append(HTTP1Head.Header("Transfer-Encoding", "chunked"))
            try await outbound.write(ByteBuffer(bytes: copy.bytes))
            var lines = KubeWatchLines()
            func send(_ line: ArraySlice<UInt8>) async throws {
                guard let kept = filter.event(line) else { return }
                try await outbound.write(ByteBuffer(bytes: Array(String(kept.count, radix: 16).utf8) + [13, 10] + kept + [13, 10]))
            }
            let complete = try await upstream.decodeBody(framing) { run in
                for line in try lines.feed(run) { try await send(line) }
            }
            try await send(lines.rest)
            try await outbound.write(ByteBuffer(bytes: Array("0\r\n\r\n".utf8)))
            return (200, complete && framing != .untilClose)
        }
        var body: [UInt8] = []
        var complete = false
        do {
            complete = try await upstream.decodeBody(framing) { run in
                body += run
                guard body.count <= KubePodFilter.maxBody else {
                    throw TeleportError.badParameter(
                        "the pod list is larger than \(KubePodFilter.maxBody) bytes, too large to filter by kubernetes_resources: narrow it (a namespace, a label selector, --chunk-size)")
                }
            }
        } catch let error as TeleportError {
            try await respond(outbound, code: 502, message: error.message, close: true)
            return (502, false)
        }
        guard complete else {
            try await respond(outbound, code: 502, message: "the API server closed the connection inside a pod list", close: true)
            return (502, false)
        }
        let filtered: [UInt8]
        do {
            filtered = try filter.list(body)
        } catch {
            try await respond(outbound, code: 502, message: (error as? TeleportError)?.message ?? "\(error)", close: true)
            return (502, false)
        }
        copy.headers.append(HTTP1Head.Header("Content-Length", "\(filtered.count)"))
        try await outbound.write(ByteBuffer(bytes: copy.bytes + filtered))
        return (200, framing != .untilClose)
    }

    /// The response as the client gets it: the upstream's connection headers replaced (the
    /// client's connection stays open unless the body runs to the close).
    static func clientHead(_ head: HTTP1Head, closing: Bool) -> HTTP1Head {
        var copy = head
        copy.headers.removeAll { ["connection", "keep-alive", "proxy-connection"].contains($0.name.lowercased()) }
        if closing { copy.headers.append(HTTP1Head.Header("Connection", "close")) }
        return copy
    }

    /// Relays an upgraded stream both ways until either side ends. With a terminal (`tty=true`)
    /// on `exec`/`attach` the output (channels 1 and 2) and resizes (channel 4) are recorded and
    /// the session is audited with its exit code (channel 3).
    func relayUpgrade(
        client: ByteReader, clientOut: NIOAsyncChannelOutboundWriter<ByteBuffer>, upstream: ByteReader,
        upstreamOut: NIOAsyncChannelOutboundWriter<ByteBuffer>, info: KubeRequestInfo, audited: KubeAudit.Connection, responseHead: HTTP1Head
    ) async throws {
        let negotiated = responseHead.value("sec-websocket-protocol") ?? ""
        let binaryChannels = negotiated.hasSuffix("channel.k8s.io") && !negotiated.contains("base64")
        let interactive = info.isSession && info.parameter("tty") == "true" && binaryChannels
        // Every exec/attach stream is read for its exit status; interactive ones for their output too.
        let scanned = info.isSession && binaryChannels
        let sid = UUID().uuidString.lowercased()
        var recorder: SessionRecorder?
        if interactive {
            guard service.audit.sessionStarted(audited, sid: sid, info: info, size: "80:24") else {
                throw TeleportError.connectionProblem("the audit log is unavailable: the session is not started")
            }
            recorder = configuration.recordingsDirectory.flatMap { directory in
                try? SessionRecorder(
                    directory: directory,
                    header: SessionRecording.Header(
                        sid: sid, user: audited.user, login: audited.kubeUser, serverID: configuration.hostUUID,
                        serverHostname: "\(audited.cluster)/\(info.namespace)/\(info.name)", start: Date(), size: "80:24"))
            }
        }
        service.audit.request(audited, info: info, method: "GET", status: 101)
        let exitCode = ExitCodeBox()
        let recording = recorder
        // An interactive session can be joined (tsh join): its client's frames go on one by one
        // (re-encoded, so that a peer's keystrokes can go in between), its output to the joiners.
        let live: KubeLiveSession? =
            interactive
            ? KubeLiveSession(
                sid: sid, owner: audited.user, cluster: audited.cluster, namespace: info.namespace, pod: info.name,
                inject: { frame in try await upstreamOut.write(ByteBuffer(bytes: frame)) }) : nil
        if let live { startLive(live, audited: audited, info: info) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var reader = client
                var scanner = WebSocketFrameScanner(payloadLimit: Self.maxClientFrame)
                do {
                    while let chunk = try await reader.next(max: 64 * 1024) {
                        guard live != nil else {
                            try await upstreamOut.write(chunk)
                            continue
                        }
                        for frame in try scanner.feed(chunk.readableBytesView) {
                            guard frame.length == frame.payload.count else {
                                throw HTTP1Error("a WebSocket frame of \(frame.length) bytes from the client is larger than \(Self.maxClientFrame)")
                            }
                            if frame.opcode == 2 && frame.payload.first == 4, let size = Self.resize(frame.payload.dropFirst()) {
                                recording?.resize(columns: size.0, rows: size.1)
                            }
                            try await upstreamOut.write(
                                ByteBuffer(
                                    bytes: WebSocketFrameEncoder.frame(
                                        opcode: frame.opcode, payload: frame.payload, mask: WebSocketFrameEncoder.newMask(), fin: frame.fin)))
                        }
                    }
                } catch {}
            }
            group.addTask {
                var reader = upstream
                // A non-interactive stream is read only for its (small) status message.
                var scanner = WebSocketFrameScanner(payloadLimit: interactive ? 1 << 20 : 4096)
                do {
                    while let chunk = try await reader.next(max: 64 * 1024) {
                        if scanned {
                            let frames = (try? chunk.withUnsafeReadableBytes { try scanner.feed(raw: $0) }) ?? []
                            for frame in frames where frame.opcode == 2 {
                                switch frame.payload.first {
                                case 1, 2:
                                    recording?.output(ByteBuffer(bytes: frame.payload.dropFirst()))
                                    live?.broadcast(WebSocketFrameEncoder.frame(opcode: 2, payload: frame.payload))
                                case 3:
                                    exitCode.set(KubeExecStatus.exitCode(frame.payload.dropFirst()))
                                    exitCode.setStatus(WebSocketFrameEncoder.frame(opcode: 2, payload: frame.payload))
                                default: break
                                }
                            }
                        }
                        try await clientOut.write(chunk)
                    }
                } catch {}
            }
            await group.next()
            group.cancelAll()
        }
        if let live { endLive(live, status: exitCode.status) }
        if !interactive && info.isSession && info.subresource == "exec" {
            service.audit.exec(audited, info: info, exitCode: exitCode.value)
        }
        if interactive {
            recording?.finish()
            service.audit.sessionEnded(audited, sid: sid, info: info, exitCode: exitCode.value, participants: live?.participants ?? [audited.user])
        }
    }

    /// The largest WebSocket frame an interactive session's client may send (kubectl sends its
    /// standard input in frames of at most 32 KiB).
    static let maxClientFrame = 1 << 20

    /// A resize message (`{"Width":80,"Height":24}`).
    static func resize(_ payload: ArraySlice<UInt8>) -> (Int, Int)? {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any],
            let width = object["Width"] as? Int, let height = object["Height"] as? Int, (1...10000).contains(width), (1...10000).contains(height)
        else { return nil }
        return (width, height)
    }

    /// A new connection to the API server: TCP, then TLS with the kubeconfig's CA and client
    /// certificate.
    func connect(_ cluster: KubeCluster) async throws -> Upstream {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: cluster.host, port: cluster.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: cluster.tls, serverHostname: cluster.serverName))
                    return try Upstream(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// The checks before any request is read.
    func accept(channel: any Channel, handoff: EventLoopFuture<DatabaseHandoff>, audited: inout KubeAudit.Connection) async throws -> Accepted {
        let frame = try await handoff.get()
        try await checkProxy(channel)
        audited.clientAddress = frame.clientAddress
        let identity = try await checkUser(frame.userCertificatePEM)
        audited.user = identity.username
        guard let route = identity.kubernetesCluster else {
            throw TeleportError.accessDenied("the certificate carries no Kubernetes cluster route: run tsh kube login CLUSTER")
        }
        audited.cluster = route
        guard let cluster = configuration.clusters.first(where: { $0.name == route }) else {
            throw TeleportError.accessDenied("this Kubernetes service does not serve cluster \(route)")
        }
        let checker = AccessChecker(
            roles: service.cache.roles(named: identity.roles), traits: AccessChecker.templateTraits(identity.traits ?? ["logins": identity.logins]))
        let decision = try checker.checkKubeLabels(service.labels)
        guard decision.allowed else {
            throw TeleportError.accessDenied("access to Kubernetes cluster \(route) denied: " + decision.reasons.joined(separator: "; "))
        }
        let principals = try checker.kubePrincipals(labels: service.labels)
        guard service.audit.admits else {
            throw TeleportError.connectionProblem("the audit log is unavailable (events wait for the auth service): refusing unaudited requests")
        }
        return Accepted(cluster: cluster, identity: identity, users: principals.users, groups: principals.groups, checker: checker)
    }

    /// The peer of the service's mutual TLS must be a proxy of this cluster.
    func checkProxy(_ channel: any Channel) async throws {
        guard let peer = try await channel.nioSSL_peerCertificate().get() else {
            throw TeleportError.accessDenied("the connection presented no certificate")
        }
        let identity = try X509Identity(certificate: try Certificate.fromDER(try peer.toDERBytes()))
        guard identity.clusterName == configuration.clusterName, identity.systemRole == .proxy else {
            throw TeleportError.accessDenied("only the cluster's proxies connect to the Kubernetes service")
        }
    }

    /// The user's certificate: this cluster's user CA signed it, it is current, and it is a user's.
    func checkUser(_ pem: String) async throws -> X509Identity {
        let certificate: Certificate
        do {
            certificate = try Certificate.fromPEM(pem)
        } catch {
            throw TeleportError.accessDenied("the user certificate cannot be read")
        }
        guard case .certAuthority(let ca) = try await service.auth.resource(kind: CertAuthority.kind, name: CertAuthority.CAType.user.rawValue)
        else { throw TeleportError.internalError("the auth service sent another kind for cert_authority/user") }
        let roots = try ca.trustedKeys.tls.map { try Certificate.fromPEM($0.cert) }
        guard roots.contains(where: { $0.publicKey.isValidSignature(certificate.signature, for: certificate) }) else {
            throw TeleportError.accessDenied("the certificate is not signed by this cluster's user CA")
        }
        let now = Date()
        guard certificate.notValidBefore <= now, now < certificate.notValidAfter else {
            throw TeleportError.accessDenied("the certificate has expired: log in again (tsh login)")
        }
        let identity = try X509Identity(certificate: certificate)
        guard identity.clusterName == configuration.clusterName, identity.systemRole == nil else {
            throw TeleportError.accessDenied("the certificate is not a user certificate of this cluster")
        }
        return identity
    }

    /// A Kubernetes `Status` answer (kubectl prints its message), one line naming the cause.
    static func respond(_ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, code: Int, message: String, close: Bool) async throws {
        let body = statusBody(code: code, message: message)
        var head = "HTTP/1.1 \(code) \(reason(code))\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nCache-Control: no-store\r\n"
        if close { head += "Connection: close\r\n" }
        head += "\r\n"
        try await outbound.write(ByteBuffer(bytes: Array(head.utf8) + body))
    }

    static func reason(_ code: Int) -> String {
        switch code {
        case 400: "BadRequest"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "NotFound"
        case 413: "RequestEntityTooLarge"
        case 503: "ServiceUnavailable"
        default: "InternalError"
        }
    }

    /// The JSON of a `Status` object.
    static func statusBody(code: Int, message: String) -> [UInt8] {
        let object: [String: Any] = [
            "kind": "Status", "apiVersion": "v1", "metadata": [String: Any](), "status": "Failure", "message": message, "reason": reason(code),
            "code": code,
        ]
        return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8))
    }
}

/// The exit code a stream reported, set from the relay task.
final class ExitCodeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Int?
    private var statusFrame: [UInt8]?

    /// The status frame (channel 3) as the API server sent it, for the session's joiners.
    func setStatus(_ frame: [UInt8]) { lock.withLock { statusFrame = frame } }

    var status: [UInt8]? { lock.withLock { statusFrame } }

    func set(_ value: Int?) {
        guard let value else { return }
        lock.withLock { stored = value }
    }

    var value: Int? { lock.withLock { stored } }
}
