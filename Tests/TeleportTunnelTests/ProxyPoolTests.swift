import TeleportTunnel
import Testing

/// The agent's multi-proxy pool with a manual clock (plain durations) and injected randomness:
/// the dial loop of ``ReverseTunnelAgent`` follows exactly these answers.
@Suite struct ProxyPoolTests {
    /// A pool whose jitter always picks the top of the range (waits are the full bound).
    func pool() -> ProxyPool { ProxyPool(random: { 0.999_999 }) }

    @Test("two proxies behind one load balancer: dial until both are held, closing the duplicate, then idle")
    func twoProxiesBehindOneAddress() {
        var pool = pool()
        var now = Duration.zero
        let r1 = pool.tick(now: now)
        #expect(r1 == .dial)
        // While a dial is in flight nothing else is due.
        let r2 = pool.tick(now: now)
        #expect(r2 == .idle)
        // The first dial lands on A; the cluster lists A and B.
        #expect(pool.wants("A"))
        let r3 = pool.established(proxy: "A", now: now)
        #expect(r3)
        let r4 = pool.discovered(["A", "B"])
        #expect(r4.isEmpty)
        let r5 = pool.tick(now: now)
        #expect(r5 == .dial)
        // The balancer sends the next dial to A again: refused before login, then a backoff.
        #expect(!pool.wants("A"))
        pool.duplicate(now: now)
        guard case .wait(let wait) = pool.tick(now: now) else {
            Issue.record("a duplicate must back off")
            return
        }
        #expect(wait > .milliseconds(900) && wait <= .seconds(1))
        now += wait
        let r6 = pool.tick(now: now)
        #expect(r6 == .dial)
        #expect(pool.wants("B"))
        let r7 = pool.established(proxy: "B", now: now)
        #expect(r7)
        #expect(pool.held == ["A", "B"])
        #expect(!pool.wantsAnotherTunnel)
        let r8 = pool.tick(now: now + .seconds(3600))
        #expect(r8 == .idle)
        #expect(pool.backoff == .seconds(1), "a new tunnel resets the backoff")
    }

    @Test("duplicates and failures back off exponentially up to their caps (8 s after a duplicate, 60 s after a failure)")
    func backoffGrowsAndCaps() {
        var pool = pool()
        var now = Duration.zero
        _ = pool.tick(now: now)
        let r9 = pool.established(proxy: "A", now: now)
        #expect(r9)
        _ = pool.discovered(["A", "B"])
        var bound = Duration.seconds(1)
        for round in 0..<10 {
            let r10 = pool.tick(now: now)
            #expect(r10 == .dial, "round \(round)")
            if round.isMultiple(of: 2) { pool.duplicate(now: now) } else { pool.dialFailed(now: now) }
            guard case .wait(let wait) = pool.tick(now: now) else {
                Issue.record("round \(round): no backoff")
                return
            }
            // A duplicate's wait stops growing at 8 s; a failure's at 60 s.
            let cap = round.isMultiple(of: 2) ? min(bound, .seconds(8)) : bound
            #expect(wait >= cap / 2 && wait <= cap, "round \(round): \(wait)")
            let r11 = pool.tick(now: now + wait - .milliseconds(1))
            #expect(r11 != .dial)
            now += wait
            bound = min(bound * 2, .seconds(60))
        }
        #expect(pool.backoff == .seconds(60))
    }

    @Test("a stopped proxy: its tunnel is sought while it is listed, and dropped from the wanted set when its record expires")
    func stoppedProxy() {
        var pool = pool()
        var now = Duration.zero
        _ = pool.tick(now: now)
        _ = pool.established(proxy: "A", now: now)
        _ = pool.discovered(["A", "B"])
        _ = pool.tick(now: now)
        _ = pool.established(proxy: "B", now: now)
        // B is killed: its tunnel ends; the agent seeks B again after a pause drawn in [0, 5 s].
        pool.lost(proxy: "B", now: now)
        #expect(pool.held == ["A"])
        guard case .wait(let wait) = pool.tick(now: now) else {
            Issue.record("a lost tunnel is redialled after a pause")
            return
        }
        #expect(wait <= .seconds(5))
        now += wait
        let r12 = pool.tick(now: now)
        #expect(r12 == .dial)
        pool.dialFailed(now: now)
        // B's record expires: A alone is the whole cluster; no more dials.
        let r13 = pool.discovered(["A"])
        #expect(r13.isEmpty)
        #expect(!pool.wantsAnotherTunnel)
        let r14 = pool.tick(now: now + .seconds(120))
        #expect(r14 == .idle)
    }

