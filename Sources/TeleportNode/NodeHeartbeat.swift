public import Foundation
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

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            await labels.runOnce()
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await labels.run(startNow: false) }
                await loop()
                group.cancelAll()
            }
        }
    }

    func loop() async {
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
