public import TeleportRecording
public import Foundation
import Synchronization
public import Logging
public import ServiceLifecycle
public import TeleportAPI
public import TeleportAuthClient

/// Keeps this node's `node` resource alive in the cluster: a heartbeat right away, then every
/// `interval`, with backoff (capped) while the auth service cannot be reached.
public struct NodeHeartbeat: Service, CustomStringConvertible {
    let auth: AuthClient
    let node: ServerNode
    let interval: Duration
    let logger: Logger
    let onFirstHeartbeat: @Sendable () async -> Void
    let labels: CommandLabels
    /// Called when the cluster refuses this host's identity (the host was removed): the daemon
    /// deletes the stored identity so that the next start must join with a token.
    var onIdentityRemoved: @Sendable () -> Void = {}
    /// Fired when the cluster refuses this host's identity: the node's other services stop.
    var stop: NodeStop?
    /// Whether a removed identity ends the whole process (a node-only process); otherwise only
    /// the node's services stop and the auth and proxy services of the process keep running.
    var removalEndsProcess = true

    /// Names the service without its fields (service logs print descriptions; no key may leak).
    public var description: String { "NodeHeartbeat(\(node.spec.hostname))" }

    /// Creates the heartbeat loop; `labels` adds the dynamic labels' latest values to each beat.
    public init(
        auth: AuthClient, node: ServerNode, labels: CommandLabels, interval: Duration = .seconds(10), logger: Logger,
        onFirstHeartbeat: @escaping @Sendable () async -> Void
    ) {
        self.auth = auth
        self.node = node
        self.labels = labels
        self.interval = interval
        self.logger = logger
        self.onFirstHeartbeat = onFirstHeartbeat
    }

    /// A copy that calls `action` when the cluster refuses this host's identity.
    public func onIdentityRemoved(_ action: @escaping @Sendable () -> Void) -> NodeHeartbeat {
        var copy = self
        copy.onIdentityRemoved = action
        return copy
    }

    /// A copy that fires `stop` when the identity is removed; `endsProcess` false keeps the rest
    /// of the process (auth, proxy) running.
    public func stopping(_ stop: NodeStop, endsProcess: Bool) -> NodeHeartbeat {
        var copy = self
        copy.stop = stop
        copy.removalEndsProcess = endsProcess
        return copy
    }

    public func run() async throws {
        let removed = Mutex(false)
        try? await cancelWhenGracefulShutdown {
            await labels.runOnce()
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await labels.run(startNow: false) }
                if await loop() { removed.withLock { $0 = true } }
                group.cancelAll()
            }
        }
        guard removed.withLock({ $0 }) else { return }
        stop?.fire()
        if removalEndsProcess {
            throw TeleportError.accessDenied(
                "this host was removed from the cluster: start it again with --token from `tctl nodes add` to join again")
        }
        logger.error(
            "the node service stopped: this host's node identity was removed from the cluster; the other services of this process keep running (restart teleport to register the node again)",
            metadata: ["tp.node": "\(node.spec.hostname)"])
        // Returning would end the whole service group: wait for the process's own shutdown.
        try? await gracefulShutdown()
    }

    /// Heartbeats until cancelled; true when it stopped because the host's identity was removed.
    func loop() async -> Bool {
        // The first failures are expected while an auth service in the same process starts.
        var announced = false
        var backoff = Duration.seconds(1)
        while !Task.isCancelled {
            do {
                var beat = node
                let dynamic = labels.current
                beat.spec.cmdLabels = dynamic.isEmpty ? nil : dynamic
                try await auth.heartbeat(beat)
                if !announced {
                    announced = true
                    logger.info("node registered with the cluster", metadata: ["tp.node": "\(node.spec.hostname)"])
                    await onFirstHeartbeat()
                }
                backoff = .seconds(1)
                try await Task.sleep(for: interval)
            } catch is CancellationError {
                return false
            } catch let error as TeleportError where error.code == .accessDenied && error.message.contains("identity was removed") {
                logger.error("\(error.message)")
                onIdentityRemoved()
                return true
            } catch {
                let level: Logger.Level = announced ? .warning : .debug
                logger.log(level: level, "heartbeat failed; retrying", metadata: ["tp.error": "\(error)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, interval)
            }
        }
        return false
    }
}
