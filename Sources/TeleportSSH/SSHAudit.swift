public import Foundation
public import NIOCore
public import TeleportAPI
public import TeleportCrypto
public import TeleportEvents

/// Builds the audit events of an SSH server (node or proxy) with the seed's fields and adds them
/// to the host's ``AuditQueue``, which delivers them to the auth service.
public struct SSHAudit: Sendable {
    /// The host's outbox.
    public let queue: AuditQueue
    /// `server_id`: the host UUID.
    public let serverID: String
    /// The host's name.
    public let hostname: String
    /// `server_labels`.
    public let labels: [String: String]
    /// The clock of event times.
    package let clock: any WallClock
    /// Where connections, authentications, sessions and tunnels are counted (`/metrics`).
    public var metrics: TeleportMetrics?
    /// The `service` label of those metrics: `node` or `proxy`.
    public var service = "node"
    /// The bound on refused-login events (shared by every copy of this builder).
    let refusals = RefusalBudget()

    /// Creates the builder.
    public init(queue: AuditQueue, serverID: String, hostname: String, labels: [String: String], clock: any WallClock = SystemClock()) {
        self.queue = queue
        self.serverID = serverID
        self.hostname = hostname
        self.labels = labels
        self.clock = clock
    }

    /// Adds an event; a full queue under fail-closed is logged by the caller's refusal path.
    package func add(_ type: (String, String), _ fields: [String: JSONValue]) {
        var all = fields
        all["namespace"] = "default"
        all["server_id"] = .string(serverID)
        all["server_hostname"] = .string(hostname)
        if !labels.isEmpty { all["server_labels"] = .object(labels.mapValues { .string($0) }) }
        try? queue.add(AuditEvent(event: type.0, code: type.1, time: clock.now(), fields: all))
    }

    /// `ip:port` of a socket address, or an empty string.
    package static func address(_ address: SocketAddress?) -> JSONValue {
        guard let address, let ip = address.ipAddress else { return "" }
        return .string(HostPort.join(ip, address.port ?? 0))
    }

    // MARK: Authentication

    /// `auth` success.
    public func accepted(_ connection: SSHConnectionInfo, _ user: SSHAuthenticatedUser) {
        metrics?.increment(.sshAuthentications, ["service": service, "result": "success"])
        add(
            AuditEventType.sshAuth,
            [
                "user": .string(user.username), "login": .string(user.login), "success": true,
                "addr.remote": Self.address(connection.remoteAddress), "addr.local": Self.address(connection.localAddress),
            ].merging(user.clusterAuditFields) { $1 })
    }

    /// `auth` failure (T3007W) with the user name the client sent (`user` and `login`, cut to
    /// ``RefusalBudget/maxNameLength`` characters) and the reason. Unauthenticated clients choose
    /// how often this happens, so at most ``RefusalBudget/perMinute`` such events are written per
    /// minute and server; the next one written says how many were left out (`suppressed`).
    public func refused(_ connection: SSHConnectionInfo, login: String, key: SSHPublicKey?, error: any Error) {
        metrics?.increment(.sshAuthentications, ["service": service, "result": "failure"])
        guard let suppressed = refusals.admit(at: clock.now()) else { return }
        let name = String(login.prefix(RefusalBudget.maxNameLength))
        var fields: [String: JSONValue] = [
            "user": .string(name), "login": .string(name), "success": false,
            "error": .string((error as? TeleportError)?.message ?? "\(error)"),
            "addr.remote": Self.address(connection.remoteAddress), "addr.local": Self.address(connection.localAddress),
        ]
        if let key { fields["key_fingerprint"] = .string(key.fingerprintSHA256) }
        if suppressed > 0 { fields["suppressed"] = .int(suppressed) }
        add(AuditEventType.sshAuthFailure, fields)
    }

    /// `session.rejected`: `request` (`shell`, `exec`, `env LD_PRELOAD`, `subsystem NAME`, `join`, ...)
    /// was refused for `reason`; `reasons` carries the role-by-role explanation when roles decided.
    public func rejected(_ connection: SSHConnectionInfo, _ user: SSHAuthenticatedUser, request: String, refusal: AccessRefusal) {
        var fields: [String: JSONValue] = [
            "user": .string(user.username), "login": .string(user.login), "request": .string(request), "reason": .string(refusal.reason),
            "addr.remote": Self.address(connection.remoteAddress), "addr.local": Self.address(connection.localAddress),
        ]
        if !refusal.reasons.isEmpty { fields["reasons"] = .array(refusal.reasons.map { .string($0) }) }
        add(AuditEventType.sessionRejected, fields)
    }

