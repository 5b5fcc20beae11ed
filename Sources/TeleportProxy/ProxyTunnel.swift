import Foundation
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import TeleportAPI
import TeleportCrypto
import TeleportSSH
import TeleportTunnel
import X509

/// `tsh proxy ssh` over TLS on the web port: a client that negotiates the ALPN protocol
/// ``alpnProtocol`` and presents its user certificate sends one line, `HOST:PORT[@CLUSTER]\n`; the
/// proxy answers `OK\n` and pipes the connection to that registered node (the same resolution and
/// refusals as the `proxy:` SSH subsystem), or `ERR reason\n` and closes. Other connections are
/// HTTPS as usual.
enum ProxyTunnel {
    static let alpnProtocol = "teleport-proxy-ssh"
    /// The longest request line.
    static let maxLine = 1024
}

/// Wraps the HTTP child channel: its handler, right after TLS, takes the connection over when the
/// client negotiated ``ProxyTunnel/alpnProtocol`` (the HTTP handlers behind it then see nothing).
struct TunnelingChildChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let opener: TunnelOpener

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(TunnelSwitchHandler(opener: opener, logger: logger))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Checks the caller and connects to the node.
struct TunnelOpener: Sendable {
    let resolver: NodeResolver
    /// How nodes are reached: direct TCP, or their reverse tunnel.
    var dialer: any AgentDialer = NodeDialer(tunnels: nil)
    let clusterName: String
    let audit: SSHAudit?
    /// How long a tunnel client has to send its request line after the TLS handshake.
    let requestLineTimeout: TimeAmount

    /// The node `line` names, for the user of `certificate`.
    func resolve(
        line: String, certificate: NIOSSLCertificate?, remote: SocketAddress?, local: SocketAddress?, logger: Logger
    ) async throws -> ServerNode {
        guard let certificate else {
            throw TeleportError.accessDenied("a user certificate is required: run tsh login")
        }
        let identity = try X509Identity(certificate: try Certificate.fromDER(try certificate.toDERBytes()))
        guard identity.clusterName == clusterName, identity.systemRole == nil else {
            throw TeleportError.accessDenied("the certificate is not a user certificate of cluster \(clusterName)")
        }
        let node: ServerNode
        do {
            let target = try ProxySubsystemHandler.parseSubsystem("proxy:" + line)
            node = try await resolver.resolve(target)
        } catch {
            audit?.portForward(remote: remote, local: local, user: identity.username, login: "", target: line, error: error)
            throw error
        }
        logger.info("proxying to node over TLS", metadata: ["tp.user": "\(identity.username)", "tp.node": "\(node.name)"])
        return node
    }
}

