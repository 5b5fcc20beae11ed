import Crypto
import Foundation
public import Logging
public import NIOCore
import NIOPosix
public import NIOSSL
import NIOSSH
import NIOTLS
import Synchronization
public import TeleportAPI
public import TeleportSSH

/// The proxy's end of reverse tunnels. An agent connects with mutual TLS (its host certificate,
/// role `Node`); inside runs SSH, used as a flow-controlled multiplexer with the agent as the SSH
/// client: it authenticates as its host UUID (which must be the certificate's), sends keepalives,
/// and the proxy opens `forwarded-tcpip` channels naming a ``TunnelService`` of the agent.
///
/// Connections come from ``listen(host:port:)`` (`proxy_service.tunnel_listen_addr`) or from the
/// web port's ALPN router through ``configure(channel:)``.
public final class ReverseTunnelServer: Sendable {
    /// What the server needs.
    public struct Configuration: Sendable {
        /// The cluster whose nodes may connect.
        public var clusterName: String
        /// The mTLS server context (``TunnelTLS/serverTLSContext(certificatePEM:keyPEM:trustedCAPEMs:)``).
        public var tlsContext: NIOSSLContext
        /// When set, replaces ``tlsContext`` for each new connection (the proxy's identity and
        /// trusted CAs follow a CA rotation).
        public var contextSource: TLSContextSource?
        /// The context for a new connection.
        public var currentTLSContext: NIOSSLContext { contextSource?.current ?? tlsContext }
        /// How often agents send keepalives; an agent silent for three intervals is dropped.
        public var keepaliveInterval: TimeAmount = .seconds(30)
        /// Called for every refused tunnel (the log line is written already): the audit hook.
        public var onRefused: @Sendable (_ remote: String, _ reason: String) -> Void = { _, _ in }
        /// Asked before a tunnel is accepted: a reason to refuse `hostUUID` (a lock), or nil.
        public var admit: @Sendable (_ hostUUID: String) async -> String? = { _ in nil }
        /// Called when a tunnel is established.
        public var onConnected: @Sendable (_ hostUUID: String) -> Void = { _ in }
        /// Called when an established tunnel closes.
        public var onDisconnected: @Sendable (_ hostUUID: String) -> Void = { _ in }
        /// Trusted clusters (issue 20): when set, the proxies of the leaf clusters it names may
        /// open cluster tunnels (``ReverseTunnelServer/clusters``); see ``ClusterTunnelTrust``.
        public var clusterTrust: ClusterTunnelTrust?
        /// Called when a leaf cluster's tunnel is established (by cluster name).
        public var onClusterConnected: @Sendable (_ cluster: String) -> Void = { _ in }
        /// Called when a leaf cluster's tunnel closes.
        public var onClusterDisconnected: @Sendable (_ cluster: String) -> Void = { _ in }
        /// For this long after the proxy began accepting (``startedAccepting()``), a channel to an
        /// agent without a tunnel waits for one (at most ``tunnelWait``) before it fails: after a
        /// graceful restart the agents of the old process dial the new one only once the old one
        /// stopped accepting and told them it drains.
        public var youngFor: Duration = .seconds(30)
        /// How long a young proxy waits for a missing tunnel.
        public var tunnelWait: Duration = .seconds(10)

        /// Creates a configuration.
        public init(clusterName: String, tlsContext: NIOSSLContext) {
            self.clusterName = clusterName
            self.tlsContext = tlsContext
        }
    }

    /// The live tunnels of this cluster's agents.
    public let registry = TunnelRegistry()
    /// The live tunnels of leaf clusters' proxies, by cluster name (kept apart: a leaf can never
    /// shadow an agent, and the node sweep of ``registry`` does not see them).
    public let clusters = TunnelRegistry()
    let configuration: Configuration
    let logger: Logger
    let hostKey: NIOSSHPrivateKey
    /// When this proxy began accepting (nil: not marked; a missing tunnel fails at once).
    let acceptingSince = Mutex<ContinuousClock.Instant?>(nil)

