public import Foundation
public import Logging
public import ServiceLifecycle
public import TeleportAPI
public import TeleportAuthClient

/// Keeps this node's `node` resource alive in the cluster: a heartbeat right away, then every
/// `interval`, with backoff (capped) while the auth service cannot be reached.
public struct NodeHeartbeat: Service {
    let auth: AuthClient
    let node: ServerNode
    let interval: Duration
    let logger: Logger
    let onFirstHeartbeat: @Sendable () async -> Void

    /// Creates the heartbeat loop.
    public init(
        auth: AuthClient, node: ServerNode, interval: Duration = .seconds(10), logger: Logger,
        onFirstHeartbeat: @escaping @Sendable () async -> Void
    ) {
        self.auth = auth
        self.node = node
        self.interval = interval
        self.logger = logger
        self.onFirstHeartbeat = onFirstHeartbeat
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown { await loop() }
    }

    func loop() async {
        // The first failures are expected while an auth service in the same process starts.
        var announced = false
        var backoff = Duration.seconds(1)
        while !Task.isCancelled {
            do {
                try await auth.heartbeat(node)
                if !announced {
                    announced = true
                    logger.info("node registered with the cluster", metadata: ["tp.node": "\(node.spec.hostname)"])
                    await onFirstHeartbeat()
                }
                backoff = .seconds(1)
                try await Task.sleep(for: interval)
            } catch is CancellationError {
                return
            } catch {
                let level: Logger.Level = announced ? .warning : .debug
                logger.log(level: level, "heartbeat failed; retrying", metadata: ["tp.error": "\(error)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, interval)
            }
        }
    }
}
