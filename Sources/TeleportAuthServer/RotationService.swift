public import Logging
public import ServiceLifecycle

/// Moves automatic CA rotations through their phases on schedule (``AuthServer/tickRotations()``).
/// Every auth server runs one; the compare-and-swap on the CA record makes each step happen once.
public struct RotationService: Service, CustomStringConvertible {
    let auth: AuthServer
    let interval: Duration
    let logger: Logger

    /// Creates the service; it looks every `interval`.
    public init(auth: AuthServer, interval: Duration = .seconds(1), logger: Logger) {
        self.auth = auth
        self.interval = interval
        self.logger = logger
    }

    public var description: String { "RotationService" }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var reported = false
            while !Task.isCancelled {
                do {
                    try await auth.tickRotations()
                    reported = false
                } catch {
                    // The store may be briefly unavailable: the next look tries again.
                    if !reported { logger.warning("cannot advance the CA rotation yet; retrying", metadata: ["tp.error": "\(error)"]) }
                    reported = true
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
