public import Logging
public import ServiceLifecycle
public import TeleportAPI
public import TeleportAuthClient

/// Keeps this proxy's `proxy` record alive in the cluster: a heartbeat right away, then every
/// `interval` (backing off, capped at `interval`, while the auth service cannot be reached). The
/// record expires like a node's when the proxy stops; agents read the records to keep a reverse
/// tunnel to every proxy.
public struct ProxyHeartbeat: Service, CustomStringConvertible {
    let auth: AuthClient
    let record: ServerProxy
    let interval: Duration
    let logger: Logger
    /// Told after each heartbeat: nil when the auth service took it, else why not (readiness).
    public var onHealth: (@Sendable (String?) -> Void)?

    /// Names the service without its fields.
    public var description: String { "ProxyHeartbeat(\(record.spec.hostname))" }

    /// Creates the heartbeat loop for `record` (its name is this proxy's host UUID).
    public init(auth: AuthClient, record: ServerProxy, interval: Duration = .seconds(10), logger: Logger) {
        self.auth = auth
        self.record = record
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var announced = false
            var backoff = Duration.seconds(1)
            while !Task.isCancelled {
                do {
                    try await auth.heartbeat(proxy: record)
                    onHealth?(nil)
                    if !announced {
                        announced = true
                        logger.info("proxy registered with the cluster", metadata: ["tp.proxy": "\(record.name)", "tp.addr": "\(record.spec.addr)"])
                    }
                    backoff = .seconds(1)
                    try await Task.sleep(for: interval)
                } catch is CancellationError {
                    return
                } catch {
                    // The first failures are expected while an auth service in the same process starts.
                    logger.log(level: announced ? .warning : .debug, "proxy heartbeat failed; retrying", metadata: ["tp.error": "\(error)"])
                    if announced { onHealth?("no auth server answers the proxy (\((error as? TeleportError)?.message ?? "\(error)"))") }
                    try await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, interval)
                }
            }
        }
    }
}
