import Foundation
import NIOPosix
import TeleportAccess
public import Logging
public import NIOCore
public import TeleportAPI
public import TeleportAuthClient
public import TeleportCrypto
public import TeleportSSH
public import TeleportTunnel

/// Root side of trusted clusters (issue 20): reaches the nodes of a leaf cluster through the leaf
/// proxy's reverse tunnel. A target `HOST:PORT@LEAF` is sent to the leaf's proxy on a
/// ``TunnelService/clusterProxy`` channel with the user's SSH certificate (``ClusterWire``); the
/// leaf maps the user's roles, connects to its node and pipes the bytes, so the user's SSH session
/// runs end to end with the leaf's node. The root never dials a leaf's address itself.
public struct ClusterRouter: Sendable {
    let tunnels: ReverseTunnelServer
    let auth: AuthClient
    let clusterName: String
    let logger: Logger
    /// This cluster's roles by name (the proxy's certificate cache has them): a labelled leaf is
    /// reached only by users whose roles' `cluster_labels` match.
    let roles: @Sendable ([String]) -> [Role]

    /// Creates the router of the proxy of `clusterName`.
    public init(
        tunnels: ReverseTunnelServer, auth: AuthClient, clusterName: String, roles: @escaping @Sendable ([String]) -> [Role], logger: Logger
    ) {
        self.tunnels = tunnels
        self.auth = auth
        self.clusterName = clusterName
        self.roles = roles
        self.logger = logger
    }

    /// Whether `target` names another cluster than this one (a leaf, or an unknown name).
    public func isRemote(_ target: ProxyTarget) -> Bool {
        guard let cluster = target.cluster else { return false }
        return cluster.lowercased() != clusterName.lowercased()
    }

    /// Checks that `cluster` is a leaf the user of `roleNames` may reach (its labels and the
    /// roles' `cluster_labels`) and whose tunnel this proxy holds; a clear refusal otherwise (an
    /// unknown or hidden name, with the clusters the user sees, or a leaf that is offline).
    func checkReachable(_ cluster: String, roleNames: [String]) async throws {
        let checker = AccessChecker(roles: roles(roleNames), traits: [:])
        let leaves = try await auth.remoteClusterList().filter { ClustersRoute.visible($0, to: checker) }
        if leaves.contains(where: { $0.name == cluster }) {
            if tunnels.clusters.isConnected(cluster) { return }
            throw TeleportError.connectionProblem(
                "leaf cluster \(TerminalText.escape(cluster)) is offline: its proxy holds no tunnel to this proxy now (tsh clusters shows its status)")
        }
        let names = ([clusterName] + leaves.map(\.name)).map { TerminalText.escape($0) }.joined(separator: ", ")
        throw TeleportError.notFound(
            "cluster \"\(TerminalText.escape(cluster))\" is not known to this proxy: the clusters of \(clusterName) you may reach are: \(names) (see tsh clusters)")
    }

    /// A byte stream to the node `target` names in its leaf cluster, for the user of `certificate`;
    /// `handler` (carrying `ByteBuffer`s) is in the channel's pipeline from the start. The future
    /// completes once the leaf answered `OK`.
    public func dial(
        _ target: ProxyTarget, user: SSHAuthenticatedUser, originator: SocketAddress?, on loop: any EventLoop, with handler: GlueHandler
    ) -> EventLoopFuture<any Channel> {
        let certificate = user.certificate
        let roleNames = user.roles
        let cluster = target.cluster ?? clusterName
        let node = HostPort.join(target.host, target.port ?? 0)
        let request = ClusterWire.Request(op: ClusterWire.Request.dial, certificate: certificate.authorizedKeyLine(comment: certificate.keyID), target: node)
        let checked = loop.makePromise(of: Void.self)
        checked.completeWithTask { try await checkReachable(cluster, roleNames: roleNames) }
        let tunnels = self.tunnels
        let logger = self.logger
        let bound = UncheckedGlue(handler)
        return checked.futureResult.flatMap { _ -> EventLoopFuture<any Channel> in
            let answered = loop.makePromise(of: String.self)
            logger.info("proxying to a leaf cluster's node", metadata: ["tp.user": "\(certificate.keyID)", "tp.cluster": "\(cluster)", "tp.node": "\(node)"])
            return tunnels.openClusterChannel(to: cluster, service: .clusterProxy, originator: originator) { channel in
                try channel.pipeline.syncOperations.addHandlers([
                    ClusterAnswerHandler(request: request, cluster: cluster, keepOpen: true, answered: answered), bound.handler,
                ])
            }.flatMap { channel in
                answered.futureResult.map { _ in channel }.flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    throw error
                }
            }
        }
    }

    /// The nodes of leaf `cluster` the user of `certificate` may see there (after role mapping),
    /// with their host keys.
    func listing(cluster: String, certificate: String, roleNames: [String]) async throws -> ClusterWire.Listing {
        let json = try await ask(cluster: cluster, roleNames: roleNames, .init(op: ClusterWire.Request.nodes, certificate: certificate, target: nil))
        do {
            return try ResourceCodec.jsonDecoder().decode(ClusterWire.Listing.self, from: Data(json.utf8))
        } catch {
            throw TeleportError.connectionProblem("leaf cluster \(cluster) sent a node list that cannot be read")
        }
    }

    /// Asks the proxy of leaf `cluster` one question; the answer's payload.
    func ask(cluster: String, roleNames: [String], _ request: ClusterWire.Request) async throws -> String {
        try await checkReachable(cluster, roleNames: roleNames)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let answered = loop.makePromise(of: String.self)
        let channel = try await tunnels.openClusterChannel(to: cluster, service: .clusterProxy, originator: nil) { channel in
            try channel.pipeline.syncOperations.addHandler(ClusterAnswerHandler(request: request, cluster: cluster, keepOpen: false, answered: answered))
        }.get()
        defer { channel.close(promise: nil) }
        return try await answered.futureResult.get()
    }
}

