public import Logging
public import NIOCore
public import NIOPosix
public import NIOSSH
public import TeleportCrypto
import Foundation
import TeleportAPI

/// A listening SSH server built on swift-nio-ssh: public-key authentication through an
/// ``SSHUserAuthorizer``, a bound on the time and number of connections that have not yet
/// authenticated, and a per-connection handler for the channels the client opens.
///
/// The proxy (3023) and the node (3022) both use it; they differ in what their channel handlers do.
public final class SSHServer: Sendable {
    /// What the server needs to know.
    public struct Configuration: Sendable {
        /// The host key the server presents.
        public var hostKey: OpenSSHPrivateKey
        /// Who may log in.
        public var authorizer: any SSHUserAuthorizer
        /// How long a connection may take to authenticate (OpenSSH's `LoginGraceTime`).
        public var loginGraceTime: TimeAmount = .seconds(30)
        /// How many connections may be unauthenticated at once; more are closed at once.
        public var maxUnauthenticated: Int = 1000
        /// Called for every refused authentication (audit).
        public var onAuthRefused: @Sendable (_ connection: SSHConnectionInfo, _ login: String, _ key: SSHPublicKey?, _ error: any Error) -> Void
        /// Initializes each channel the client opens (only once the user authenticated: the user is
        /// given); fails the future to refuse the channel.
        public var channelInitializer: @Sendable (
            _ channel: any Channel, _ type: SSHChannelType, _ connection: SSHConnectionInfo, _ user: SSHAuthenticatedUser
        ) -> EventLoopFuture<Void>
        /// Handles global requests (`tcpip-forward`) for one connection.
        public var globalRequests: @Sendable (_ connection: SSHConnectionInfo) -> any GlobalRequestDelegate
        /// Where `auth` events go (every login, accepted or refused).
        public var audit: SSHAudit?
        /// The name its open connections are counted under (``ListenerSockets``): a graceful
        /// restart drains `node SSH` and `proxy SSH` connections before the old process stops.
        public var connectionService = "SSH"

        /// Creates a configuration.
        public init(
            hostKey: OpenSSHPrivateKey, authorizer: any SSHUserAuthorizer,
            onAuthRefused: @escaping @Sendable (SSHConnectionInfo, String, SSHPublicKey?, any Error) -> Void,
            channelInitializer: @escaping @Sendable (any Channel, SSHChannelType, SSHConnectionInfo, SSHAuthenticatedUser) -> EventLoopFuture<Void>,
            globalRequests: @escaping @Sendable (SSHConnectionInfo) -> any GlobalRequestDelegate = { _ in RefuseGlobalRequests() }
        ) {
            self.hostKey = hostKey
            self.authorizer = authorizer
            self.onAuthRefused = onAuthRefused
            self.channelInitializer = channelInitializer
            self.globalRequests = globalRequests
        }
    }

    /// The listening channel (nil for a server that only serves connections handed to it, e.g.
    /// a node reached only through its reverse tunnel).
    public let channel: (any Channel)?
    /// The bound port (useful when asked for port 0; 0 without a listener).
    public var port: Int { channel?.localAddress?.port ?? 0 }
    /// Sets up each connection's pipeline, whether it came from the listener or a tunnel.
    public let connections: SSHConnectionSetup

    /// The authenticated connections (to close those a new lock stops).
    var active: AuthenticatedConnections { connections.active }

    private init(channel: (any Channel)?, connections: SSHConnectionSetup) {
        self.channel = channel
        self.connections = connections
    }

    /// Binds `host:port` and starts accepting connections.
    public static func start(
        host: String, port: Int, configuration: Configuration, group: any EventLoopGroup, logger: Logger
    ) async throws -> SSHServer {
        let setup = SSHConnectionSetup(configuration: configuration, logger: logger)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .tcpKeepaliveOnChildren()
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                guard ConnectionLimiter.admits(channel, configuration) else { return channel.close() }
                return setup.configure(channel: channel, remoteAddress: channel.remoteAddress, localAddress: channel.localAddress)
            }
        let channel = try await bootstrap.bindInheritable(host: host, port: port)
        return SSHServer(channel: channel, connections: setup)
    }

    /// A server without a listener: connections reach it only through
    /// ``SSHConnectionSetup/configure(channel:remoteAddress:localAddress:)``.
    public static func unlistened(configuration: Configuration, logger: Logger) -> SSHServer {
        SSHServer(channel: nil, connections: SSHConnectionSetup(configuration: configuration, logger: logger))
    }

    /// Stops listening (established connections continue until they end).
    public func close() async {
        try? await channel?.close()
    }
}