    // MARK: Port forwarding

    /// `port`: a forward to `target` started, or was refused (an ``AccessRefusal`` adds its reasons).
    public func portForward(_ connection: SSHConnectionInfo, user: SSHAuthenticatedUser?, target: String, error: (any Error)?) {
        portForward(
            remote: connection.remoteAddress, local: connection.localAddress, user: user?.username ?? "", login: user?.login ?? "",
            target: target, error: error)
    }

    /// `port` for a connection that is not SSH (the proxy's TLS tunnel of `tsh proxy ssh`).
    public func portForward(remote: SocketAddress?, local: SocketAddress?, user: String, login: String, target: String, error: (any Error)?) {
        var fields: [String: JSONValue] = [
            "user": .string(user), "login": .string(login), "addr": .string(target),
            "addr.remote": Self.address(remote), "addr.local": Self.address(local),
        ]
        if let refusal = error as? AccessRefusal {
            fields["error"] = .string(refusal.reason)
            if !refusal.reasons.isEmpty { fields["reasons"] = .array(refusal.reasons.map { .string($0) }) }
        } else if let error {
            fields["error"] = .string((error as? TeleportError)?.message ?? "\(error)")
        }
        add(error == nil ? AuditEventType.port : AuditEventType.portFailure, fields)
    }
}

// MARK: Reverse tunnels

extension SSHAudit {
    /// `reverse_tunnel.rejected` (T9400W): the proxy refused an agent's tunnel from `remote` for
    /// `reason`. Unauthenticated peers choose how often this happens: bounded like refused logins.
    public func reverseTunnelRefused(remote: String, reason: String) {
        metrics?.increment(.reverseTunnelsRejected)
        guard let suppressed = refusals.admit(at: clock.now()) else { return }
        var fields: [String: JSONValue] = [
            "addr.remote": .string(remote), "reason": .string(String(reason.prefix(1024))), "success": false,
        ]
        if suppressed > 0 { fields["suppressed"] = .int(suppressed) }
        add(AuditEventType.reverseTunnelRejected, fields)
    }

    /// Counts an agent's reverse tunnel until ``reverseTunnelClosed()``.
    public func reverseTunnelOpened() { metrics?.increment(.reverseTunnelsActive) }

    /// The end of a tunnel counted by ``reverseTunnelOpened()``.
    public func reverseTunnelClosed() { metrics?.decrement(.reverseTunnelsActive) }
}

// MARK: Metrics

extension SSHAudit {
    /// Counts a connection accepted by the SSH listener, until `closed` completes.
    public func connectionOpened(closed: EventLoopFuture<Void>) {
        guard let metrics else { return }
        let labels = ["service": service]
        metrics.increment(.connections, labels)
        metrics.increment(.connectionsActive, labels)
        closed.whenComplete { _ in metrics.decrement(.connectionsActive, labels) }
    }

    /// Counts a tunnel through the proxy's web port, until `closed` completes.
    public func tunnelOpened(closed: EventLoopFuture<Void>) {
        guard let metrics else { return }
        metrics.increment(.tunnels)
        metrics.increment(.tunnelsActive)
        closed.whenComplete { _ in metrics.decrement(.tunnelsActive) }
    }
}

/// How many refused-login (`auth` failure) events one server writes per minute: an attacker who
/// reconnects in a loop must not be able to fill the audit log or the outbox.
final class RefusalBudget: @unchecked Sendable {
    /// Events written per minute; the rest are counted and reported by the next one written.
    static let perMinute = 60
    /// The longest user name an event keeps.
    static let maxNameLength = 256
    private let lock = NSLock()
    private var windowStart = Date.distantPast
    private var written = 0
    private var suppressed = 0

    /// `nil` when this event is over the budget (it is counted); otherwise the number of events
    /// left out since the last one written.
    func admit(at now: Date) -> Int? {
        lock.withLock {
            if now.timeIntervalSince(windowStart) >= 60 || now < windowStart {
                windowStart = now
                written = 0
            }
            guard written < Self.perMinute else {
                suppressed += 1
                return nil
            }
            written += 1
            defer { suppressed = 0 }
            return suppressed
        }
    }
}
