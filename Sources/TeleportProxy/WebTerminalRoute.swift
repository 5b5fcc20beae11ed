import Crypto
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSH
import NIOWebSocket
import ServiceLifecycle
import Synchronization
import TeleportAccess
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import TeleportSSHClient

/// `GET /webapi/terminal`: the web terminal's WebSocket. Every check runs on the upgraded
/// connection and a refusal is a close frame with a code and a one-line reason
/// (``WebTerminalClose``): 4403 for an `Origin` other than `https://` + Host (a foreign page),
/// 4401 without a valid session cookie, 4400 for bad parameters, 4404 for an unknown node or
/// session, 4403 when the node refuses the login, 4502 when the node cannot be reached.
///
/// The proxy then generates a key, has the auth service certify it for the web session's user
/// (`POST /v1/websessions/certs`, acting for the session) and SSHes to the node through its own
/// SSH port exactly as `tsh ssh` does (`proxy:NODE:0@CLUSTER`), so the node checks RBAC, records
/// and audits the session as for `tsh`. Binary frames carry terminal bytes both ways; a text frame
/// `{"type":"resize","cols":C,"rows":R}` becomes a window change; when the shell ends the proxy
/// sends `{"type":"exit","status":N}` and closes. A dropped WebSocket closes the SSH connection
/// (the node ends and audits the session). Output is bounded: past ``TerminalFlow/highWater``
/// bytes not yet sent to the browser, the proxy stops reading from the node (SSH flow control
/// then holds the rest at the node).
struct WebTerminalRoute: Sendable {
    let auth: AuthClient
    let clusterName: String
    /// `host:port` of the proxy's own SSH listener.
    let sshAddress: (host: String, port: Int)
    let resolver: NodeResolver
    /// The roles of these names, as the proxy's certificate cache has them.
    let roles: @Sendable ([String]) -> [Role]
    let logger: Logger
    /// Reaches leaf clusters' nodes (`cluster=LEAF`, ``openOnLeaf(_:cluster:session:)``); nil on a
    /// proxy without one.
    var clusterRouter: ClusterRouter? = nil

    func register(on router: Router<ProxyRequestContext>) {
        router.ws("webapi/terminal") { inbound, outbound, context in
            await serve(inbound: inbound, outbound: outbound, request: context.request, client: context.requestContext.clientAddress ?? "")
        }
    }

    /// The host to dial for a listen address: a wildcard address means this host.
    static func dialHost(_ listenHost: String) -> String {
        ["", "0.0.0.0", "::", "[::]"].contains(listenHost) ? "127.0.0.1" : listenHost
    }

    /// Why a WebSocket from `origin` to `host` is refused, or nil: browsers always send `Origin`
    /// on a WebSocket, and only this proxy's own pages may open one.
    static func originRefusal(origin: String?, host: String?) -> String? {
        guard let host, !host.isEmpty else { return "the request has no Host" }
        guard let origin, origin.lowercased() == "https://\(host.lowercased())" else {
            return "a terminal may be opened only from this proxy's own pages (Origin must be https://\(host))"
        }
        return nil
    }