/// Passes everything through until the TLS handshake completes with the tunnel's ALPN protocol;
/// then reads the request line, connects, answers, and glues the two connections.
final class TunnelSwitchHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum State {
        case undecided, line, connecting, connected
    }

    let opener: TunnelOpener
    let logger: Logger
    private var state = State.undecided
    private var line = ByteBuffer()
    private var held: [ByteBuffer] = []
    /// Whether the first HTTP request head has ended (its blank line seen): until then the
    /// connection has `opener.requestLineTimeout` to send it, as the tunnel's request line has.
    /// (The HTTP idle timeout behind us starts only once a head is parsed: without this, a client
    /// could hold a connection open forever with half a head.)
    private var headEnded = false
    private var headTail: [UInt8] = []

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: opener.requestLineTimeout) {
            guard self.state == .undecided, !self.headEnded else { return }
            self.logger.debug("web port: closed a connection that sent no complete request head in time")
            bound.value.close(promise: nil)
        }
    }

    init(opener: TunnelOpener, logger: Logger) {
        self.opener = opener
        self.logger = logger
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let negotiated) = event as? TLSUserEvent, negotiated == ProxyTunnel.alpnProtocol {
            state = .line
            // The HTTP idle timeout behind us would close an open tunnel (it sees no HTTP
            // request): take it out, and give the request line a deadline of its own instead.
            if let idle = try? context.pipeline.syncOperations.handler(type: HTTPConnectionStateHandler.self) {
                context.pipeline.syncOperations.removeHandler(idle, promise: nil)
            }
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: opener.requestLineTimeout) {
                if self.state == .line { self.refuse(bound.value, "no request line in time") }
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .undecided:
            if !headEnded { noteHeadBytes(unwrapInboundIn(data)) }
            context.fireChannelRead(data)
        case .connected:
            context.fireChannelRead(data)
        case .connecting:
            held.append(unwrapInboundIn(data))
        case .line:
            var bytes = unwrapInboundIn(data)
            line.writeBuffer(&bytes)
            guard let newline = line.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
                if line.readableBytes > ProxyTunnel.maxLine { refuse(context, "the request line is too long") }
                return
            }
            let length = newline - line.readerIndex
            let request = String(decoding: line.readSlice(length: length)!.readableBytesView, as: UTF8.self)
            line.moveReaderIndex(forwardBy: 1)
            if line.readableBytes > 0 { held.append(line.readSlice(length: line.readableBytes)!) }
            connect(context, request.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    private func connect(_ context: ChannelHandlerContext, _ request: String) {
        state = .connecting
        let opener = self.opener
        let logger = self.logger
        let loop = context.eventLoop
        let bound = NIOLoopBound(context, eventLoop: loop)
        let promise = loop.makePromise(of: ServerNode.self)
        let remote = context.channel.remoteAddress
        let local = context.channel.localAddress
        context.channel.nioSSL_peerCertificate().whenComplete { certificate in
            promise.completeWithTask {
                try await opener.resolve(
                    line: request, certificate: (try? certificate.get()) ?? nil, remote: remote, local: local, logger: logger)
            }
        }
        let (tlsSide, tcpSide) = GlueHandler.matchedPair()
        let tcpBound = NIOLoopBound(tcpSide, eventLoop: loop)
        promise.futureResult.flatMap { node in
            opener.dialer.dial(node, service: .nodeSSH, originator: remote, on: loop, with: tcpBound.value).hop(to: loop)
        }.whenComplete { result in
            let context = bound.value
            switch result {
            case .failure(let error):
                let text = (error as? TeleportError)?.message ?? "\(error)"
                logger.info("refused a TLS proxy request: \(text)")
                self.refuse(context, text)
            case .success(let tcp):
                self.connected(context, tcp: tcp, glue: tlsSide)
            }
        }
    }

    private func connected(_ context: ChannelHandlerContext, tcp: any Channel, glue: GlueHandler) {
        state = .connected
        opener.audit?.tunnelOpened(closed: tcp.closeFuture)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: "OK\n")), promise: nil)
        do {
            try context.pipeline.syncOperations.addHandler(glue, position: .after(self))
        } catch {
            tcp.close(promise: nil)
            context.close(promise: nil)
            return
        }
        let pending = held
        held.removeAll()
        for bytes in pending { context.fireChannelRead(wrapInboundOut(bytes)) }
        if !pending.isEmpty { context.fireChannelReadComplete() }
        context.read()
    }

    /// Looks for the blank line that ends an HTTP request head (across reads).
    private func noteHeadBytes(_ bytes: ByteBuffer) {
        let window = headTail + bytes.readableBytesView
        let end: [UInt8] = [13, 10, 13, 10]
        if window.count >= end.count, (0...(window.count - end.count)).contains(where: { window[$0..<($0 + end.count)].elementsEqual(end) }) {
            headEnded = true
            headTail = []
        } else {
            headTail = Array(window.suffix(end.count - 1))
        }
    }

    private func refuse(_ context: ChannelHandlerContext, _ reason: String) {
        let text = "ERR " + reason.replacingOccurrences(of: "\n", with: " ") + "\n"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text))).whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
