import Foundation
public import Logging
public import NIOCore
import NIOPosix
public import NIOSSL
import NIOSSH
import NIOTLS
import Synchronization
public import TeleportAPI
import TeleportAuthClient
import TeleportSSH

/// The agent's end of a reverse tunnel: dials the proxy's tunnel address, holds the tunnel open
/// (keepalives), redials with backoff (``ReconnectMachine``), and serves the channels the proxy
/// opens to one of its registered ``TunnelService``s. A channel naming anything else (an
/// address, an unknown service) is refused.
public final class ReverseTunnelAgent: Sendable {
    /// Serves one tunnel channel (a `ByteBuffer` channel) whose client is `originator`.
    public typealias ServiceHandler = @Sendable (_ channel: any Channel, _ originator: SocketAddress?) -> EventLoopFuture<Void>

    /// What the agent needs.
    public struct Configuration: Sendable {
        /// This host's UUID (the certificate's).
        public var hostUUID: String
        /// The cluster (the proxy's certificate must be of it).
        public var clusterName: String
        /// The proxy's tunnel address.
        public var proxyHost: String
        /// The proxy's tunnel port.
        public var proxyPort: Int
        /// The mTLS client context (``TunnelTLS/clientTLSContext(certificatePEM:keyPEM:trustedCAPEMs:)``).
        public var tlsContext: NIOSSLContext
        /// When set, replaces ``tlsContext`` for each dial (the host identity renewed during a CA rotation).
        public var contextSource: TLSContextSource?
        /// The services this agent offers.
        public var services: [TunnelService: ServiceHandler]
        /// Backoff and keepalive settings.
        public var reconnect = ReconnectMachine.Settings()
        /// Asked before each dial for the tunnel address (proxy discovery through
        /// `/webapi/ping`); nil dials ``proxyHost``:``proxyPort``.
        public var resolveTarget: (@Sendable () async throws -> (host: String, port: Int))?
        /// The cluster's proxies (their host UUIDs, from their presence records). When set, the
        /// agent keeps a tunnel to each of them through the one address (``ProxyPool``); nil
        /// keeps one tunnel.
        public var discoverProxies: (@Sendable () async throws -> [String])?
        /// How often ``discoverProxies`` is asked.
        public var discoveryInterval: Duration = .seconds(5)
        /// Backoff of dials that seek another proxy.
        public var pool = ProxyPool.Settings()

        /// Creates a configuration.
        public init(
            hostUUID: String, clusterName: String, proxyHost: String, proxyPort: Int, tlsContext: NIOSSLContext,
            services: [TunnelService: ServiceHandler]
        ) {
            self.hostUUID = hostUUID
            self.clusterName = clusterName
            self.proxyHost = proxyHost
            self.proxyPort = proxyPort
            self.tlsContext = tlsContext
            self.services = services
        }

        /// A copy that asks `resolve` for the tunnel address before each dial.
        public func resolving(_ resolve: (@Sendable () async throws -> (host: String, port: Int))?) -> Configuration {
            var copy = self
            copy.resolveTarget = resolve
            return copy
        }

        /// A copy with these backoff and keepalive settings.
        public func reconnecting(_ settings: ReconnectMachine.Settings) -> Configuration {
            var copy = self
            copy.reconnect = settings
            return copy
        }
    }

    let configuration: Configuration
    let logger: Logger
    /// Set once the agent's own process stops accepting (it drains for a graceful restart, or
    /// stops): no new dial; each tunnel closes once it carries no channel.
    let retired = Mutex(false)
    /// The open tunnels (what ``retire()`` reaches).
    let live = Mutex<[ObjectIdentifier: TunnelUse]>([:])

    /// Creates the agent.
    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// The agent's one raw TCP dial (an HTTP CONNECT proxy plugs in here).
    static func dialTCP(host: String, port: Int) async throws -> any Channel {
        // Through an HTTP CONNECT proxy when HTTPS_PROXY/NO_PROXY say so, as the auth API does.
        try await OutboundDial.connect(
            host: host, port: port, proxies: try OutboundDial.processProxies(), connectTimeout: .seconds(10)
        ) { channel in
            channel.setOption(.tcpOption(.tcp_nodelay), value: 1)
                .flatMap { channel.setOption(.socketOption(.so_keepalive), value: 1) }
                .map { channel }
        }
    }

    /// The agent's own process stops accepting (it drains for a graceful restart, or stops): the
    /// agent dials no more, and each tunnel closes once it carries no channel (a session open on
    /// it goes on). The new process's agent, with the same host UUID, is the host's tunnel from now on.
    public func retire() {
        let uses = retired.withLock { retired in
            retired = true
            return live.withLock { Array($0.values) }
        }
        if !uses.isEmpty { logger.info("this process stops accepting: its reverse tunnels close once their sessions end") }
        for use in uses { use.retire() }
    }