    func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, request: Request, client: String) async {
        func header(_ name: String) -> String? { HTTPFields.Element.Name(name).flatMap { request.headers[$0] } }
        var metadata: Logger.Metadata = ["tp.client.addr": "\(client)"]
        do {
            if let refusal = Self.originRefusal(origin: header("Origin"), host: request.head.authority ?? header("Host")) {
                throw WebTerminalClose(code: WebTerminalClose.forbidden, reason: refusal)
            }
            let session: (id: String, info: AuthAPI.WebSessionInfo)
            do {
                switch try await WebSessionCookie.session(of: request, auth: auth) {
                case .failure:
                    throw WebTerminalClose(code: WebTerminalClose.unauthenticated, reason: "the web session has expired or was ended; sign in again")
                case .success(let found): session = found
                }
            } catch let error as TeleportError {
                throw WebTerminalClose(error)
            }
            metadata["tp.user"] = "\(session.info.user)"
            let parameters = request.uri.queryParameters
            let what: WebTerminalRequest
            do {
                what = try WebTerminalRequest.parse { parameters.get($0).map { String($0) } }
            } catch let error as TeleportError {
                throw WebTerminalClose(error)
            }
            let cluster = parameters.get("cluster").map { String($0) } ?? ""
            metadata["tp.cluster"] = "\(cluster.isEmpty ? clusterName : cluster)"
            let connection: Connection
            if cluster.isEmpty || cluster.lowercased() == clusterName.lowercased() {
                connection = try await open(what, session: session)
            } else {
                connection = try await openOnLeaf(what, cluster: cluster, session: session)
            }
            metadata["tp.node"] = "\(connection.node)"
            logger.info("web terminal opened", metadata: metadata)
            await relay(connection, inbound: inbound, outbound: outbound)
            logger.info("web terminal closed", metadata: metadata)
        } catch let close as WebTerminalClose {
            metadata["tp.error"] = "\(close.reason)"
            logger.info("web terminal refused", metadata: metadata)
            try? await outbound.close(.unknown(close.code), reason: close.reason)
        } catch {
            logger.warning("web terminal failed", metadata: metadata.merging(["tp.error": "\(error)"]) { $1 })
            try? await outbound.close(.unknown(WebTerminalClose.unreachable), reason: WebTerminalClose.truncated("\(error)"))
        }
    }

    /// An SSH session on the node, started, with its output flowing into `flow`.
    struct Connection {
        let node: String
        let proxy: SSHConnection
        let nodeConnection: SSHConnection
        let channel: any Channel
        let handler: RemoteSessionHandler
        let flow: TerminalFlow

        func close() {
            channel.close(promise: nil)
            nodeConnection.close()
            proxy.close()
        }
    }

    /// Resolves the node, gets a certificate for the session's user and starts the shell (or joins).
    func open(_ what: WebTerminalRequest, session: (id: String, info: AuthAPI.WebSessionInfo)) async throws -> Connection {
        let acting = auth.actingFor(webSession: session.id)
        let nodeName: String
        let login: String
        var environment: [String: String] = ["LANG": "C.UTF-8"]
        let size: (columns: Int, rows: Int)
        switch what {
        case .connect(let node, let requestedLogin, let columns, let rows):
            nodeName = node
            login = requestedLogin
            size = (columns, rows)
        case .join(let sessionID, let mode, let columns, let rows):
            // The same rules as `tsh join`: a session the user may see, joined as one of the
            // user's own logins; the node decides whether the mode is allowed.
            let checker = AccessChecker(roles: roles(session.info.roles), traits: ["internal.logins": session.info.logins])
            let visible = try await ActiveSessionsList.visible(auth: auth, user: session.info.user, checker: checker)
            guard let live = visible.first(where: { $0.sid == sessionID }) else {
                throw WebTerminalClose(code: WebTerminalClose.notFound, reason: "no live session \(sessionID) that you may join")
            }
            guard !live.isKube else {
                throw WebTerminalClose(
                    code: WebTerminalClose.notFound, reason: "\(sessionID) is a Kubernetes session: join it with tsh kube join \(sessionID)")
            }
            guard let first = session.info.logins.first else {
                throw WebTerminalClose(code: WebTerminalClose.forbidden, reason: "your roles allow no login")
            }
            nodeName = live.serverID
            login = first
            environment["TELEPORT_SESSION"] = sessionID
            environment["TELEPORT_JOIN_MODE"] = mode
            size = (columns, rows)
        }
        let node: ServerNode
        do {
            node = try await resolver.resolve(host: nodeName, port: nil)
        } catch let error as TeleportError {
            throw WebTerminalClose(code: WebTerminalClose.notFound, reason: error.message)
        }
        do {
            let credentials = try await certify(acting: acting, user: session.info.user, login: login, node: node)
            let hostKeys = try await auth.hostKeys()
            let nodeCheck = HostKeyCheck(
                accepted: hostKeys.filter { $0.hostID == node.name || $0.nodeName.lowercased() == node.spec.hostname.lowercased() }
                    .compactMap { try? SSHPublicKey(authorizedKeyLine: $0.publicKey) },
                what: "node \(node.spec.hostname)")
            return try await start(
                credentials: credentials, proxyKeys: hostKeys, target: "\(node.name):0@\(clusterName)", nodeCheck: nodeCheck,
                hostname: node.spec.hostname, size: size, environment: environment)
        } catch let error as TeleportError {
            throw WebTerminalClose(error)
        }
    }

    /// SSHes to this proxy with `credentials` and through it (`proxy:TARGET`) to the node, checked
    /// with `nodeCheck`, and starts a shell there with `environment` in a terminal of `size`.
    func start(
        credentials: SSHClientCredentials, proxyKeys: [AuthAPI.HostKey], target: String, nodeCheck: HostKeyCheck, hostname: String,
        size: (columns: Int, rows: Int), environment: [String: String]
    ) async throws -> Connection {
        let proxyCheck = HostKeyCheck(accepted: proxyKeys.compactMap { try? SSHPublicKey(authorizedKeyLine: $0.publicKey) }, what: "this proxy")
        let proxy = try await SSHConnection.connect(
            host: Self.dialHost(sshAddress.host), port: sshAddress.port, credentials: credentials, hostKey: proxyCheck)
        let nodeConnection: SSHConnection
        do {
            nodeConnection = try await proxy.tunnel(to: target, credentials: credentials, hostKey: nodeCheck)
        } catch {
            proxy.close()
            throw error
        }
        let flow = TerminalFlow()
        let handler = RemoteSessionHandler(
            request: RemoteSessionRequest(command: nil, terminal: ("xterm-256color", size.rows, size.columns), environment: environment),
            output: SessionOutput(stdout: { flow.push($0) }, stderr: { flow.push($0) }), eventLoop: nodeConnection.channel.eventLoop)
        let channel: any Channel
        do {
            channel = try await nodeConnection.openSession { child in
                try child.pipeline.syncOperations.addHandler(handler)
            }
            flow.attach(channel)
            try await handler.startFuture.get()
        } catch {
            nodeConnection.close()
            proxy.close()
            throw error
        }
        handler.exitFuture.whenComplete { _ in flow.finish() }
        return Connection(node: hostname, proxy: proxy, nodeConnection: nodeConnection, channel: channel, handler: handler, flow: flow)
    }

    /// A fresh key certified for the web session's user (proof of possession signed with it).
    func certify(acting: AuthClient, user: String, login: String, node: ServerNode) async throws -> SSHClientCredentials {
        try await certify(acting: acting, user: user, login: login, target: "node \(node.spec.hostname)")
    }

    /// A fresh key certified for the web session's user, for `target` (named in errors).
    func certify(acting: AuthClient, user: String, login: String, target: String) async throws -> SSHClientCredentials {
        let sshKey = Curve25519.Signing.PrivateKey()
        let tlsKey = P256.Signing.PrivateKey()
        let issued = try await acting.webSessionCertificates(
            AuthAPI.SignUserRequest(
                user: user, sshPublicKey: SSHPublicKey.ed25519(sshKey.publicKey).authorizedKeyLine(), tlsPublicKeyPEM: tlsKey.publicKey.pemRepresentation,
                ttlSeconds: 0, keyProof: try LoginProof.sign(purpose: .webSession, user: user, sshKey: sshKey, tlsKey: tlsKey, now: Date())))
        var credentials = SSHClientCredentials(
            login: login, key: OpenSSHPrivateKey(.ed25519(sshKey)), certificate: try SSHCertificate(authorizedKeyLine: issued.sshCertificate))
        credentials.target = target
        return credentials
    }

    /// Copies bytes both ways until the shell ends or the WebSocket closes.
    func relay(_ connection: Connection, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        let channel = connection.channel
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                // Node → browser, then the exit status and the close.
                group.addTask {
                    for await bytes in connection.flow.stream {
                        do {
                            try await outbound.writeBinaryMessage(bytes)
                        } catch {
                            break
                        }
                        connection.flow.sent(bytes.readableBytes)
                    }
                    let exit = (try? await connection.handler.exitFuture.get()) ?? .unknown
                    let status: Int32? = if case .status(let code) = exit { Int32(truncatingIfNeeded: code) } else { nil }
                    try? await outbound.write(.text(WebTerminalControl.exitMessage(status: status)))
                    try? await outbound.close(.normalClosure, reason: "session ended")
                }
                // Browser → node: keystrokes and resizes.
                group.addTask {
                    do {
                        for try await message in inbound.messages(maxSize: 64 * 1024) {
                            switch message {
                            case .binary(let bytes):
                                try await channel.writeAndFlush(SSHChannelData(type: .channel, data: .byteBuffer(bytes)))
                            case .text(let text):
                                guard case .resize(let columns, let rows) = try? WebTerminalControl.parse(text) else { continue }
                                channel.eventLoop.execute { RemoteSessionHandler.resize(channel, rows: rows, columns: columns) }
                            }
                        }
                    } catch {}
                    // The browser went away (or the node closed): end the SSH session.
                    connection.close()
                }
                await group.next()
                connection.close()
                await group.next()
            }
        } onGracefulShutdown: {
            connection.close()
        }
    }
}

