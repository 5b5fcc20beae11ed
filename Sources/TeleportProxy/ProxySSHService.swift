public import Foundation
public import Logging
import NIOCore
import NIOPosix
import NIOSSH
public import ServiceLifecycle
public import TeleportAPI
public import TeleportAuthClient
public import TeleportCrypto
public import TeleportSSH
public import TeleportTunnel

/// The proxy's SSH listener (`proxy_service.listen_addr`, 3023). Users authenticate as on a node;
/// then a `proxy:HOST:PORT[@CLUSTER]` subsystem (the seed's OpenSSH `ProxyCommand`) or a
/// `direct-tcpip` channel (`ssh -J`, `tsh ssh`) is connected to a *registered* node. The proxy pipes
/// the bytes: the user's SSH session is end to end with the node, which does its own checks.
public struct ProxySSHService: Service, CustomStringConvertible {
    let host: String
    let port: Int
    let hostKey: OpenSSHPrivateKey
    let cache: UserCertificateCache
    let resolver: NodeResolver
    let audit: SSHAudit?
    let logger: Logger
    let onListening: @Sendable (Int) async -> Void
    /// `teleport.connection_limits` of this listener (nil: no limits).
    public var limiter: ConnectionLimiter?
    /// How nodes are reached: direct TCP, or their reverse tunnel.
    let dialer: any AgentDialer
    /// How leaf clusters' nodes are reached (trusted clusters; nil: `@LEAF` targets are refused).
    public var clusterRouter: ClusterRouter?

    public var description: String { "ProxySSHService(\(host):\(port))" }

    /// Creates the service.
    public init(
        host: String, port: Int, hostKey: OpenSSHPrivateKey, cache: UserCertificateCache, auth: AuthClient, clusterName: String,
        audit: SSHAudit? = nil, dialer: any AgentDialer = NodeDialer(tunnels: nil), logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.dialer = dialer
        self.audit = audit
        self.host = host
        self.port = port
        self.hostKey = hostKey
        self.cache = cache
        self.resolver = NodeResolver(auth: auth, clusterName: clusterName)
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        try await SSHServer.serve(
            host: host, port: port, configuration: configuration(), cache: cache, logger: logger, what: "proxy SSH service", listenKey: "proxy_service.listen_addr",
            onListening: onListening, shutdown: { try? await gracefulShutdown() })
    }

    func configuration() -> SSHServer.Configuration {
        let logger = self.logger
        let resolver = self.resolver
        let audit = self.audit
        let dialer = self.dialer
        let router = self.clusterRouter
        var configuration = SSHServer.Configuration(
            hostKey: hostKey, authorizer: cache,
            onAuthRefused: SSHServer.logRefusal(logger, "SSH login to the proxy"),
            channelInitializer: { channel, type, connection, user in
                switch type {
                case .session:
                    return channel.eventLoop.submit {
                        try channel.pipeline.syncOperations.addHandler(
                            ProxySubsystemHandler(
                                resolver: resolver, dialer: dialer, user: user, connection: connection, audit: audit, logger: logger, router: router))
                    }
                case .directTCPIP(let target):
                    let promise = channel.eventLoop.makePromise(of: Void.self)
                    let requested = HostPort.join(target.targetHost, target.targetPort)
                    promise.completeWithTask {
                        var wanted = try ProxyTarget.direct(host: target.targetHost, port: target.targetPort)
                        if let router {
                            // ssh -J to NODE.LEAF (or NODE@LEAF): through the leaf's tunnel.
                            wanted = await router.jumpTarget(wanted)
                            if router.isRemote(wanted) {
                                try await router.bridge(channel, to: wanted, user: user, originator: connection.remoteAddress).get()
                                return
                            }
                        }
                        let node = try await resolver.resolve(wanted)
                        logger.info("forwarding to node", metadata: ["tp.user": "\(user.username)", "tp.node": "\(node.name)"])
                        try await dialer.bridge(channel, to: node, originator: connection.remoteAddress).get()
                    }
                    return promise.futureResult.flatMapErrorThrowing { error in
                        logger.info("refused a proxy request: \((error as? TeleportError)?.message ?? "\(error)")", metadata: ["tp.user": "\(user.username)"])
                        audit?.portForward(connection, user: user, target: requested, error: error)
                        throw error
                    }
                case .forwardedTCPIP:
                    return channel.eventLoop.makeFailedFuture(TeleportError.accessDenied("unexpected channel type"))
                }
            })
        configuration.audit = audit
        configuration.connectionService = "proxy SSH"
        return limiter?.apply(to: configuration) ?? configuration
    }
}