    /// Whether ``retire()`` was called.
    var isRetired: Bool { retired.withLock { $0 } }

    /// Waits, without dialling, until the task is cancelled (a retired agent).
    static func untilCancelled() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: .seconds(3600)) } catch { return }
        }
    }

    /// Keeps a tunnel open (with ``Configuration/discoverProxies``, one to every proxy) until
    /// the task is cancelled. When this process stops accepting (``ListenerSockets``), the agent retires.
    public func run() async {
        let token = await ListenerSockets.shared.onStopAccepting { [self] in retire() }
        defer { ListenerSockets.shared.unregister(token) }
        if let discover = configuration.discoverProxies {
            await runPool(discover: discover)
            return
        }
        await withTaskGroup(of: Void.self) { group in
            await runOne(group: &group)
            group.cancelAll()
        }
    }

    /// One tunnel: dial, hold, redial. A tunnel whose proxy drains is held on by a child task in
    /// `group` (its keepalives) until its channels end, while the loop dials again.
    func runOne(group: inout TaskGroup<Void>) async {
        let clock = ContinuousClock()
        let origin = clock.now
        let now: @Sendable () -> Duration = { clock.now - origin }
        var machine = ReconnectMachine(settings: configuration.reconnect)
        var action = machine.start(now: now())
        var announcedFailure = false
        while !Task.isCancelled {
            switch action {
            case .wait(let duration):
                do { try await Task.sleep(for: duration) } catch { return }
                action = machine.tick(now: now())
            case .dial where isRetired:
                await Self.untilCancelled()
                return
            case .dial:
                // The address actually dialled (discovery may move it), for the log lines.
                var target = (host: configuration.proxyHost, port: configuration.proxyPort)
                let tunnel: Tunnel
                do {
                    target = try await resolvedTarget()
                    tunnel = try await connect(to: target)
                } catch {
                    action = machine.dialFailed(now: now())
                    let level: Logger.Level = announcedFailure ? .debug : .warning
                    announcedFailure = true
                    logger.log(
                        level: level, "cannot open the reverse tunnel; retrying",
                        metadata: [
                            "tp.proxy": "\(HostPort.join(target.host, target.port))",
                            "tp.error": "\((error as? TeleportError)?.message ?? "\(error)")",
                        ])
                    continue
                }
                announcedFailure = false
                machine.connected(now: now())
                logger.info(
                    "reverse tunnel to the proxy is up",
                    metadata: ["tp.proxy": "\(HostPort.join(target.host, target.port))"])
                action = await hold(tunnel, machine: &machine, now: now, returnOnDrain: true)
                if tunnel.use.isDraining, tunnel.channel.isActive {
                    logger.info(
                        "the proxy drains (a graceful restart); dialling again, keeping this tunnel for its \(tunnel.use.openChannels) open channel(s)",
                        metadata: ["tp.proxy": "\(HostPort.join(target.host, target.port))"])
                    let settings = configuration.reconnect
                    group.addTask { [self] in
                        var draining = ReconnectMachine(settings: settings)
                        draining.connected(now: now())
                        _ = await hold(tunnel, machine: &draining, now: now)
                    }
                }
            case .sendKeepalive, .close:
                action = machine.tick(now: now())
            }
        }
    }

    /// Runs keepalives on an open tunnel until it closes or the proxy falls silent; returns the
    /// next action (a jittered wait before redialling). With `returnOnDrain`, also returns (a short
    /// wait, ``ReconnectMachine/drained(now:)``) once the proxy announced that it drains, leaving
    /// the tunnel open for its channels (it closes itself when they end).
    func hold(_ tunnel: Tunnel, machine: inout ReconnectMachine, now: () -> Duration, returnOnDrain: Bool = false) async -> ReconnectMachine.Action {
        let heard = Mutex<Duration?>(nil)
        let closed = Mutex(false)
        tunnel.channel.closeFuture.whenComplete { _ in closed.withLock { $0 = true } }
        var keepOpen = false
        defer { if !keepOpen { tunnel.channel.close(promise: nil) } }
        while !Task.isCancelled {
            if returnOnDrain, tunnel.use.isDraining, !closed.withLock({ $0 }) {
                keepOpen = true
                return machine.drained(now: now())
            }
            if closed.withLock({ $0 }) {
                logger.info("the reverse tunnel closed; redialling")
                return machine.disconnected(now: now())
            }
            if let at = heard.withLock({ value -> Duration? in defer { value = nil }; return value }) { machine.heard(now: at) }
            switch machine.tick(now: now()) {
            case .close:
                logger.warning("the proxy missed \(machine.settings.missedKeepalives) keepalives; closing the tunnel and redialling")
                return machine.disconnected(now: now())
            case .sendKeepalive:
                let reply = tunnel.sendKeepalive()
                let stamp = now()
                reply.whenSuccess { _ in heard.withLock { $0 = stamp } }
            case .wait(let duration):
                // Wake up at least every 200 ms to notice a closed tunnel.
                try? await Task.sleep(for: min(duration, .milliseconds(200)))
            case .dial:
                return .dial
            }
        }
        return .wait(.zero)
    }

    /// An open tunnel.
    struct Tunnel: Sendable {
        let channel: any Channel
        let handler: NIOLoopBound<NIOSSHHandler>
        /// The proxy's host UUID (from its certificate).
        let proxyID: String
        /// Its channels and whether its proxy drains.
        let use: TunnelUse

        func sendKeepalive() -> EventLoopFuture<Void> {
            let loop = channel.eventLoop
            let handler = self.handler
            return loop.flatSubmit {
                let promise = loop.makePromise(of: GlobalRequest.TCPForwardingResponse?.self)
                handler.value.sendTCPForwardingRequest(.listen(host: TunnelWire.keepaliveHost, port: 0), promise: promise)
                return promise.futureResult.map { _ in }
            }
        }
    }

    /// The tunnel address to dial now: discovery's answer, else the configured one.
    func resolvedTarget() async throws -> (host: String, port: Int) {
        guard let resolve = configuration.resolveTarget else { return (configuration.proxyHost, configuration.proxyPort) }
        return try await resolve()
    }

    /// Dials `fixed` (or the address ``resolvedTarget()`` finds), does the mTLS and SSH handshakes,
    /// and returns the tunnel once the proxy accepted this host; throws a one-line reason
    /// otherwise. `wanted` is asked, once the proxy's certificate named it, whether to go on:
    /// false closes the connection before the login (a duplicate tunnel to a proxy already held)
    /// and throws `alreadyExists`.
    func connect(to fixed: (host: String, port: Int)? = nil, wanted: (@Sendable (String) -> Bool)? = nil) async throws -> Tunnel {
        let target: (host: String, port: Int)
        if let fixed { target = fixed } else { target = try await resolvedTarget() }
        let configuration = self.configuration
        let logger = self.logger
        let channel: any Channel
        do {
            channel = try await Self.dialTCP(host: target.host, port: target.port)
        } catch {
            throw TeleportError.connectionProblem("cannot reach the proxy's tunnel address \(HostPort.join(target.host, target.port)): \(error)")
        }
        let loop = channel.eventLoop
        let use = TunnelUse(channel: channel)
        let key = ObjectIdentifier(use)
        let retiredNow = retired.withLock { retired in
            if !retired { live.withLock { $0[key] = use } }
            return retired
        }
        if retiredNow {
            channel.close(promise: nil)
            throw TeleportError.connectionProblem("this process stops accepting: its agent opens no new tunnel")
        }
        channel.closeFuture.whenComplete { [self] _ in _ = live.withLock { $0.removeValue(forKey: key) } }
        let ready = loop.makePromise(of: Void.self)
        let handler: NIOLoopBound<NIOSSHHandler>
        let check: NIOLoopBound<ProxyCheckHandler>
        do {
            (handler, check) = try await loop.submit {
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(try NIOSSLClientHandler(context: configuration.contextSource?.current ?? configuration.tlsContext, serverHostname: nil))
                let check = ProxyCheckHandler(clusterName: configuration.clusterName, ready: ready, wanted: wanted)
                try sync.addHandler(check)
                let ssh = NIOSSHHandler(
                    role: .client(
                        SSHClientConfiguration(
                            userAuthDelegate: HostUUIDOffer(hostUUID: configuration.hostUUID), serverAuthDelegate: TLSVerifiedHost(),
                            globalRequestDelegate: DrainNoticeReceiver(use: use))),
                    allocator: channel.allocator,
                    inboundChildChannelInitializer: { child, type in
                        use.channelOpened()
                        child.closeFuture.whenComplete { _ in use.channelClosed() }
                        return Self.serve(child, type: type, services: configuration.services, logger: logger)
                    })
                let interval = configuration.reconnect.keepaliveInterval
                let seconds = interval.components.seconds * Int64(configuration.reconnect.missedKeepalives + 1)
                try sync.addHandlers([
                    IdleStateHandler(readTimeout: .seconds(seconds)), ssh, AgentReadyHandler(ready: ready),
                    TunnelEndHandler(logger: logger, what: "reverse tunnel"),
                ])
                return (NIOLoopBound(ssh, eventLoop: loop), NIOLoopBound(check, eventLoop: loop))
            }.get()
            let timeout = loop.scheduleTask(in: .seconds(30)) {
                ready.fail(TeleportError.connectionProblem("the proxy did not complete the tunnel handshake in 30 s"))
            }
            defer { timeout.cancel() }
            try await ready.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
        guard let proxyID = try? await loop.submit({ check.value.proxyID }).get() else {
            channel.close(promise: nil)
            throw TeleportError.accessDenied("the proxy's certificate named no host")
        }
        return Tunnel(channel: channel, handler: handler, proxyID: proxyID, use: use)
    }

    /// Serves a channel the proxy opened: only a `forwarded-tcpip` naming a registered service.
    static func serve(_ child: any Channel, type: SSHChannelType, services: [TunnelService: ServiceHandler], logger: Logger) -> EventLoopFuture<Void> {
        guard case .forwardedTCPIP(let forwarded) = type else {
            logger.info("refused a tunnel channel: only service channels are served")
            return child.eventLoop.makeFailedFuture(TeleportError.accessDenied("only service channels are served on a tunnel"))
        }
        guard let service = TunnelService(rawValue: forwarded.listeningHost), let handler = services[service] else {
            let offered = services.keys.map(\.rawValue).sorted().joined(separator: ", ")
            logger.info(
                "refused a tunnel channel to \(forwarded.listeningHost.debugDescription): not a service of this agent (it serves \(offered)); a tunnel never reaches an address")
            return child.eventLoop.makeFailedFuture(
                TeleportError.accessDenied("\(forwarded.listeningHost.debugDescription) is not a service of this agent"))
        }
        do {
            _ = child.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            try child.pipeline.syncOperations.addHandler(SSHChannelDataCodec())
        } catch {
            return child.eventLoop.makeFailedFuture(error)
        }
        return handler(child, forwarded.originatorAddress)
    }
}

