import Synchronization

/// The tunnel address a root proxy's ping gave, kept for ``ttl`` (then pinged again).
final class ResolvedTunnelAddress: Sendable {
    let ttl: Duration
    private let state = Mutex<(host: String, port: Int, at: ContinuousClock.Instant)?>(nil)

    init(ttl: Duration = .seconds(30)) {
        self.ttl = ttl
    }

    /// The kept address, unless older than ``ttl``.
    func current(now: ContinuousClock.Instant = .now) -> (host: String, port: Int)? {
        state.withLock { kept in
            guard let kept, now - kept.at < ttl else { return nil }
            return (kept.host, kept.port)
        }
    }

    func keep(_ address: (host: String, port: Int), now: ContinuousClock.Instant = .now) {
        state.withLock { $0 = (address.host, address.port, now) }
    }
}