/// Finds the registered node a client names, by host name, UUID, `NAME.CLUSTER`, or address.
/// Only registered nodes are ever dialed: a name that matches nothing is an error, never a DNS
/// lookup or a connection to an arbitrary address (no SSRF to the auth port, loopback services or
/// cloud metadata).
public struct NodeResolver: Sendable {
    let auth: AuthClient
    let clusterName: String
    let cache = NodeListCache()

    /// Creates a resolver over the cluster's node list.
    public init(auth: AuthClient, clusterName: String) {
        self.auth = auth
        self.clusterName = clusterName
    }

    /// The node `host` (with `port`, when the client gave an address) names.
    public func resolve(host requested: String, port: Int?) async throws -> ServerNode {
        let nodes = try await cache.sorted(auth: auth, by: .name).map(\.node)
        return try Self.pick(requested, port: port, from: nodes, clusterName: clusterName)
    }

    /// The node `target` names; a target for another cluster is refused, naming it (no trusted
    /// clusters yet), before any node is looked up.
    public func resolve(_ target: ProxyTarget) async throws -> ServerNode {
        try target.check(servedCluster: clusterName)
        return try await resolve(host: target.host, port: target.port)
    }

    /// The matching rules, separate for tests.
    public static func pick(_ requested: String, port: Int?, from nodes: [ServerNode], clusterName: String) throws -> ServerNode {
        var name = requested.lowercased()
        if name.hasSuffix("." + clusterName.lowercased()) { name = String(name.dropLast(clusterName.count + 1)) }
        let byName = nodes.filter { $0.spec.hostname.lowercased() == name || $0.name.lowercased() == name }
        let matches: [ServerNode]
        if !byName.isEmpty {
            matches = byName
        } else {
            matches = nodes.filter { node in
                guard let address = try? HostPort.parse(node.spec.addr, defaultPort: 3022, key: "addr") else { return false }
                return address.host.lowercased() == name && (port == nil || port == 0 || address.port == port)
            }
        }
        switch matches.count {
        case 1:
            return matches[0]
        case 0:
            throw TeleportError.notFound(
                "no registered node is named or addressed \(requested.debugDescription) in cluster \(clusterName); tsh ls lists the nodes")
        default:
            let list = matches.map { "\($0.spec.hostname) (\($0.name), \($0.spec.addr))" }.joined(separator: ", ")
            throw TeleportError.badParameter(
                "\(requested.debugDescription) matches \(matches.count) nodes: \(list); use the node's UUID instead")
        }
    }
}