/// The per-connection pipeline of an SSH server: the `NIOSSHHandler` (server role) with the
/// certificate-bound key delegate, the login grace timer, the bound on unauthenticated
/// connections, the certificate-expiry cut, close-on-FIN and the audit. It works on any channel
/// of `ByteBuffer`s: an accepted TCP connection, or a reverse-tunnel channel with a codec, whose
/// remote address is the originator the proxy named.
public final class SSHConnectionSetup: Sendable {
    let configuration: SSHServer.Configuration
    let logger: Logger
    let hostKey: NIOSSHPrivateKey
    let pending: UnauthenticatedCounter
    let active = AuthenticatedConnections()

    /// Creates the setup for a server's connections.
    public init(configuration: SSHServer.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.hostKey = SSHKeyBridge.nioPrivateKey(configuration.hostKey)
        self.pending = UnauthenticatedCounter(limit: configuration.maxUnauthenticated)
    }

    /// Adds the SSH server pipeline to `channel` (call it on the channel's event loop);
    /// `remoteAddress` is the client's address as logged, audited and checked against
    /// `source-address`.
    public func configure(channel: any Channel, remoteAddress: SocketAddress?, localAddress: SocketAddress?) -> EventLoopFuture<Void> {
        let configuration = self.configuration
        let logger = self.logger
        let pending = self.pending
        let active = self.active
        let hostKey = self.hostKey
        guard pending.enter() else {
            logger.warning("too many unauthenticated SSH connections; refusing one", metadata: ["tp.remote": "\(remoteAddress.map { "\($0)" } ?? "-")"])
            return channel.close()
        }
        let connection = SSHConnectionInfo(remoteAddress: remoteAddress, localAddress: localAddress)
        countConnection(configuration.connectionService, channel)
        configuration.audit?.connectionOpened(closed: channel.closeFuture)
        let grace = channel.eventLoop.scheduleTask(in: configuration.loginGraceTime) {
            logger.debug("SSH client did not authenticate in time", metadata: ["tp.remote": "\(connection.remoteAddress.map { "\($0)" } ?? "-")"])
            channel.close(promise: nil)
        }
        let slot = pending.slot()
        let id = ObjectIdentifier(channel)
        let expiry = NIOLoopBoundBox<Scheduled<Void>?>(nil, eventLoop: channel.eventLoop)
        connection.onAuthenticated = {
            grace.cancel()
            slot.release()
            if let user = connection.user {
                active.add(id, user: user, channel: channel, connection: connection)
                configuration.audit?.accepted(connection, user)
            }
            // A connection lives no longer than the certificate that let it in (as
            // Teleport's disconnect_expired_cert): every session on it ends then.
            if let user = connection.user, user.checked.validBefore != SSHCertificate.forever {
                let remaining = max(0, user.checked.validBefore.timeIntervalSinceNow)
                expiry.value = channel.eventLoop.scheduleTask(in: .milliseconds(Int64(remaining * 1000))) {
                    logger.info(
                        "closing an SSH connection: the user's certificate expired",
                        metadata: ["tp.user": "\(user.username)", "tp.login": "\(user.login)"])
                    channel.close(promise: nil)
                }
            }
        }
        let uncheckable = UncheckableOffers(loop: channel.eventLoop)
        IdleMemoryTrim.shared.opened()  // the last close returns freed memory to the system
        channel.closeFuture.whenComplete { _ in
            IdleMemoryTrim.shared.closed()
            let remote = ConnectionErrorHandler.describe(connection.remoteAddress)
            if connection.user == nil, let explained = uncheckable.explanation(remote: remote) {
                logger.warning("\(explained)", metadata: ["tp.remote": "\(remote)"])
            }
            grace.cancel()
            slot.release()
            expiry.value?.cancel()
            active.remove(id)
            // The callback holds the connection and the channel: break the cycle, or every
            // closed connection's channel stays in memory.
            connection.onAuthenticated = nil
        }
        let delegate = CertificateBoundKeyDelegate(
            authorizer: configuration.authorizer, connection: connection,
            onRefused: { login, key, error in
                configuration.onAuthRefused(connection, login, key, error)
                configuration.audit?.refused(connection, login: login, key: key, error: error)
            }, uncheckable: uncheckable)
        var serverConfig = SSHServerConfiguration(
            hostKeys: [hostKey], userAuthDelegate: delegate, globalRequestDelegate: configuration.globalRequests(connection))
        serverConfig.maxAuthAttempts = 6
        // Any direct-tcpip originator, not only IP literals (see OriginatorRewriting).
        serverConfig.transportProtectionSchemes = OriginatorRewriting.serverSchemes
        let ssh = NIOSSHHandler(
            role: .server(serverConfig), allocator: channel.allocator,
            inboundChildChannelInitializer: { child, type in
                guard let user = connection.user else {
                    return child.eventLoop.makeFailedFuture(TeleportError.accessDenied("not authenticated"))
                }
                return configuration.channelInitializer(child, type, connection, user)
            })
        do {
            try channel.pipeline.syncOperations.addHandlers([ssh, ConnectionErrorHandler(logger: logger, connection: connection)])
            return channel.eventLoop.makeSucceededVoidFuture()
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
    }
}

/// Refuses every global request (the default for servers without port forwarding).
public struct RefuseGlobalRequests: GlobalRequestDelegate {
    public init() {}
}

/// Counts connections that have not authenticated, up to a limit.
final class UnauthenticatedCounter: @unchecked Sendable {
    fileprivate let lock = NSLock()
    fileprivate var count = 0
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func enter() -> Bool {
        lock.withLock {
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    /// The place a connection that entered holds until it authenticates or closes.
    func slot() -> Slot { Slot(counter: self) }

    final class Slot: @unchecked Sendable {
        let counter: UnauthenticatedCounter
        private let lock = NSLock()
        private var released = false

        init(counter: UnauthenticatedCounter) { self.counter = counter }

        func release() {
            let first = lock.withLock {
                defer { released = true }
                return !released
            }
            if first { counter.lock.withLock { counter.count -= 1 } }
        }
    }
}

/// Closes a connection on an error, logging it at debug level (peers disconnect all the time), and
/// when the client closes its side of the TCP connection: SSH has its own end-of-file per channel,
/// so a TCP FIN means the client is gone (killed, or its host closed the socket). Without this the
/// connection stayed half-open in CLOSE-WAIT (the server allows remote half-closure) and its
/// sessions' processes ran on with no client, as sshd never lets them.
final class ConnectionErrorHandler: ChannelInboundHandler {
    typealias InboundIn = Any
    let logger: Logger
    /// The connection (its peer's address, taken when it was accepted: a failed channel may no
    /// longer know it; and whether it authenticated).
    let connection: SSHConnectionInfo?

    init(logger: Logger, connection: SSHConnectionInfo? = nil) {
        self.logger = logger
        self.connection = connection
    }

    /// A client that closed its half is gone: before authenticating it never can (no waiting for
    /// the login grace time); after, its sessions end as sshd ends them.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            logger.debug("SSH client closed its connection; ending its sessions", metadata: ["tp.remote": "\(context.remoteAddress.map { "\($0)" } ?? "-")"])
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let remote = Self.describe(connection?.remoteAddress ?? context.remoteAddress)
        if let explained = Self.explain(error, remote: remote) {
            logger.warning("\(explained)", metadata: ["tp.remote": "\(remote)"])
        } else {
            logger.debug("SSH connection error: \(error)", metadata: ["tp.remote": "\(remote)"])
        }
        context.close(promise: nil)
    }

    /// `IP:PORT` of a peer (`-` when unknown).
    static func describe(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress else { return address.map { "\($0)" } ?? "-" }
        return HostPort.join(ip, address.port ?? 0)
    }

    /// A one-line explanation for errors a user can fix on the client side, or nil for the rest.
    ///
    /// swift-nio-ssh 0.15.1 parses the originator of a `direct-tcpip` (and `forwarded-tcpip`)
    /// channel open as a literal IP address while decoding the message: any other originator
    /// (asyncssh's `""`, paramiko's `"localhost"`) fails the whole connection before our channel
    /// code runs. ``OriginatorRewriting`` prevents it; when it cannot (a library whose schemes it
    /// does not wrap), this is the only place the failure can be seen.
    static func explain(_ error: any Error, remote: String) -> String? {
        guard let error = error as? SocketAddressError, case .failedToParseIPString(let originator) = error else { return nil }
        return "SSH connection from \(remote) dropped: non-IP originator address in direct-tcpip (\(originator.debugDescription)); "
            + "the client must send a literal IP as the originator, e.g. paramiko src_addr=(\"127.0.0.1\", 0) "
            + "or asyncssh create_connection(..., orig_host=\"127.0.0.1\") (README: Third-party SSH clients)"
    }
}

extension SSHServer {
    /// Starts a server, runs the certificate cache's feed, waits for `shutdown`, and closes: the
    /// common life of the proxy's and the node's SSH services.
    public static func serve(
        host: String, port: Int, configuration: Configuration, cache: UserCertificateCache, logger: Logger, what: String,
        listenKey: String = "ssh_service.listen_addr", listen: Bool = true, onStarted: @Sendable (SSHServer) async -> Void = { _ in },
        onListening: @Sendable (Int) async -> Void, shutdown: () async -> Void
    ) async throws {
        let server: SSHServer
        if listen {
            do {
                server = try await start(host: host, port: port, configuration: configuration, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
            } catch {
                throw ListenError.describe(error, errno: listenErrno(error), address: HostPort.join(host, port), key: listenKey)
            }
            logger.info("\(what) is listening", metadata: ["tp.listen": "\(HostPort.join(host, server.port))"])
        } else {
            server = unlistened(configuration: configuration, logger: logger)
            logger.info("\(what) binds no port: it is reached through its reverse tunnel only")
        }
        await onStarted(server)
        await onListening(server.port)
        // A new lock ends the connections it stops: each open session first shows its user the
        // lock's message (on stderr), then the connection closes, at the latest after
        // `lockNoticeGrace`. A connection without sessions (the proxy's, carrying a node's SSH)
        // is given the same time to be closed by its far end, whose message then gets through.
        let active = server.active
        await cache.setLocksHandler { [cache] _ in
            Task {
                for (user, channel, connection) in active.all() {
                    guard let lock = await cache.lock(user: user.username, login: user.login) else { continue }
                    logger.info(
                        "closing an SSH connection: \(lock.refusal)", metadata: ["tp.user": "\(user.username)", "tp.login": "\(user.login)"])
                    let loop = channel.eventLoop
                    loop.scheduleTask(in: lockNoticeGrace) { channel.close(promise: nil) }
                    let notices = connection.notifySessions("your session was closed: \(lock.refusal)")
                    guard !notices.isEmpty else { continue }
                    EventLoopFuture.whenAllComplete(notices, on: loop).whenComplete { _ in channel.close(promise: nil) }
                }
            }
        }
        // The feed's long poll is not awaited at shutdown: it ends with the process.
        let feed = Task { await cache.run() }
        await shutdown()
        feed.cancel()
        await server.close()
    }

    /// How long a connection a lock stops may stay open to show its sessions the lock's message.
    static let lockNoticeGrace = TimeAmount.seconds(2)

    /// Logs a refused login (audit events come with the audit issue).
    public static func logRefusal(_ logger: Logger, _ what: String) -> @Sendable (SSHConnectionInfo, String, SSHPublicKey?, any Error) -> Void {
        { connection, login, key, error in
            logger.warning(
                "\(what) refused: \((error as? TeleportError)?.message ?? "\(error)")",
                metadata: [
                    "tp.login": "\(login.debugDescription)", "tp.remote": "\(connection.remoteAddress.map { "\($0)" } ?? "-")",
                    "tp.key": "\(key?.fingerprintSHA256 ?? "-")",
                ])
        }
    }
}

/// The authenticated connections of a server, with their users.
final class AuthenticatedConnections: @unchecked Sendable {
    private let lock = NSLock()
    private var connections: [ObjectIdentifier: (user: SSHAuthenticatedUser, channel: any Channel, connection: SSHConnectionInfo)] = [:]

    func add(_ id: ObjectIdentifier, user: SSHAuthenticatedUser, channel: any Channel, connection: SSHConnectionInfo) {
        lock.withLock { connections[id] = (user, channel, connection) }
    }

    func remove(_ id: ObjectIdentifier) {
        lock.withLock {
            _ = connections.removeValue(forKey: id)
            if connections.isEmpty { connections = [:] }  // removing keeps the capacity: free it
        }
    }

    func all() -> [(user: SSHAuthenticatedUser, channel: any Channel, connection: SSHConnectionInfo)] {
        lock.withLock { Array(connections.values) }
    }
}
