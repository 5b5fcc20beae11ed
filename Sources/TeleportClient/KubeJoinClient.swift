import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import TeleportAPI
import TeleportCrypto
import TeleportSSHClient
import TeleportWire

#if canImport(Glibc)
    import Glibc
#endif

/// The client side of joining a live Kubernetes session: after the WebSocket upgrade
/// (`v5.channel.k8s.io`), the session's output (channels 1 and 2) goes to this process's
/// standard output and error, its status (channel 3) gives the exit code, and in `peer` mode
/// the ByteBuffers written to the channel (standard input) go as channel 0, masked.
final class KubeJoinHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let request: [UInt8]
    let peer: Bool
    let upgraded: EventLoopPromise<Void>
    let ended: EventLoopPromise<Int32>
    var head: [UInt8] = []
    var isUpgraded = false
    var refusal: [UInt8] = []
    var scanner = WebSocketFrameScanner(payloadLimit: 1 << 20)
    var exitCode: Int32 = 0
    var finished = false
    let output: @Sendable (CInt, ByteBuffer) -> Void

    init(
        request: [UInt8], peer: Bool, upgraded: EventLoopPromise<Void>, ended: EventLoopPromise<Int32>,
        output: @escaping @Sendable (CInt, ByteBuffer) -> Void = { FileDescriptorWriter.writeAll($0, $1) }
    ) {
        self.request = request
        self.peer = peer
        self.upgraded = upgraded
        self.ended = ended
        self.output = output
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        guard isUpgraded else {
            if !refusal.isEmpty || head.count > 64 * 1024 {
                if refusal.count < 64 * 1024 { refusal.append(contentsOf: bytes) }
                return
            }
            head.append(contentsOf: bytes)
            guard let length = try? HTTP1Head.length(head, limit: 64 * 1024) else { return }
            let answer = try? HTTP1Head.response(Array(head[..<length]))
            let rest = Array(head[length...])
            guard answer?.status == 101 else {
                refusal = rest.isEmpty ? [0x20] : rest
                let status = answer?.status ?? 0
                let message = Self.statusMessage(rest)
                upgraded.fail(
                    TeleportError.accessDenied(
                        "the Kubernetes service refused to join the session (\(status)): \(message ?? String(decoding: rest.prefix(300), as: UTF8.self))"))
                context.close(promise: nil)
                return
            }
            isUpgraded = true
            head = []
            upgraded.succeed(())
            handleFrames(context: context, rest)
            return
        }
        handleFrames(context: context, bytes)
    }

    func handleFrames(context: ChannelHandlerContext, _ bytes: [UInt8]) {
        let frames: [WebSocketFrameScanner.Frame]
        do {
            frames = try scanner.feed(bytes)
        } catch {
            context.close(promise: nil)
            return
        }
        for frame in frames {
            switch frame.opcode {
            case WebSocketFrameEncoder.binary:
                guard let channel = frame.payload.first else { continue }
                let data = ByteBuffer(bytes: frame.payload.dropFirst())
                switch channel {
                case 1: output(1, data)
                case 2: output(2, data)
                case 3: exitCode = Int32(clamping: KubeExecStatus.exitCode(frame.payload.dropFirst()) ?? 1)
                default: break
                }
            case WebSocketFrameEncoder.close:
                context.close(promise: nil)
            default: continue
            }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let input = unwrapOutboundIn(data)
        guard isUpgraded, peer else {
            promise?.succeed(())
            return
        }
        let frame = WebSocketFrameEncoder.channel(0, input.readableBytesView, mask: WebSocketFrameEncoder.newMask())
        context.write(wrapOutboundOut(ByteBuffer(bytes: frame)), promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !isUpgraded { upgraded.fail(TeleportError.connectionProblem("the connection closed before the join was answered")) }
        if !finished {
            finished = true
            ended.succeed(exitCode)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// The `message` of a Kubernetes `Status` body, if it is one.
    static func statusMessage(_ body: [UInt8]) -> String? {
        guard let start = body.firstIndex(of: UInt8(ascii: "{")),
            let object = (try? JSONSerialization.jsonObject(with: Data(body[start...]))) as? [String: Any]
        else { return nil }
        return object["message"] as? String
    }
}

extension TSHCommands {
    /// Joins a live Kubernetes session (`tsh join SID` for a session `tsh sessions ls` shows with
    /// a Kubernetes cluster, or `tsh kube join SID`): a certificate for the session's cluster,
    /// TLS to the proxy's web port as kubectl reaches it, and the join upgrade.
    static func kubeJoin(_ options: ClientOptions, live: AuthAPI.ActiveSession, mode: String, context: ClientContext) async throws -> Int32 {
        guard let cluster = live.kubeCluster, !cluster.isEmpty else {
            throw TeleportError.badParameter("session \(live.sid) names no Kubernetes cluster")
        }
        let files = try kubeFiles(options, context: context)
        _ = try await issueKubeCertificate(options, name: cluster, files: files, context: context)
        let tls: NIOSSLContext
        do {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(files.certificate(cluster).path).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: files.paths.tlsKey.path, format: .pem))
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(files.paths.caCertificates.path))
            configuration.certificateVerification = .noHostnameVerification
            configuration.minimumTLSVersion = .tlsv12
            configuration.applicationProtocols = ["http/1.1"]
            tls = try NIOSSLContext(configuration: configuration)
        } catch {
            throw TeleportError.badParameter("the Kubernetes certificate files cannot be loaded (\(error)); run tsh login again")
        }
        let proxy = files.profile.webProxyAddress
        let serverName = AuthAPI.kubeProxyServerName
        let path = "/teleport/v1/sessions/\(live.sid)/join?mode=\(mode)"
        let request = Array(
            ("GET \(path) HTTP/1.1\r\nHost: \(serverName)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: \(WebSocketAccept.newKey())\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n"
                + "User-Agent: tsh/\(TeleportVersion.version)\r\n\r\n").utf8)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let upgraded = loop.makePromise(of: Void.self)
        let ended = loop.makePromise(of: Int32.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.seconds(10))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                        try channel.pipeline.syncOperations.addHandler(
                            KubeJoinHandler(request: request, peer: mode == "peer", upgraded: upgraded, ended: ended))
                    }
                }
                .connect(host: proxy.host, port: proxy.port).get()
        } catch {
            upgraded.fail(error)
            ended.fail(error)
            throw TeleportError.connectionProblem("cannot reach the proxy at \(proxy.hostPort): \(error)")
        }
        do {
            try await upgraded.futureResult.get()
        } catch {
            channel.close(promise: nil)
            if let error = error as? TeleportError { throw error }
            throw TeleportError.connectionProblem("joining the session through \(proxy.hostPort) failed: \(error)")
        }
        context.warn(
            "Joined \(live.user)'s session \(live.sid) on \(live.serverHostname) as \(mode)"
                + (mode == "peer" ? " (what you type goes to the pod)" : "") + "; ~. leaves.")
        let terminal = LocalTerminal()
        if LocalTerminal.isInteractive { terminal.makeRaw() }
        defer { terminal.restore() }
        StandardInputPump.start(into: channel, escape: LocalTerminal.isInteractive, wrap: { $0 }, onEOF: {})
        let code = try await ended.futureResult.get()
        terminal.restore()
        return code
    }
}
