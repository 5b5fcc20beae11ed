/// Which proxies an agent holds tunnels to, and when to dial again, for a cluster of several
/// proxies behind one address (a round-robin load balancer or DNS name). A pure state machine:
/// no sockets, no clock; it is told what happened and when (`now`, a duration since any origin).
///
/// - The cluster lists its proxies (their presence records, ``discovered(_:)``); a proxy also
///   names itself when a dial reaches it (its host certificate carries its host UUID).
/// - The agent dials the one address until it holds a tunnel to every proxy it knows of
///   (``tick(now:)`` answers ``Action/dial``); a dial that lands on a proxy it already holds is a
///   duplicate (``wants(_:)`` is false before the tunnel logs in), closed, and the next dial
///   waits a jittered, doubling backoff, as after a failed dial.
/// - A proxy that announces it drains (a graceful restart: its new process, with the same host
///   UUID, serves the same address) is no longer held (``drainNotice(proxy:now:)``): its tunnel
///   stays for the channels it carries, and a dial seeks the proxy again, which reaches the new
///   process; when that draining tunnel ends (``drainedTunnelEnded(proxy:)``) the new tunnel stays held.
/// - A proxy whose record disappears is forgotten and its tunnel dropped; a lost tunnel to a
///   proxy still listed is sought again. An empty list is ignored: the agent never drops every
///   tunnel because one answer was empty.
public struct ProxyPool: Sendable {
    /// The tunables.
    public struct Settings: Sendable, Equatable {
        /// The first backoff after a failed or duplicate dial.
        public var initialBackoff: Duration = .seconds(1)
        /// The backoff cap.
        public var maxBackoff: Duration = .seconds(60)
        /// The cap of the wait after a duplicate (a dial the balancer sent to a proxy already
        /// held): such a dial costs the proxy one handshake, and a proxy the balancer rarely picks
        /// (or that was out of its rotation for a while) must not wait a minute for its tunnel.
        public var duplicateMaxBackoff: Duration = .seconds(8)
        /// A lost tunnel is sought again after a wait drawn uniformly in `[0, redialSpread]`
        /// (every agent of a restarted proxy loses its tunnel at once; as ``ReconnectMachine``).
        public var redialSpread: Duration = .seconds(5)
        /// After a drain notice the proxy is sought again after a wait drawn uniformly in
        /// `[0, drainSpread]`: short, since the draining proxy's new process accepts already and
        /// answers "no tunnel" only after a few seconds of waiting for one.
        public var drainSpread: Duration = .seconds(1)

        /// Creates the defaults.
        public init() {}
    }

    /// What the agent should do now.
    public enum Action: Sendable, Equatable {
        /// Dial the proxy address once (then report ``established(proxy:now:)``,
        /// ``duplicate(now:)`` or ``dialFailed(now:)``).
        case dial
        /// Nothing until `now + duration` (or until something happens).
        case wait(Duration)
        /// Every known proxy has a tunnel (or a dial is in flight): wait for an event.
        case idle
    }

    /// The proxies with a tunnel.
    public private(set) var held: Set<String> = []
    /// Every proxy heard of (listed by the cluster, or reached).
    public private(set) var known: Set<String> = []
    /// The proxies the cluster listed last.
    public private(set) var listed: Set<String> = []
    /// Proxies the cluster listed before and no longer lists: not tunnelled to again until they
    /// are listed again (a delisted proxy that still answers is not re-adopted).
    public private(set) var delisted: Set<String> = []
    /// Tunnels whose proxy announced it drains, per proxy: kept for their open channels, not held.
    public private(set) var draining: [String: Int] = [:]
    /// The current backoff bound (doubles per failed or duplicate dial; reset by a new tunnel).
    public private(set) var backoff: Duration
    /// The settings.
    public let settings: Settings
    private var notBefore: Duration = .zero
    private var dialing = false
    private let random: @Sendable () -> Double

    /// Creates an empty pool; `random` returns values in `[0, 1)` (injected for tests).
    public init(settings: Settings = Settings(), random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.settings = settings
        self.backoff = settings.initialBackoff
        self.random = random
    }

    /// Whether another dial is needed: no tunnel yet, or a known proxy without one.
    public var wantsAnotherTunnel: Bool {
        held.isEmpty || !known.subtracting(held).isEmpty
    }