    /// Creates the server; `hostKey` is the SSH host key of the multiplexer (the TLS layer
    /// authenticates the proxy, so an ephemeral key is fine).
    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.hostKey = NIOSSHPrivateKey(ed25519Key: Curve25519.Signing.PrivateKey())
    }

    /// Builds the proxy's mTLS server context from its identity (see ``TunnelTLS``).
    public static func serverTLSContext(certificatePEM: String, keyPEM: String, trustedCAPEMs: [String]) throws -> NIOSSLContext {
        try TunnelTLS.serverTLSContext(certificatePEM: certificatePEM, keyPEM: keyPEM, trustedCAPEMs: trustedCAPEMs)
    }

    /// Listens on `host:port` (TLS terminated here) until the returned channel is closed.
    public func listen(host: String, port: Int) async throws -> any Channel {
        let configuration = self.configuration
        return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 512)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                countConnection("proxy tunnel", channel)
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLServerHandler(context: configuration.currentTLSContext))
                    try sync.addHandler(
                        HandshakeThen(
                            onFailure: { remote, error in
                                self.refuse(remote: remote, reason: "TLS handshake failed: \(error) (a certificate of another cluster, or no host certificate?)")
                            }, then: { channel in self.configure(channel: channel) }))
                }
            }
            .bindInheritable(host: host, port: port)
    }

    /// Takes over a connection whose TLS server handler was just added and has not finished its
    /// handshake (the web port's ALPN router, route `teleport-reversetunnel`): once the mutual TLS
    /// handshake completes, ``configure(channel:)``; a failed handshake is refused and logged.
    public func adoptAfterHandshake(channel: any Channel) -> EventLoopFuture<Void> {
        let loop = channel.eventLoop
        let add = { [self] () -> EventLoopFuture<Void> in
            loop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    HandshakeThen(
                        onFailure: { remote, error in
                            self.refuse(remote: remote, reason: "TLS handshake failed: \(error) (a certificate of another cluster, or no host certificate?)")
                        }, then: { channel in self.configure(channel: channel) }))
            }
        }
        if loop.inEventLoop { return add() }
        return loop.flatSubmit(add)
    }

    /// Takes over a connection whose mutual TLS handshake is complete (the TLS handler is in
    /// the pipeline): checks the agent's certificate, then runs the SSH multiplexer on it.
    ///
    /// Call it on the channel's event loop before any application data is read (the handlers are
    /// then added at once); from elsewhere it hops to the loop.
    public func configure(channel: any Channel) -> EventLoopFuture<Void> {
        let loop = channel.eventLoop
        if loop.inEventLoop { return configureOnLoop(channel) }
        return loop.flatSubmit { self.configureOnLoop(channel) }
    }

    private func configureOnLoop(_ channel: any Channel) -> EventLoopFuture<Void> {
        let loop = channel.eventLoop
        return { [self] () -> EventLoopFuture<Void> in
            let remote = Self.describe(channel.remoteAddress)
            let peer: TunnelPeer
            do {
                let certificate = try channel.pipeline.syncOperations.nioSSL_peerCertificate()
                // Nodes and database services behind NAT (one agent per host UUID); with trusted
                // clusters, also the proxies of leaf clusters (one tunnel per leaf).
                peer = try identify(certificate)
            } catch {
                refuse(remote: remote, reason: (error as? TeleportError)?.message ?? "\(error)")
                return channel.close()
            }
            let hostUUID: String
            switch peer {
            case .agent(let host), .cluster(_, let host): hostUUID = host
            }
            let configuration = self.configuration
            let logger = self.logger
            let handlerBox = NIOLoopBoundBox<NIOSSHHandler?>(nil, eventLoop: loop)
            let registerTunnel = register(peer, channel: channel, remote: remote)
            let auth = TunnelUserAuth(
                expected: hostUUID, admit: admission(for: peer),
                onAccepted: {
                    guard let handler = handlerBox.value else { return }
                    registerTunnel(NIOLoopBound(handler, eventLoop: loop))
                },
                onRefused: { [self] reason in
                    refuse(remote: remote, reason: reason)
                    channel.close(promise: nil)
                })
            let ssh = NIOSSHHandler(
                role: .server(SSHServerConfiguration(hostKeys: [hostKey], userAuthDelegate: auth, globalRequestDelegate: KeepaliveResponder())),
                allocator: channel.allocator,
                inboundChildChannelInitializer: { child, _ in
                    child.eventLoop.makeFailedFuture(TeleportError.accessDenied("an agent opens no channels on its tunnel"))
                })
            handlerBox.value = ssh
            let interval = configuration.keepaliveInterval
            do {
                try channel.pipeline.syncOperations.addHandlers([
                    IdleStateHandler(readTimeout: TimeAmount.nanoseconds(interval.nanoseconds * 3)), ssh,
                    TunnelEndHandler(logger: logger, what: "reverse tunnel of \(hostUUID)"),
                ])
            } catch {
                return loop.makeFailedFuture(error)
            }
            return loop.makeSucceededVoidFuture()
        }()
    }

    /// Opens a channel to `service` of the agent `hostUUID`; the channel carries `ByteBuffer`s
    /// (half-close maps to SSH EOF). `handlers` adds the caller's handlers before any data flows.
    public func openChannel(
        to hostUUID: String, service: TunnelService, originator: SocketAddress?,
        handlers: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        open(to: hostUUID, listeningHost: service.rawValue, originator: originator, handlers: handlers)
    }

    /// Marks the moment this proxy began accepting (its listeners, after a graceful restart's
    /// hand-over): for ``Configuration/youngFor`` from now a missing tunnel is waited for.
    public func startedAccepting() {
        acceptingSince.withLock { $0 = ContinuousClock.now }
    }

    /// How long a channel to an agent without a tunnel waits for one now: ``Configuration/tunnelWait``
    /// while the proxy is young, else nil (fail at once).
    var waitForMissingTunnel: Duration? {
        guard let since = acceptingSince.withLock({ $0 }), ContinuousClock.now - since < configuration.youngFor else { return nil }
        return configuration.tunnelWait
    }

    /// Tells every agent (and leaf cluster proxy) with a tunnel here that this proxy drains (a
    /// `tcpip-forward` global request for ``TunnelWire/drainingHost``): each dials again, which
    /// reaches the new process, and keeps this tunnel only for its open channels. Call it once
    /// every listener stopped accepting. Returns how many were told.
    @discardableResult
    public func announceDraining() -> Int {
        let tunnels = registry.handlers + clusters.handlers
        for tunnel in tunnels {
            let handler = tunnel.handler
            tunnel.channel.eventLoop.execute {
                handler.value.sendTCPForwardingRequest(.listen(host: TunnelWire.drainingHost, port: 0), promise: nil)
            }
        }
        if !tunnels.isEmpty {
            logger.info("draining: told \(tunnels.count) reverse tunnel agent(s) to dial the new process; their open channels go on")
        }
        return tunnels.count
    }

    /// Opens a `forwarded-tcpip` channel naming `listeningHost` (tests use it to name what no
    /// proxy code would: an address).
    func open(
        to hostUUID: String, listeningHost: String, listeningPort: Int = 0, originator: SocketAddress?,
        handlers: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        if let entry = registry.entry(hostUUID) {
            return open(on: entry, to: hostUUID, listeningHost: listeningHost, listeningPort: listeningPort, originator: originator, handlers: handlers)
        }
        let missing = TeleportError.connectionProblem(
            "node \(hostUUID) is reached through a reverse tunnel but has none to this proxy now (is its teleport running and able to reach the proxy?)")
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        guard let wait = waitForMissingTunnel else { return loop.makeFailedFuture(missing) }
        // A young proxy (just started, maybe by a graceful restart): the agent is likely dialling.
        logger.debug("no reverse tunnel of \(hostUUID) yet; waiting at most \(wait) for it (this proxy started accepting recently)")
        return registry.whenConnected(hostUUID, within: .nanoseconds(wait.components.seconds * 1_000_000_000 + wait.components.attoseconds / 1_000_000_000), on: loop).flatMap { [self] entry in
            guard let entry else { return loop.makeFailedFuture(missing) }
            return open(on: entry, to: hostUUID, listeningHost: listeningHost, listeningPort: listeningPort, originator: originator, handlers: handlers)
        }
    }

    /// Opens the channel on the tunnel `entry`.
    func open(
        on entry: TunnelRegistry.Entry, to hostUUID: String, listeningHost: String, listeningPort: Int, originator: SocketAddress?,
        handlers: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        let loop = entry.channel.eventLoop
        let from = originator ?? (try? SocketAddress(ipAddress: "0.0.0.0", port: 0))
        return loop.flatSubmit {
            guard let from else { return loop.makeFailedFuture(TeleportError.badParameter("no originator address")) }
            let promise = loop.makePromise(of: (any Channel).self)
            let type = SSHChannelType.forwardedTCPIP(.init(listeningHost: listeningHost, listeningPort: listeningPort, originatorAddress: from))
            let count = entry.channels
            entry.handler.value.createChannel(promise, channelType: type) { child, _ in
                count.opened()
                child.closeFuture.whenComplete { _ in count.closed() }
                return child.eventLoop.makeCompletedFuture {
                    _ = child.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                    try child.pipeline.syncOperations.addHandler(SSHChannelDataCodec())
                    try handlers(child)
                }
            }
            return promise.futureResult.flatMapErrorThrowing { error in
                if error is TeleportError { throw error }
                throw TeleportError.connectionProblem("node \(hostUUID) refused a tunnel channel to \(listeningHost.debugDescription): \(error)")
            }
        }
    }

    func refuse(remote: String, reason: String) {
        logger.info("reverse tunnel refused: \(reason)", metadata: ["tp.remote": "\(remote)"])
        configuration.onRefused(remote, reason)
    }

    static func describe(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress else { return "-" }
        return HostPort.join(ip, address.port ?? 0)
    }
}

