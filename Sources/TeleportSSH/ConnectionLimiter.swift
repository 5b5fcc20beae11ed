public import Logging
public import NIOCore
import NIOSSH
import Synchronization
public import TeleportCrypto
public import TeleportEvents
import TeleportAPI

/// The counting of `teleport.connection_limits` for one listener, with no I/O and no clock of its
/// own: `max_connections` caps the connections open at once (authenticated or not),
/// `max_users` the distinct users holding an authenticated connection. A limit of 0 is no limit.
/// Refusals are counted and reported at most once per ``logInterval`` (a flood of refused
/// connections must not become a flood of log lines).
public struct ConnectionLimitState: Sendable {
    /// Why a connection was refused; the `reason` label of the metric.
    public enum Reason: String, Sendable, CaseIterable {
        case maxConnections = "max_connections"
        case maxUsers = "max_users"
    }

    /// The cap on concurrent connections (0: none).
    public let maxConnections: Int
    /// The cap on concurrent distinct users (0: none).
    public let maxUsers: Int
    /// How often a refusal may be logged.
    public let logInterval: Duration
    /// The connections open now.
    public private(set) var openConnections = 0
    /// The users admitted now, with their number of authenticated connections.
    public private(set) var users: [String: Int] = [:]
    private var unreported: [Reason: Int] = [:]
    private var lastReport: [Reason: ContinuousClock.Instant] = [:]

    /// Creates the state of a listener.
    public init(maxConnections: Int, maxUsers: Int, logInterval: Duration = .seconds(10)) {
        self.maxConnections = maxConnections
        self.maxUsers = maxUsers
        self.logInterval = logInterval
    }

    /// A connection arrives: true if it may stay (then ``close()`` must follow), false if over the limit.
    public mutating func open() -> Bool {
        guard maxConnections <= 0 || openConnections < maxConnections else { return false }
        openConnections += 1
        return true
    }

    /// An admitted connection closed.
    public mutating func close() {
        openConnections = max(0, openConnections - 1)
    }

    /// A connection authenticated as `user`: true if it is admitted (then ``release(user:)`` must
    /// follow); a user already admitted always is, another only while fewer than `max_users` are.
    public mutating func admit(user: String) -> Bool {
        if let count = users[user] {
            users[user] = count + 1
            return true
        }
        guard maxUsers <= 0 || users.count < maxUsers else { return false }
        users[user] = 1
        return true
    }

    /// An admitted user's connection closed.
    public mutating func release(user: String) {
        guard let count = users[user] else { return }
        users[user] = count > 1 ? count - 1 : nil
    }

    /// Records a refusal at `now`; returns how many refusals to report in a log line now
    /// (this one and those not reported yet), or nil when one was logged less than
    /// ``logInterval`` ago.
    public mutating func refused(_ reason: Reason, at now: ContinuousClock.Instant) -> Int? {
        let count = unreported[reason, default: 0] + 1
        if let last = lastReport[reason], now - last < logInterval {
            unreported[reason] = count
            return nil
        }
        unreported[reason] = 0
        lastReport[reason] = now
        return count
    }
}

/// Enforces `teleport.connection_limits` on one SSH listener (node 3022, proxy 3023): the
/// listener calls ``admits(_:_:)`` for each accepted connection (closing the excess at once);
/// ``apply(to:)`` wraps a server configuration so that, past `max_users`, a new user's login
/// succeeds but every channel it opens is refused with "the server has reached max_users (N)"
/// (an SSH authentication failure cannot carry a message to the client; a session can).
public final class ConnectionLimiter: Sendable {
    /// The `service` label of the metric and the log (`node`, `proxy`).
    public let service: String
    let metrics: TeleportMetrics?
    let logger: Logger
    let now: @Sendable () -> ContinuousClock.Instant
    private let state: Mutex<(limits: ConnectionLimitState, connections: [String: Tracked])>

    /// One connection the limiter admitted.
    struct Tracked: Sendable {
        var user: String?
        var refused = false
    }

    /// Creates the limiter of one listener.
    public init(
        service: String, maxConnections: Int, maxUsers: Int, metrics: TeleportMetrics?, logger: Logger,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.service = service
        self.metrics = metrics
        self.logger = logger
        self.now = now
        state = Mutex((ConnectionLimitState(maxConnections: maxConnections, maxUsers: maxUsers), [:]))
    }

    /// The message a user past `max_users` reads.
    public var maxUsersMessage: String {
        "the server has reached max_users (\(state.withLock { $0.limits.maxUsers })); try again later"
    }

    /// The listener's hook: true when the connection `channel` may proceed. A server whose
    /// configuration has no limiter (``apply(to:)`` was not used) admits everything.
    public static func admits(_ channel: any Channel, _ configuration: SSHServer.Configuration) -> Bool {
        (configuration.authorizer as? LimitedAuthorizer)?.limiter.admit(channel) ?? true
    }

    /// Returns `configuration` with the user limit applied to its authorizer and channels.
    public func apply(to configuration: SSHServer.Configuration) -> SSHServer.Configuration {
        var limited = configuration
        limited.authorizer = LimitedAuthorizer(base: configuration.authorizer, limiter: self)
        let base = configuration.channelInitializer
        limited.channelInitializer = { [self] channel, type, connection, user in
            guard isRefused(connection.remoteAddress) else { return base(channel, type, connection, user) }
            let message = maxUsersMessage
            switch type {
            case .session:
                return channel.eventLoop.submit {
                    try channel.pipeline.syncOperations.addHandler(LimitRefusalHandler(message: message))
                }
            default:
                return channel.eventLoop.makeFailedFuture(TeleportError.limitExceeded(message))
            }
        }
        return limited
    }

