import Logging
import TeleportEvents
import TeleportSSH

/// `teleport.connection_limits` (the seed's "Teleport Scalability Tweaks"): each SSH listener
/// (node 3022, proxy 3023) gets its own ``ConnectionLimiter`` with `max_connections` and `max_users`.
enum ConnectionLimits {
    /// The limiter of the listener of `service` (`node`, `proxy`).
    static func limiter(_ config: DaemonConfig, service: String, metrics: TeleportMetrics, logger: Logger) -> ConnectionLimiter {
        let limits = config.file.teleport.connectionLimits
        return ConnectionLimiter(
            service: service, maxConnections: limits.maxConnections, maxUsers: limits.maxUsers, metrics: metrics, logger: logger)
    }
}
