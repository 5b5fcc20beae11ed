import TeleportTunnel
import Testing

/// The agent's reconnect machine with a manual clock (plain durations) and injected randomness.
@Suite struct ReconnectMachineTests {
    @Test("backoff doubles, is jittered within [b/2, b], and stops at the cap", arguments: [0.0, 0.5, 0.999])
    func backoffBounds(random: Double) {
        var machine = ReconnectMachine(random: { random })
        var now = Duration.zero
        let first = machine.start(now: now)
        #expect(first == .dial)
        var bound = Duration.seconds(1)
        for _ in 0..<12 {
            guard case .wait(let wait) = machine.dialFailed(now: now) else {
                Issue.record("a failed dial must wait")
                return
            }
            #expect(wait >= bound / 2 && wait <= bound)
            #expect(wait <= .seconds(60))
            now += wait
            let early = machine.tick(now: now - .milliseconds(1))
            #expect(early != .dial)
            let due = machine.tick(now: now)
            #expect(due == .dial)
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
        let lowWait = low.dialFailed(now: .zero)
        let highWait = high.dialFailed(now: .zero)
        #expect(lowWait == .wait(.milliseconds(500)))
        #expect(highWait == .wait(.milliseconds(995)))
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
        #expect(wait <= .seconds(5))
        #expect(machine.backoff == .seconds(1))
    }

    @Test("a lost tunnel's first redial is spread over the whole window (1,000 agents of a restarted proxy)")
    func lostTunnelsSpreadTheirRedials() {
        var perSecond = [Int](repeating: 0, count: 6)
        for agent in 0..<1000 {
            let draw = Double(agent) / 1000
            var machine = ReconnectMachine(random: { draw })
            _ = machine.start(now: .zero)
            machine.connected(now: .zero)
            guard case .wait(let wait) = machine.disconnected(now: .seconds(10)) else {
                Issue.record("a lost tunnel must wait before redialling")
                return
            }
            #expect(wait >= .zero && wait <= .seconds(5))
            perSecond[Int(wait.components.seconds)] += 1
            // The redial comes due exactly when the wait ends.
            #expect(machine.tick(now: .seconds(10) + wait) == .dial)
        }
        #expect(perSecond.max() ?? 0 <= 200, "at most a fifth of the agents in any one second: \(perSecond)")
    }

    @Test("keepalives are due every interval; three silent intervals close the tunnel")
    func keepaliveMisses() {
        var settings = ReconnectMachine.Settings()
        settings.keepaliveInterval = .seconds(10)
        var machine = ReconnectMachine(settings: settings, random: { 0.5 })
        _ = machine.start(now: .zero)
        machine.connected(now: .zero)
        let r1 = step(&machine, .seconds(5))
        #expect(r1 == .wait(.seconds(5)))
        let r2 = step(&machine, .seconds(10))
        #expect(r2 == .sendKeepalive)
        let r3 = step(&machine, .seconds(20))
        #expect(r3 == .sendKeepalive)
        let r4 = step(&machine, .seconds(29))
        #expect(r4 == .wait(.seconds(1)))
        let r5 = step(&machine, .seconds(30))
        #expect(r5 == .close)
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
        let r6 = step(&machine, .seconds(10))
        #expect(r6 == .sendKeepalive)
        machine.heard(now: .seconds(11))
        let r7 = step(&machine, .seconds(20))
        #expect(r7 == .sendKeepalive)
        let r8 = step(&machine, .seconds(30))
        #expect(r8 == .sendKeepalive)
        let r9 = step(&machine, .seconds(40))
        #expect(r9 != .close)
        let r10 = step(&machine, .seconds(41))
        #expect(r10 == .close)
    }

    private func step(_ machine: inout ReconnectMachine, _ now: Duration) -> ReconnectMachine.Action {
        machine.tick(now: now)
    }

    @Test(
        "a drain notice while connected: dial again after a wait in [0, drainSpread], the backoff reset; ignored when not connected",
        arguments: [(0.0, Duration.zero), (0.5, .milliseconds(500)), (0.999, .milliseconds(999))])
    func drainNotice(random: Double, wait: Duration) {
        var machine = ReconnectMachine(random: { random })
        _ = machine.start(now: .zero)
        _ = machine.dialFailed(now: .zero)
        _ = machine.dialFailed(now: .zero)
        machine.connected(now: .seconds(10))
        #expect(machine.isConnected)
        let drained = machine.drained(now: .seconds(20))
        #expect(drained == .wait(wait))
        #expect(!machine.isConnected)
        #expect(machine.backoff == .seconds(1))
        let due = machine.tick(now: .seconds(20) + wait)
        #expect(due == .dial)
        // Not connected (dialling): a late notice is only a tick.
        let late = machine.drained(now: .seconds(30))
        #expect(late == .wait(.seconds(30)))
    }
}