/// Accepts the tunnel's SSH login only for the certificate's host UUID (the password is a
/// constant: the TLS layer proved who the agent is).
final class TunnelUserAuth: NIOSSHServerUserAuthenticationDelegate, @unchecked Sendable {
    let expected: String
    let admit: @Sendable (String) async -> String?
    let onAccepted: () -> Void
    let onRefused: (String) -> Void

    init(expected: String, admit: @escaping @Sendable (String) async -> String?, onAccepted: @escaping () -> Void, onRefused: @escaping (String) -> Void) {
        self.expected = expected
        self.admit = admit
        self.onAccepted = onAccepted
        self.onRefused = onRefused
    }

    var supportedAuthenticationMethods: NIOSSHAvailableUserAuthenticationMethods { .password }

    func requestReceived(request: NIOSSHUserAuthenticationRequest, responsePromise: EventLoopPromise<NIOSSHUserAuthenticationOutcome>) {
        guard request.username == expected else {
            responsePromise.succeed(.failure)
            onRefused("SSH user \(request.username.debugDescription) is not the certificate's host UUID \(expected)")
            return
        }
        let loop = responsePromise.futureResult.eventLoop
        let admit = self.admit
        let expected = self.expected
        let decided = loop.makePromise(of: String?.self)
        decided.completeWithTask { await admit(expected) }
        decided.futureResult.whenComplete { result in
            if case .success(let reason?) = result {
                responsePromise.succeed(.failure)
                self.onRefused("node \(expected): \(reason)")
            } else {
                responsePromise.succeed(.success)
                self.onAccepted()
            }
        }
    }
}