    @Test("a proxy whose record disappears loses its tunnel; an empty list changes nothing")
    func recordDisappears() {
        var pool = pool()
        _ = pool.tick(now: .zero)
        _ = pool.established(proxy: "A", now: .zero)
        _ = pool.discovered(["A", "B"])
        _ = pool.tick(now: .zero)
        _ = pool.established(proxy: "B", now: .zero)
        let r15 = pool.discovered([])
        #expect(r15.isEmpty)
        #expect(pool.known == ["A", "B"])
        let r16 = pool.discovered(["A"])
        #expect(r16 == ["B"])
        pool.lost(proxy: "B", now: .seconds(1))
        #expect(!pool.wantsAnotherTunnel)
        // A proxy reached before it was ever listed keeps its tunnel.
        _ = pool.discovered(["A", "C"])
        let r17 = pool.tick(now: .seconds(6))
        #expect(r17 == .dial)
        let r18 = pool.established(proxy: "D", now: .seconds(6))
        #expect(r18)
        let r19 = pool.discovered(["A", "C"])
        #expect(r19.isEmpty)
        #expect(pool.held == ["A", "D"])
    }

    @Test("a delisted proxy that still answers is not tunnelled to again until it is listed again")
    func delistedProxyNotReadopted() {
        var pool = pool()
        _ = pool.tick(now: .zero)
        _ = pool.established(proxy: "A", now: .zero)
        _ = pool.discovered(["A", "B"])
        _ = pool.tick(now: .zero)
        _ = pool.established(proxy: "B", now: .zero)
        let dropped = pool.discovered(["A"])
        #expect(dropped == ["B"])
        pool.lost(proxy: "B", now: .seconds(1))
        pool.lost(proxy: "A", now: .seconds(1))
        // A is sought again; a dial that lands on B is refused before login.
        let due = pool.tick(now: .seconds(6))
        #expect(due == .dial)
        #expect(!pool.wants("B"))
        pool.duplicate(now: .seconds(6))
        let refused = pool.established(proxy: "B", now: .seconds(6))
        #expect(!refused)
        #expect(pool.held.isEmpty)
        // B heartbeats again: it is wanted again.
        _ = pool.discovered(["A", "B"])
        #expect(pool.wants("B"))
        #expect(pool.delisted.isEmpty)
    }

    @Test("a proxy that names its peers itself")
    func peersNamedByTheProxy() {
        var pool = pool()
        #expect(pool.wantsAnotherTunnel)
        let r20 = pool.established(proxy: "A", peers: ["A", "B"])
        #expect(r20)
        #expect(pool.wantsAnotherTunnel)
        let r21 = pool.established(proxy: "A", peers: ["A", "B"])
        #expect(!r21)
        let r22 = pool.established(proxy: "B", peers: ["A", "B"])
        #expect(r22)
        #expect(!pool.wantsAnotherTunnel)
        pool.lost(proxy: "B")
        #expect(pool.wantsAnotherTunnel)
        pool.forget(proxy: "B")
        #expect(!pool.wantsAnotherTunnel)
    }

    /// One step of a graceful restart of a proxy, and what the pool answers after it.
    enum Step: Sendable, CustomStringConvertible {
        case tick(Duration, ProxyPool.Action)
        case drain(String, Duration, Bool)
        case wants(String, Bool)
        case established(String, Duration, Bool)
        case drainedEnded(String)
        case lost(String, Duration)
        case duplicate(Duration)
        case held(Set<String>)
        case draining([String: Int])

        var description: String {
            switch self {
            case .tick(let now, let action): "tick(\(now)) -> \(action)"
            case .drain(let proxy, let now, let sought): "drainNotice(\(proxy), \(now)) -> \(sought)"
            case .wants(let proxy, let wanted): "wants(\(proxy)) == \(wanted)"
            case .established(let proxy, let now, let kept): "established(\(proxy), \(now)) -> \(kept)"
            case .drainedEnded(let proxy): "drainedTunnelEnded(\(proxy))"
            case .lost(let proxy, let now): "lost(\(proxy), \(now))"
            case .duplicate(let now): "duplicate(\(now))"
            case .held(let held): "held == \(held.sorted())"
            case .draining(let draining): "draining == \(draining)"
            }
        }
    }

