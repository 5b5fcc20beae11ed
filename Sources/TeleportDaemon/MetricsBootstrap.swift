package import Metrics
import Synchronization

/// swift-metrics' `MetricsSystem.bootstrap` may run once per process (a second call traps). A
/// daemon bootstraps it with its registry; when tests run several daemons (auth, proxy, node) in
/// one process, the first registry keeps receiving what libraries record with swift-metrics, and
/// each daemon's own counters (``TeleportMetrics``) stay its own.
package enum MetricsBootstrap {
    private static let done = Mutex(false)

    /// Bootstraps the metrics system with `factory` unless it already was; true when this call did.
    @discardableResult
    package static func once(_ factory: any MetricsFactory) -> Bool {
        let first = done.withLock { done in
            defer { done = true }
            return !done
        }
        if first { MetricsSystem.bootstrap(factory) }
        return first
    }
}