/// Checks, once TLS is up, that the peer is a proxy of the cluster.
final class ProxyCheckHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let clusterName: String
    let ready: EventLoopPromise<Void>
    let wanted: (@Sendable (String) -> Bool)?
    /// The proxy's host UUID, once its certificate was checked.
    private(set) var proxyID: String?

    init(clusterName: String, ready: EventLoopPromise<Void>, wanted: (@Sendable (String) -> Bool)? = nil) {
        self.clusterName = clusterName
        self.ready = ready
        self.wanted = wanted
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            do {
                let certificate = try context.pipeline.syncOperations.nioSSL_peerCertificate()
                let proxy = try TunnelTLS.hostUUID(of: certificate, role: .proxy, clusterName: clusterName)
                proxyID = proxy
                if let wanted, !wanted(proxy) {
                    throw TeleportError.alreadyExists("this agent already holds a tunnel to proxy \(proxy)")
                }
            } catch {
                ready.fail(error)
                context.close(promise: nil)
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ready.fail(TeleportError.accessDenied("the tunnel's TLS handshake failed: \(error)"))
        context.fireErrorCaught(error)
    }

    /// The SSH handler above does not pass the end of the connection on: fail `ready` here.
    func channelInactive(context: ChannelHandlerContext) {
        ready.fail(TeleportError.accessDenied("the proxy closed the tunnel during its handshake (refused: see the proxy's log)"))
        context.fireChannelInactive()
    }
}

