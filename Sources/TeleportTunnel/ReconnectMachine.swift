/// The agent's reconnect logic as a pure state machine (no sockets, no clock): it is told what
/// happened and when (`now`, a duration since any fixed origin), and answers what to do.
///
/// - Dial failures back off exponentially with jitter: each wait is drawn in `[b/2, b]` where `b`
///   starts at ``Settings/initialBackoff`` and doubles up to ``Settings/maxBackoff``, so a
///   thousand agents of a restarted proxy do not come back in one burst.
/// - A success resets the backoff.
/// - While connected, a keepalive is due every ``Settings/keepaliveInterval``; a tunnel that heard
///   nothing for ``Settings/missedKeepalives`` intervals is closed and redialled.
public struct ReconnectMachine: Sendable {
    /// The tunables.
    public struct Settings: Sendable, Equatable {
        /// The first backoff.
        public var initialBackoff: Duration = .seconds(1)
        /// The backoff cap.
        public var maxBackoff: Duration = .seconds(60)
        /// How often a keepalive is sent.
        public var keepaliveInterval: Duration = .seconds(30)
        /// How many intervals without an answer end the tunnel.
        public var missedKeepalives = 3
        /// A lost tunnel is redialled after a wait drawn uniformly in `[0, redialSpread]`: when a
        /// proxy restarts, every agent loses its tunnel in the same instant, and this spreads
        /// their first dials evenly instead of landing them in one second.
        public var redialSpread: Duration = .seconds(5)
        /// After the proxy announced it drains (a graceful restart) the agent dials again after a
        /// wait drawn uniformly in `[0, drainSpread]`, keeping the draining tunnel for its open
        /// channels: the proxy's new process accepts already.
        public var drainSpread: Duration = .seconds(1)

        /// Creates the defaults.
        public init() {}
    }

    /// What the agent should do now.
    public enum Action: Sendable, Equatable {
        /// Dial the proxy.
        case dial
        /// Nothing until `now + duration` (or until something happens).
        case wait(Duration)
        /// Send a keepalive.
        case sendKeepalive
        /// The proxy is silent: close the tunnel (then call ``disconnected(now:)``).
        case close
    }

    enum State: Sendable, Equatable {
        case idle
        case waiting(until: Duration)
        case dialing
        case connected(lastHeard: Duration, nextKeepalive: Duration)
    }

    /// The settings.
    public let settings: Settings
    private(set) var state = State.idle
    /// The current backoff bound (doubles per failure, reset by success).
    public private(set) var backoff: Duration
    private let random: @Sendable () -> Double

    /// Creates the machine; `random` returns values in `[0, 1)` (injected for tests).
    public init(settings: Settings = Settings(), random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.settings = settings
        self.backoff = settings.initialBackoff
        self.random = random
    }

    /// Whether a tunnel is up.
    public var isConnected: Bool {
        if case .connected = state { return true }
        return false
    }

    /// The agent starts: dial at once.
    public mutating func start(now: Duration) -> Action {
        state = .dialing
        return .dial
    }

    /// A dial (or the handshake) failed: wait a jittered backoff, then dial again.
    public mutating func dialFailed(now: Duration) -> Action {
        let wait = jittered(backoff)
        backoff = min(backoff * 2, settings.maxBackoff)
        state = .waiting(until: now + wait)
        return .wait(wait)
    }

    /// The tunnel is up: the backoff resets; the keepalive clock starts.
    public mutating func connected(now: Duration) {
        backoff = settings.initialBackoff
        state = .connected(lastHeard: now, nextKeepalive: now + settings.keepaliveInterval)
    }

    /// The proxy answered (a keepalive reply, or any traffic).
    public mutating func heard(now: Duration) {
        if case .connected(_, let next) = state { state = .connected(lastHeard: now, nextKeepalive: next) }
    }

    /// The tunnel closed (by the proxy, the network, or after ``Action/close``): redial after a
    /// wait drawn uniformly in `[0, redialSpread]` (full jitter: a restarted proxy is not hit by
    /// every agent at once); failures after that back off from ``Settings/initialBackoff``.
    public mutating func disconnected(now: Duration) -> Action {
        let wait = settings.redialSpread * min(max(random(), 0), 1)
        backoff = settings.initialBackoff
        state = .waiting(until: now + wait)
        return .wait(wait)
    }

    /// The proxy announced it drains: the tunnel is no longer the agent's tunnel (the caller keeps
    /// it, with its own keepalives, for the channels it carries); dial again after a wait drawn
    /// uniformly in `[0, drainSpread]`, the backoff reset. Ignored unless connected.
    public mutating func drained(now: Duration) -> Action {
        guard isConnected else { return tick(now: now) }
        let wait = settings.drainSpread * min(max(random(), 0), 1)
        backoff = settings.initialBackoff
        state = .waiting(until: now + wait)
        return .wait(wait)
    }

    /// Time passed: what is due now.
    public mutating func tick(now: Duration) -> Action {
        switch state {
        case .idle:
            return start(now: now)
        case .dialing:
            return .wait(settings.keepaliveInterval)
        case .waiting(let until):
            if now >= until {
                state = .dialing
                return .dial
            }
            return .wait(until - now)
        case .connected(let lastHeard, let next):
            let deadline = lastHeard + settings.keepaliveInterval * settings.missedKeepalives
            if now >= deadline { return .close }
            if now >= next {
                state = .connected(lastHeard: lastHeard, nextKeepalive: now + settings.keepaliveInterval)
                return .sendKeepalive
            }
            return .wait(min(next, deadline) - now)
        }
    }

    private func jittered(_ bound: Duration) -> Duration {
        bound / 2 + bound / 2 * min(max(random(), 0), 1)
    }
}