    /// Counts an accepted connection; false (and a refusal logged and counted) past `max_connections`.
    /// Listeners that are not SSH (the proxy's web port) call it directly.
    public func admit(_ channel: any Channel) -> Bool {
        let key = channel.remoteAddress.map { "\($0)" }
        let admitted = state.withLock { state in
            guard state.limits.open() else { return false }
            if let key { state.connections[key] = Tracked() }
            return true
        }
        guard admitted else {
            refused(.maxConnections, remote: channel.remoteAddress)
            return false
        }
        channel.closeFuture.whenComplete { [self] _ in
            state.withLock { state in
                state.limits.close()
                if let key, let tracked = state.connections.removeValue(forKey: key), let user = tracked.user, !tracked.refused {
                    state.limits.release(user: user)
                }
            }
        }
        return true
    }

    /// A connection from `address` authenticated as `user`: admitted, or marked refused past `max_users`.
    func authenticated(_ user: String, from address: SocketAddress?) {
        guard let key = address.map({ "\($0)" }) else { return }
        let admitted: Bool = state.withLock { state in
            guard var tracked = state.connections[key], tracked.user == nil else { return true }
            tracked.user = user
            tracked.refused = !state.limits.admit(user: user)
            state.connections[key] = tracked
            return !tracked.refused
        }
        if !admitted { refused(.maxUsers, remote: address, user: user) }
    }

    func isRefused(_ address: SocketAddress?) -> Bool {
        guard let key = address.map({ "\($0)" }) else { return false }
        return state.withLock { $0.connections[key]?.refused ?? false }
    }

    private func refused(_ reason: ConnectionLimitState.Reason, remote: SocketAddress?, user: String? = nil) {
        metrics?.increment(.connectionsRejected, ["service": service, "reason": reason.rawValue])
        let (count, limit) = state.withLock { state in
            (state.limits.refused(reason, at: now()), reason == .maxConnections ? state.limits.maxConnections : state.limits.maxUsers)
        }
        guard let count else { return }
        let what = reason == .maxConnections ? "connections" : "distinct users"
        var metadata: Logger.Metadata = ["tp.remote": "\(remote.map { "\($0)" } ?? "-")", "tp.count": "\(count)"]
        if let user { metadata["tp.user"] = "\(user)" }
        let line = "\(service): refused \(count) connection(s) since the last report: \(reason.rawValue) (\(limit)) reached, \(limit) \(what) at once "
                + "(raise teleport.connection_limits.\(reason.rawValue) if this is expected)"
        logger.warning("\(line)", metadata: metadata)
    }
}

/// An authorizer that tells its ``ConnectionLimiter`` who authenticated on which connection.
struct LimitedAuthorizer: SSHUserAuthorizer {
    let base: any SSHUserAuthorizer
    let limiter: ConnectionLimiter

    func authorize(key: SSHPublicKey, login: String, clientAddress: SocketAddress?) async throws -> SSHAuthenticatedUser {
        let user = try await base.authorize(key: key, login: login, clientAddress: clientAddress)
        limiter.authenticated(user.username, from: clientAddress)
        return user
    }
}

/// Answers every request of a session channel that may not start with the limit's message (on
/// standard error, then a failure reply) and closes the channel.
final class LimitRefusalHandler: ChannelInboundHandler {
    typealias InboundIn = SSHChannelData
    typealias OutboundOut = SSHChannelData
    let message: String
    private var closing = false

    init(message: String) { self.message = message }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        let wantReply: Bool
        switch event {
        case let request as SSHChannelRequestEvent.ExecRequest: wantReply = request.wantReply
        case let request as SSHChannelRequestEvent.ShellRequest: wantReply = request.wantReply
        case let request as SSHChannelRequestEvent.SubsystemRequest: wantReply = request.wantReply
        case let request as SSHChannelRequestEvent.PseudoTerminalRequest:
            if request.wantReply { context.triggerUserOutboundEvent(ChannelSuccessEvent(), promise: nil) }
            return
        case let request as SSHChannelRequestEvent.EnvironmentRequest:
            if request.wantReply { context.triggerUserOutboundEvent(ChannelFailureEvent(), promise: nil) }
            return
        default:
            context.fireUserInboundEventTriggered(event)
            return
        }
        guard !closing else { return }
        closing = true
        // The request is accepted and the session ends at once with status 1 after the message: a
        // failure reply makes OpenSSH exit (fatal) before it writes stderr that arrived with it.
        if wantReply { context.triggerUserOutboundEvent(ChannelSuccessEvent(), promise: nil) }
        let bytes = context.channel.allocator.buffer(string: "\(message)\r\n")
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(SSHChannelData(type: .stdErr, data: .byteBuffer(bytes)))).whenComplete { _ in
            loopContext.value.triggerUserOutboundEvent(SSHChannelRequestEvent.ExitStatus(exitStatus: 1), promise: nil)
            loopContext.value.close(promise: nil)
        }
    }
}