/// Answers the agent's keepalives (a `tcpip-forward` request for ``TunnelWire/keepaliveHost``,
/// never bound); refuses every real forwarding request.
struct KeepaliveResponder: GlobalRequestDelegate {
    func tcpForwardingRequest(
        _ request: GlobalRequest.TCPForwardingRequest, handler: NIOSSHHandler,
        promise: EventLoopPromise<GlobalRequest.TCPForwardingResponse>
    ) {
        if case .listen(let host, _) = request, host == TunnelWire.keepaliveHost {
            promise.succeed(.init(boundPort: nil))
        } else {
            promise.fail(TeleportError.accessDenied("no port forwarding on a tunnel"))
        }
    }
}

/// Runs `then` once the TLS handshake completed, and removes itself.
final class HandshakeThen: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let onFailure: (_ remote: String, _ error: any Error) -> Void
    let then: (any Channel) -> EventLoopFuture<Void>
    private var failed = false

    init(onFailure: @escaping (String, any Error) -> Void, then: @escaping (any Channel) -> EventLoopFuture<Void>) {
        self.onFailure = onFailure
        self.then = then
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            let channel = context.channel
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
            _ = then(channel)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !failed {
            failed = true
            onFailure(ReverseTunnelServer.describe(context.remoteAddress), error)
        }
        context.close(promise: nil)
    }
}

/// The last handler of a tunnel connection (both ends): closes on errors and on idleness (three
/// missed keepalive intervals), logging at debug level.
final class TunnelEndHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    let logger: Logger
    let what: String

    init(logger: Logger, what: String) {
        self.logger = logger
        self.what = what
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            logger.info("\(what): no keepalive for three intervals; closing it")
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("\(what): \(error)")
        context.close(promise: nil)
    }
}