/// Completes `ready` when the proxy accepted the SSH login; fails it when the connection ends first.
final class AgentReadyHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    let ready: EventLoopPromise<Void>

    init(ready: EventLoopPromise<Void>) { self.ready = ready }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is UserAuthSuccessEvent { ready.succeed() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        ready.fail(TeleportError.accessDenied("the proxy closed the tunnel during its handshake (refused: see the proxy's log)"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ready.fail(TeleportError.connectionProblem("the tunnel failed during its handshake: \(error)"))
        context.fireErrorCaught(error)
    }
}

/// Offers the host UUID as the SSH user (once).
final class HostUUIDOffer: NIOSSHClientUserAuthenticationDelegate, @unchecked Sendable {
    let hostUUID: String
    private var offered = false

    init(hostUUID: String) { self.hostUUID = hostUUID }

    func nextAuthenticationType(
        availableMethods: NIOSSHAvailableUserAuthenticationMethods, nextChallengePromise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>
    ) {
        guard !offered, availableMethods.contains(.password) else {
            nextChallengePromise.succeed(nil)
            return
        }
        offered = true
        nextChallengePromise.succeed(.init(username: hostUUID, serviceName: "ssh-connection", offer: .password(.init(password: TunnelWire.password))))
    }
}

/// Accepts the multiplexer's host key: the proxy was authenticated by mutual TLS already.
struct TLSVerifiedHost: NIOSSHClientServerAuthenticationDelegate {
    func validateHostKey(hostKey: NIOSSHPublicKey, validationCompletePromise: EventLoopPromise<Void>) {
        validationCompletePromise.succeed()
    }
}
