public import Logging
public import ServiceLifecycle

/// Root side of trusted clusters (issue 20): shows a leaf `offline` when no proxy has reported its
/// tunnel for ``AuthServer/remoteClusterOfflineAfter`` (the proxy holding it stopped without
/// saying so). Every auth server runs one; the compare-and-swap on the record makes each change once.
public struct RemoteClusterStatusService: Service, CustomStringConvertible {
    let auth: AuthServer
    let interval: Duration
    let logger: Logger

    /// Creates the service; it looks every `interval`.
    public init(auth: AuthServer, interval: Duration = .seconds(10), logger: Logger) {
        self.auth = auth
        self.interval = interval
        self.logger = logger
    }

    public var description: String { "RemoteClusterStatusService" }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await auth.markStaleRemoteClustersOffline()
                } catch {
                    logger.debug("cannot check the leaf clusters' heartbeats yet", metadata: ["tp.error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