/// The node's output on its way to the browser: a stream with a byte count; past ``highWater``
/// unsent bytes the SSH channel stops reading (the node's SSH window then fills and it waits),
/// and reads again below ``lowWater``.
final class TerminalFlow: Sendable {
    static let highWater = 256 * 1024
    static let lowWater = 64 * 1024

    struct State {
        var pending = 0
        var paused = false
        var channel: (any Channel)?
    }

    let stream: AsyncStream<ByteBuffer>
    private let continuation: AsyncStream<ByteBuffer>.Continuation
    private let state = Mutex(State())

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
    }

    func attach(_ channel: any Channel) {
        state.withLock { $0.channel = channel }
    }

    /// Output from the node (on the channel's event loop).
    func push(_ bytes: ByteBuffer) {
        let pause: (any Channel)? = state.withLock { state in
            state.pending += bytes.readableBytes
            guard state.pending > Self.highWater, !state.paused, let channel = state.channel else { return nil }
            state.paused = true
            return channel
        }
        continuation.yield(bytes)
        if let pause { pause.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in } }
    }

    /// `count` bytes reached the browser.
    func sent(_ count: Int) {
        let resume: (any Channel)? = state.withLock { state in
            state.pending -= count
            guard state.paused, state.pending < Self.lowWater, let channel = state.channel else { return nil }
            state.paused = false
            return channel
        }
        if let resume {
            resume.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
            resume.read()
        }
    }

    func finish() {
        continuation.finish()
    }
}