    /// Graceful restarts (a drain notice on a held tunnel): which proxies are held and when the
    /// agent dials. The pool's jitter picks half the range (drain spread 1 s: waits of 500 ms).
    @Test(
        "a drain notice: the proxy is no longer held, is sought again after [0, drainSpread], and the draining tunnel's end keeps the new one",
        arguments: [
            (
                "one proxy restarts: its new process is dialled; the old tunnel's end changes nothing",
                [
                    Step.tick(.zero, .dial), .established("A", .zero, true), .tick(.seconds(1), .idle),
                    .drain("A", .seconds(10), true), .held([]), .draining(["A": 1]), .wants("A", true),
                    .tick(.seconds(10), .wait(.milliseconds(500))), .tick(.milliseconds(10_500), .dial),
                    .established("A", .milliseconds(10_600), true), .held(["A"]),
                    .drainedEnded("A"), .held(["A"]), .draining([:]), .tick(.seconds(30), .idle),
                ]
            ),
            (
                "a second notice on the same proxy (not held any more) changes nothing",
                [
                    Step.tick(.zero, .dial), .established("A", .zero, true), .drain("A", .seconds(1), true),
                    .drain("A", .seconds(2), false), .draining(["A": 1]), .tick(.seconds(1), .wait(.milliseconds(500))),
                ]
            ),
            (
                "a backoff in force (duplicates) gives way: the drain redials within the spread",
                [
                    Step.tick(.zero, .dial), .established("A", .zero, true), .tick(.zero, .idle),
                    .drain("A", .seconds(5), true), .tick(.seconds(5), .wait(.milliseconds(500))),
                    .tick(.milliseconds(5500), .dial), .duplicate(.milliseconds(5500)),
                    .tick(.milliseconds(5500), .wait(.milliseconds(750))),
                    .tick(.milliseconds(6250), .dial), .established("A", .milliseconds(6300), true), .held(["A"]),
                ]
            ),
            (
                "two proxies: only the draining one is sought again; the other stays held",
                [
                    Step.tick(.zero, .dial), .established("A", .zero, true), .tick(.zero, .idle),
                    .established("B", .zero, true), .held(["A", "B"]), .drain("B", .seconds(3), true), .held(["A"]),
                    .wants("A", false), .wants("B", true), .tick(.milliseconds(3500), .dial),
                    .established("B", .seconds(4), true), .held(["A", "B"]), .drainedEnded("B"), .tick(.seconds(60), .idle),
                ]
            ),
            (
                "the draining proxy's process ends before its new tunnel: the proxy is still sought",
                [
                    Step.tick(.zero, .dial), .established("A", .zero, true), .drain("A", .seconds(1), true),
                    .drainedEnded("A"), .held([]), .tick(.milliseconds(1500), .dial),
                ]
            ),
            (
                "a tunnel lost (not drained) after the new one is held is the new one's loss",
                [
                    Step.tick(.zero, .dial), .established("A", .zero, true), .drain("A", .seconds(1), true),
                    .tick(.milliseconds(1500), .dial), .established("A", .seconds(2), true), .lost("A", .seconds(3)), .held([]),
                ]
            ),
        ] as [(String, [Step])])
    func drainNotices(name: String, steps: [Step]) {
        var pool = ProxyPool(random: { 0.5 })
        for (index, step) in steps.enumerated() {
            let context = Comment(rawValue: "\(name), step \(index): \(step)")
            switch step {
            case .tick(let now, let expected):
                let action = pool.tick(now: now)
                #expect(action == expected, context)
            case .drain(let proxy, let now, let sought):
                let result = pool.drainNotice(proxy: proxy, now: now)
                #expect(result == sought, context)
            case .wants(let proxy, let wanted):
                #expect(pool.wants(proxy) == wanted, context)
            case .established(let proxy, let now, let kept):
                let result = pool.established(proxy: proxy, now: now)
                #expect(result == kept, context)
            case .drainedEnded(let proxy):
                pool.drainedTunnelEnded(proxy: proxy)
            case .lost(let proxy, let now):
                pool.lost(proxy: proxy, now: now)
            case .duplicate(let now):
                pool.duplicate(now: now)
            case .held(let held):
                #expect(pool.held == held, context)
            case .draining(let draining):
                #expect(pool.draining == draining, context)
            }
        }
    }
}