/// The glue handler crosses to the tunnel's loop once, before it is added there.
struct UncheckedGlue: @unchecked Sendable {
    let handler: GlueHandler
    init(_ handler: GlueHandler) { self.handler = handler }
}

/// Sends the request line once the channel is open and waits for the answer line; with
/// `keepOpen` (a dial), the channel then carries the node's bytes to the handlers behind it
/// (what arrived with the answer is passed on once they ask to read).
final class ClusterAnswerHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum State { case waiting, open, done }

    let request: ClusterWire.Request
    let cluster: String
    let keepOpen: Bool
    let answered: EventLoopPromise<String>
    private var state = State.waiting
    private var sent = false
    private var buffer = ByteBuffer()
    /// What arrived after the answer, until the handlers behind first ask to read (their partner
    /// is there then): passed on in order, never before and never dropped.
    private var held: ByteBuffer?
    private var released = false
    private var heldEOF = false

    init(request: ClusterWire.Request, cluster: String, keepOpen: Bool, answered: EventLoopPromise<String>) {
        self.request = request
        self.cluster = cluster
        self.keepOpen = keepOpen
        self.answered = answered
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: ClusterWire.lineTimeout) {
            if self.state == .waiting {
                self.fail(bound.value, TeleportError.connectionProblem("leaf cluster \(self.cluster) did not answer on its tunnel in time"))
            }
        }
        if context.channel.isActive { send(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context)
        context.fireChannelActive()
    }

    private func send(_ context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        let line = ((try? ResourceCodec.json(request)).map { String(decoding: $0, as: UTF8.self) } ?? "{}") + "\n"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: line)), promise: nil)
        // The handlers behind (a glue) read only once their partner is there: ask for the answer.
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .open where released:
            context.fireChannelRead(data)
        case .open:
            var bytes = unwrapInboundIn(data)
            if held == nil { held = context.channel.allocator.buffer(capacity: bytes.readableBytes) }
            held?.writeBuffer(&bytes)
        case .done:
            return
        case .waiting:
            var bytes = unwrapInboundIn(data)
            buffer.writeBuffer(&bytes)
            guard let line = ClusterWire.takeLine(&buffer) else {
                if buffer.readableBytes > ClusterWire.maxAnswer {
                    fail(context, TeleportError.connectionProblem("leaf cluster \(cluster) sent too long an answer"))
                }
                return
            }
            let text: String
            do {
                text = try ClusterWire.parseAnswer(line, cluster: cluster)
            } catch {
                return fail(context, error)
            }
            if keepOpen {
                state = .open
                if buffer.readableBytes > 0 { held = buffer.readSlice(length: buffer.readableBytes) }
            } else {
                state = .done
            }
            answered.succeed(text)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if state == .waiting { context.read() }
        if state == .open, released { context.fireChannelReadComplete() }
    }

    func read(context: ChannelHandlerContext) {
        guard state == .open, !released else { return context.read() }
        // The first read comes while the user's side of the pipe is being set up (the glue's
        // partner asks as soon as it is added, before the handlers around it are): pass the kept
        // bytes on, and read more, on the next turn of the loop, never from inside that set-up.
        released = true
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let context = bound.value
            if let pending = self.held, pending.readableBytes > 0 {
                self.held = nil
                context.fireChannelRead(self.wrapInboundOut(pending))
                context.fireChannelReadComplete()
            }
            if self.heldEOF { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if state == .waiting {
            state = .done
            answered.fail(TeleportError.connectionProblem("the proxy of leaf cluster \(cluster) closed the channel without an answer"))
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            if state == .waiting {
                state = .done
                answered.fail(TeleportError.connectionProblem("the proxy of leaf cluster \(cluster) closed the channel without an answer"))
                context.close(promise: nil)
                return
            }
            if state == .open, !released {
                heldEOF = true
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func fail(_ context: ChannelHandlerContext, _ error: any Error) {
        state = .done
        answered.fail(error)
        context.close(promise: nil)
    }
}
