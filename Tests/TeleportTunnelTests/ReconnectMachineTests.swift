import TeleportTunnel
import Testing

/// The agent's reconnect machine with a manual clock (plain durations) and injected randomness.
@Suite struct ReconnectMachineTests {
    @Test("backoff doubles, is jittered within [b/2, b], and stops at the cap", arguments: [0.0, 0.5, 0.999])
    func backoffBounds(random: Double) {
        var machine = ReconnectMachine(random: { random })
        var now = Duration.zero
        #expect(machine.start(now: now) == .dial)
        var bound = Duration.seconds(1)
        for _ in 0..<12 {
            guard case .wait(let wait) = machine.dialFailed(now: now) else {
                Issue.record("a failed dial must wait")
                return
            }
            #expect(wait >= bound / 2 && wait <= bound)
            #expect(wait <= .seconds(60))
            now += wait
            #expect(machine.tick(now: now - .milliseconds(1)) != .dial)
            #expect(machine.tick(now: now) == .dial)
            bound = min(bound * 2, .seconds(60))
        }
        #expect(machine.backoff == .seconds(60))
    }

    @Test("jitter spreads agents: different random draws give different waits")
    func jitterSpreads() {
        var low = ReconnectMachine(random: { 0 })
        var high = ReconnectMachine(random: { 0.99 })
        _ = low.start(now: .zero)
        _ = high.start(now: .zero)
        #expect(low.dialFailed(now: .zero) == .wait(.milliseconds(500)))
        #expect(high.dialFailed(now: .zero) == .wait(.milliseconds(995)))
    }

    @Test("a successful connection resets the backoff")
    func resetAfterSuccess() {
        var machine = ReconnectMachine(random: { 0.999 })
        _ = machine.start(now: .zero)
        for _ in 0..<5 { _ = machine.dialFailed(now: .zero) }
        #expect(machine.backoff == .seconds(32))
        machine.connected(now: .seconds(100))
        #expect(machine.backoff == .seconds(1))
        guard case .wait(let wait) = machine.disconnected(now: .seconds(200)) else {
            Issue.record("a lost tunnel must wait before redialling")
            return
        }
        #expect(wait <= .seconds(1))
    }

    @Test("keepalives are due every interval; three silent intervals close the tunnel")
    func keepaliveMisses() {
        var settings = ReconnectMachine.Settings()
        settings.keepaliveInterval = .seconds(10)
        var machine = ReconnectMachine(settings: settings, random: { 0.5 })
        _ = machine.start(now: .zero)
        machine.connected(now: .zero)
        #expect(machine.tick(now: .seconds(5)) == .wait(.seconds(5)))
        #expect(machine.tick(now: .seconds(10)) == .sendKeepalive)
        #expect(machine.tick(now: .seconds(20)) == .sendKeepalive)
        #expect(machine.tick(now: .seconds(29)) == .wait(.seconds(1)))
        #expect(machine.tick(now: .seconds(30)) == .close)
        guard case .wait = machine.disconnected(now: .seconds(30)) else {
            Issue.record("after closing, the machine waits and redials")
            return
        }
        #expect(!machine.isConnected)
    }

    @Test("an answered keepalive pushes the deadline")
    func heardResetsDeadline() {
        var settings = ReconnectMachine.Settings()
        settings.keepaliveInterval = .seconds(10)
        var machine = ReconnectMachine(settings: settings)
        _ = machine.start(now: .zero)
        machine.connected(now: .zero)
        #expect(machine.tick(now: .seconds(10)) == .sendKeepalive)
        machine.heard(now: .seconds(11))
        #expect(machine.tick(now: .seconds(20)) == .sendKeepalive)
        #expect(machine.tick(now: .seconds(30)) == .sendKeepalive)
        #expect(machine.tick(now: .seconds(40)) != .close)
        #expect(machine.tick(now: .seconds(41)) == .close)
    }

    @Test("two proxies behind one address: the agent dials until it holds both, closing duplicates")
    func discovery() {
        var pool = ProxyPool()
        #expect(pool.wantsAnotherTunnel)
        // The load balancer sends the first dial to proxy A, which lists B.
        #expect(pool.established(proxy: "A", peers: ["A", "B"]))
        #expect(pool.wantsAnotherTunnel)
        // The next dial lands on A again: a duplicate, closed; still missing B.
        #expect(!pool.established(proxy: "A", peers: ["A", "B"]))
        #expect(pool.wantsAnotherTunnel)
        #expect(pool.established(proxy: "B", peers: ["A", "B"]))
        #expect(!pool.wantsAnotherTunnel)
        #expect(pool.held == ["A", "B"])
        // B restarts: the agent wants a tunnel to it again.
        pool.lost(proxy: "B")
        #expect(pool.wantsAnotherTunnel)
        // B is gone for good (its presence expired): A alone is enough.
        pool.forget(proxy: "B")
        #expect(!pool.wantsAnotherTunnel)
    }
}