/// A proxy `session` channel: waits for the `proxy:HOST:PORT[@CLUSTER]` subsystem request, then
/// connects the channel to that node. Data the client sends meanwhile is held (up to 1 MiB).
final class ProxySubsystemHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = SSHChannelData
    typealias InboundOut = SSHChannelData
    typealias OutboundIn = SSHChannelData
    typealias OutboundOut = SSHChannelData

    let resolver: NodeResolver
    let dialer: any AgentDialer
    let user: SSHAuthenticatedUser
    let connection: SSHConnectionInfo
    let audit: SSHAudit?
    let logger: Logger
    let router: ClusterRouter?
    private var requested = ""
    private var held: [SSHChannelData] = []
    private var heldEOF = false
    private var heldBytes = 0
    private var state = State.waiting

    enum State { case waiting, connecting, connected }

    init(
        resolver: NodeResolver, dialer: any AgentDialer, user: SSHAuthenticatedUser, connection: SSHConnectionInfo, audit: SSHAudit?, logger: Logger,
        router: ClusterRouter? = nil
    ) {
        self.router = router
        self.resolver = resolver
        self.dialer = dialer
        self.user = user
        self.connection = connection
        self.audit = audit
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state != .connected else { return context.fireChannelRead(data) }
        let message = unwrapInboundIn(data)
        heldBytes += message.data.readableBytes
        guard heldBytes <= 1 << 20 else {
            context.close(promise: nil)
            return
        }
        held.append(message)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard state == .waiting, let request = event as? SSHChannelRequestEvent.SubsystemRequest else {
            if state == .connected { context.fireUserInboundEventTriggered(event) }
            if let channelEvent = event as? ChannelEvent, channelEvent == .inputClosed, state != .connected {
                heldEOF = true
            }
            return
        }
        let target: ProxyTarget
        requested = request.subsystem
        do {
            target = try Self.parseSubsystem(request.subsystem)
        } catch {
            return refuse(context, request.wantReply, error)
        }
        state = .connecting
        let resolver = self.resolver
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let (sshSide, tcpSide) = GlueHandler.matchedPair()
        let sshBound = NIOLoopBound(sshSide, eventLoop: loop)
        let tcpBound = NIOLoopBound(tcpSide, eventLoop: loop)
        let connecting: EventLoopFuture<any Channel>
        if let router, router.isRemote(target) {
            // A leaf cluster's node: through the leaf's tunnel (trusted clusters).
            connecting = router.dial(target, user: user, originator: connection.remoteAddress, on: loop, with: tcpBound.value)
                .hop(to: loop)
        } else {
            let promise = context.eventLoop.makePromise(of: ServerNode.self)
            promise.completeWithTask { try await resolver.resolve(target) }
            connecting = promise.futureResult.flatMap { node -> EventLoopFuture<any Channel> in
                self.logger.info("proxying to node", metadata: ["tp.user": "\(self.user.username)", "tp.node": "\(node.name)"])
                return self.dialer.dial(node, service: .nodeSSH, originator: self.connection.remoteAddress, on: loop, with: tcpBound.value)
                    .hop(to: loop)
            }
        }
        connecting.whenComplete { result in
            let context = loopContext.value
            switch result {
            case .failure(let error):
                self.refuse(context, request.wantReply, error)
            case .success(let tcp):
                self.connected(context, tcp: tcp, sshSide: sshBound.value, wantReply: request.wantReply)
            }
        }
    }

    private func connected(_ context: ChannelHandlerContext, tcp: any Channel, sshSide: GlueHandler, wantReply: Bool) {
        state = .connected
        if wantReply { context.triggerUserOutboundEvent(ChannelSuccessEvent(), promise: nil) }
        do {
            _ = context.channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            // One at a time, codec first: `addHandlers(_:position: .after)` inserts in reverse, so the
            // glue would be added (and read what the node sent already, writing it out) before the
            // codec that turns its bytes into channel data is in place.
            let codec = SSHChannelDataCodec()
            try context.pipeline.syncOperations.addHandler(codec, position: .after(self))
            try context.pipeline.syncOperations.addHandler(sshSide, position: .after(codec))
        } catch {
            tcp.close(promise: nil)
            context.close(promise: nil)
            return
        }
        let pending = held
        held.removeAll()
        for item in pending { context.fireChannelRead(wrapInboundOut(item)) }
        context.fireChannelReadComplete()
        if heldEOF { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        context.read()
    }

    private func refuse(_ context: ChannelHandlerContext, _ wantReply: Bool, _ error: any Error) {
        let text = (error as? TeleportError)?.message ?? "\(error)"
        logger.info("refused a proxy request: \(text)", metadata: ["tp.user": "\(user.username)"])
        audit?.portForward(connection, user: user, target: requested, error: error)
        let bytes = context.channel.allocator.buffer(string: "\(text)\r\n")
        context.writeAndFlush(wrapOutboundOut(SSHChannelData(type: .stdErr, data: .byteBuffer(bytes))), promise: nil)
        if wantReply { context.triggerUserOutboundEvent(ChannelFailureEvent(), promise: nil) }
        context.close(promise: nil)
    }

    /// `proxy:HOST:PORT[@CLUSTER]` (the port may be omitted; IPv6 in brackets).
    static func parseSubsystem(_ subsystem: String) throws -> ProxyTarget {
        guard subsystem.hasPrefix("proxy:") else {
            throw TeleportError.badParameter("unknown subsystem \(subsystem.debugDescription); the proxy serves proxy:HOST:PORT")
        }
        return try ProxyTarget.parse(String(subsystem.dropFirst("proxy:".count)))
    }
}