    /// What is due now.
    public mutating func tick(now: Duration) -> Action {
        guard !dialing, wantsAnotherTunnel else { return .idle }
        if now < notBefore { return .wait(notBefore - now) }
        dialing = true
        return .dial
    }

    /// Asked when a dial reached `proxy` (its certificate named it), before the tunnel logs in:
    /// false for a proxy already held (close that connection: a duplicate) or delisted.
    public func wants(_ proxy: String) -> Bool {
        !held.contains(proxy) && !delisted.contains(proxy)
    }

    /// A dial became a tunnel to `proxy`: true to keep it (the backoff resets), false for a
    /// duplicate (close it; the next dial backs off).
    public mutating func established(proxy: String, now: Duration) -> Bool {
        dialing = false
        guard !delisted.contains(proxy) else {
            backOff(now: now)
            return false
        }
        known.insert(proxy)
        guard held.insert(proxy).inserted else {
            backOff(now: now, cap: settings.duplicateMaxBackoff)
            return false
        }
        backoff = settings.initialBackoff
        notBefore = now
        return true
    }

    /// A tunnel reached `proxy`, which lists `peers` (a proxy that names its peers itself).
    public mutating func established(proxy: String, peers: [String], now: Duration = .zero) -> Bool {
        known.formUnion(peers)
        return established(proxy: proxy, now: now)
    }

    /// The dial reached a proxy already held and was closed before it logged in: the wait grows
    /// as after a failure, but never past ``Settings/duplicateMaxBackoff``.
    public mutating func duplicate(now: Duration) {
        dialing = false
        backOff(now: now, cap: settings.duplicateMaxBackoff)
    }

    /// The dial (or its handshake) failed.
    public mutating func dialFailed(now: Duration) {
        dialing = false
        backOff(now: now)
    }

    /// The tunnel to `proxy` ended; it is sought again while the proxy is known, after a wait
    /// drawn uniformly in `[0, redialSpread]` (a restarted proxy is not hit by every agent at once).
    public mutating func lost(proxy: String, now: Duration) {
        held.remove(proxy)
        notBefore = max(notBefore, now + settings.redialSpread * min(max(random(), 0), 1))
    }

    /// The held tunnel to `proxy` announced that its proxy drains: it is no longer held (the
    /// caller keeps it for its open channels, then closes it), the backoff resets, and the proxy
    /// is sought again after a wait drawn in `[0, drainSpread]`. False when `proxy` was not held
    /// (a second notice, or a tunnel the pool never kept): nothing changes.
    @discardableResult
    public mutating func drainNotice(proxy: String, now: Duration) -> Bool {
        guard held.remove(proxy) != nil else { return false }
        draining[proxy, default: 0] += 1
        backoff = settings.initialBackoff
        notBefore = now + settings.drainSpread * min(max(random(), 0), 1)
        return true
    }

    /// A tunnel that was draining ended: the proxy's new tunnel (if any) stays held; nothing is
    /// dialled because of it.
    public mutating func drainedTunnelEnded(proxy: String) {
        guard let count = draining[proxy] else { return }
        draining[proxy] = count > 1 ? count - 1 : nil
    }

    /// The tunnel to `proxy` ended (no clock: redial at the next tick).
    public mutating func lost(proxy: String) {
        held.remove(proxy)
    }

    /// A proxy no longer listed by the cluster (its presence expired).
    public mutating func forget(proxy: String) {
        known.remove(proxy)
        listed.remove(proxy)
    }

    /// The cluster's current list of proxies (host UUIDs). Returns the held proxies whose record
    /// disappeared: close their tunnels. An empty list changes nothing.
    public mutating func discovered(_ proxies: [String]) -> [String] {
        let now = Set(proxies)
        guard !now.isEmpty else { return [] }
        let gone = listed.subtracting(now)
        known.subtract(gone)
        known.formUnion(now)
        delisted.formUnion(gone)
        delisted.subtract(now)
        listed = now
        return held.intersection(gone).sorted()
    }

    private mutating func backOff(now: Duration, cap: Duration? = nil) {
        notBefore = now + jittered(min(backoff, cap ?? settings.maxBackoff))
        backoff = min(backoff * 2, settings.maxBackoff)
    }

    private func jittered(_ bound: Duration) -> Duration {
        bound / 2 + bound / 2 * min(max(random(), 0), 1)
    }
}
