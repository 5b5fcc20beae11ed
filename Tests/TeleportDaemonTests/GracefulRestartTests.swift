import Foundation
import TeleportAPI
@testable import TeleportDaemon
import Synchronization
import Testing

/// The old process's side of a graceful restart (``GracefulRestart``): inputs in, actions out.
@Suite("graceful restart state machine")
struct GracefulRestartTests {
    typealias Input = GracefulRestart.Input
    typealias State = GracefulRestart.State

    /// Runs `inputs` from `serving`; returns the final state and the non-log actions of the last input.
    static func run(_ inputs: [Input]) -> (state: State, actions: [GracefulRestart.Action]) {
        var machine = GracefulRestart()
        var last: [GracefulRestart.Action] = []
        for input in inputs { last = machine.handle(input) }
        return (machine.state, last.filter { if case .info = $0 { false } else if case .warning = $0 { false } else { true } })
    }

    struct Row: Sendable, CustomStringConvertible {
        let name: String
        let inputs: [Input]
        let state: State
        let actions: [GracefulRestart.Action]
        var description: String { name }
    }

    static let rows: [Row] = [
        Row(name: "HUP forks", inputs: [.signal(.hangup)], state: .forking(thenDrain: true), actions: [.spawnChild]),
        Row(name: "USR2 forks without draining", inputs: [.signal(.user2)], state: .forking(thenDrain: false), actions: [.spawnChild]),
        Row(
            name: "HUP then ready drains", inputs: [.signal(.hangup), .childReady(pid: 42)], state: .draining,
            actions: [.stopAccepting, .waitForDrain]),
        Row(
            name: "USR2 then ready retires: no new connections, no exit", inputs: [.signal(.user2), .childReady(pid: 42)], state: .retired,
            actions: [.stopAccepting]),
        Row(name: "QUIT after USR2 drains", inputs: [.signal(.user2), .childReady(pid: 42), .signal(.quit)], state: .draining,
            actions: [.waitForDrain]),
        Row(name: "HUP after USR2 is ignored", inputs: [.signal(.user2), .childReady(pid: 42), .signal(.hangup)], state: .retired,
            actions: []),
        Row(name: "TERM after USR2 stops", inputs: [.signal(.user2), .childReady(pid: 42), .signal(.terminate)], state: .stopping,
            actions: [.stopAccepting, .closeConnections, .shutDown]),
        Row(name: "a retired process that has no sessions left stays", inputs: [.signal(.user2), .childReady(pid: 42), .drained],
            state: .retired, actions: []),
        Row(name: "a child ready after QUIT may accept", inputs: [.signal(.hangup), .signal(.quit), .childReady(pid: 5)], state: .draining,
            actions: [.stopAccepting]),
        Row(name: "HUP then a failed child keeps serving", inputs: [.signal(.hangup), .childFailed("exit 1")], state: .serving, actions: []),
        Row(name: "HUP while forking is ignored", inputs: [.signal(.hangup), .signal(.hangup)], state: .forking(thenDrain: true), actions: []),
        Row(name: "USR2 while forking is ignored", inputs: [.signal(.hangup), .signal(.user2)], state: .forking(thenDrain: true), actions: []),
        Row(
            name: "HUP while draining is ignored", inputs: [.signal(.hangup), .childReady(pid: 1), .signal(.hangup)], state: .draining,
            actions: []),
        Row(name: "HUP after a failed child forks again", inputs: [.signal(.hangup), .childFailed("x"), .signal(.hangup)],
            state: .forking(thenDrain: true), actions: [.spawnChild]),
        Row(name: "QUIT drains", inputs: [.signal(.quit)], state: .draining, actions: [.stopAccepting, .waitForDrain]),
        Row(name: "QUIT while forking drains", inputs: [.signal(.user2), .signal(.quit)], state: .draining, actions: [.stopAccepting, .waitForDrain]),
        Row(name: "QUIT twice", inputs: [.signal(.quit), .signal(.quit)], state: .draining, actions: []),
        Row(name: "drained stops", inputs: [.signal(.quit), .drained], state: .stopping, actions: [.shutDown]),
        Row(name: "deadline closes and stops", inputs: [.signal(.quit), .drainDeadline], state: .stopping, actions: [.closeConnections, .shutDown]),
        Row(name: "TERM stops at once", inputs: [.signal(.terminate)], state: .stopping, actions: [.stopAccepting, .closeConnections, .shutDown]),
        Row(name: "INT stops at once", inputs: [.signal(.interrupt)], state: .stopping, actions: [.stopAccepting, .closeConnections, .shutDown]),
        Row(name: "TERM while draining", inputs: [.signal(.quit), .signal(.terminate)], state: .stopping,
            actions: [.stopAccepting, .closeConnections, .shutDown]),
        Row(name: "TERM while forking", inputs: [.signal(.hangup), .signal(.terminate)], state: .stopping,
            actions: [.stopAccepting, .closeConnections, .shutDown]),
        Row(name: "TERM twice", inputs: [.signal(.terminate), .signal(.terminate)], state: .stopping, actions: []),
        Row(name: "a child ready after TERM may accept", inputs: [.signal(.hangup), .signal(.terminate), .childReady(pid: 3)],
            state: .stopping, actions: [.stopAccepting]),
        Row(name: "USR1 dumps when serving", inputs: [.signal(.user1)], state: .serving, actions: [.dump]),
        Row(name: "USR1 dumps when draining", inputs: [.signal(.quit), .signal(.user1)], state: .draining, actions: [.dump]),
        Row(name: "USR1 dumps when stopping", inputs: [.signal(.terminate), .signal(.user1)], state: .stopping, actions: [.dump]),
        Row(name: "drained while serving is ignored", inputs: [.drained], state: .serving, actions: []),
        Row(name: "a stray ready while serving is ignored", inputs: [.childReady(pid: 9)], state: .serving, actions: []),
    ]

    @Test("transitions", arguments: rows)
    func transition(_ row: Row) {
        let result = Self.run(row.inputs)
        #expect(result.state == row.state)
        #expect(result.actions == row.actions)
    }

    @Test("a failed restart says why and that this process keeps serving")
    func failureIsLogged() {
        var machine = GracefulRestart()
        _ = machine.handle(.signal(.hangup))
        let actions = machine.handle(.childFailed("the new process (pid 7) exited with status 1 before it was ready"))
        #expect(actions == [.warning("graceful restart failed: the new process (pid 7) exited with status 1 before it was ready; this process keeps serving")])
    }

    @Test("the handoff plan numbers listeners from 3, then the lock, then the pipe; old variables are replaced")
    func handoffPlan() {
        let listeners = [
            ListenerSockets.Socket(address: "127.0.0.1:3022", fd: 17), ListenerSockets.Socket(address: "[::]:3080", fd: 3),
        ]
        let plan = ProcessHandoff.plan(
            listeners: listeners, lock: 4, ready: 21, accept: 22,
            environment: ["PATH": "/bin", ListenerSockets.environmentKey: "old=9", ProcessHandoff.lockKey: "9", ProcessHandoff.readyKey: "10"])
        #expect(plan.moves.map(\.from) == [17, 3, 4, 21, 22])
        #expect(plan.moves.map(\.to) == [3, 4, 5, 6, 7])
        #expect(plan.closeFrom == 8)
        #expect(plan.environment == [
            "PATH": "/bin", ListenerSockets.environmentKey: "127.0.0.1:3022=3,[::]:3080=4", ProcessHandoff.lockKey: "5",
            ProcessHandoff.readyKey: "6", ProcessHandoff.acceptKey: "7",
        ])
        #expect(ListenerSockets.parse(plan.environment[ListenerSockets.environmentKey] ?? "") == ["127.0.0.1:3022": 3, "[::]:3080": 4])
    }

    @Test("without listeners or a lock only the pipe is handed over")
    func handoffPlanBare() {
        let plan = ProcessHandoff.plan(listeners: [], lock: nil, ready: 5, accept: 6, environment: [ListenerSockets.environmentKey: "a=1"])
        #expect(plan.moves.map(\.to) == [3, 4])
        #expect(plan.environment == [ProcessHandoff.readyKey: "3", ProcessHandoff.acceptKey: "4"])
    }

    @Test("the listen variable: malformed pairs are skipped, IPv6 addresses keep their colons")
    func parse() {
        #expect(ListenerSockets.parse("127.0.0.1:1=3,bad,[::1]:2=4,x=-1,y=z") == ["127.0.0.1:1": 3, "[::1]:2": 4])
        #expect(ListenerSockets.parse("") == [:])
    }

    @Test("connections are counted per service, once each; a fast stop closes them")
    func counting() {
        let sockets = ListenerSockets(environment: [:])
        let closed = CallCounter()
        let one = sockets.opened("node SSH") { closed.add() }
        let two = sockets.opened("node SSH") { closed.add() }
        let web = sockets.opened("proxy web") { closed.add() }
        #expect(sockets.connections == ["node SSH": 2, "proxy web": 1])
        #expect(sockets.openConnections(of: ["node SSH", "database"]) == 2)
        one()
        one()
        #expect(sockets.openConnections(of: ["node SSH"]) == 1)
        sockets.closeAllConnections()
        #expect(closed.value == 2)
        two()
        web()
        #expect(sockets.openConnections(of: ["node SSH", "proxy web"]) == 0)
    }

    @Test("an inherited socket is taken by its address; others are bound; stopAccepting stops every listener")
    func inheritAndBind() async throws {
        let fd = try #require(try? ListenerSockets(environment: [:]).socket(host: "127.0.0.1", port: 0).fd)
        let sockets = ListenerSockets(environment: [ListenerSockets.environmentKey: "127.0.0.1:1=\(fd)"])
        #expect(sockets.isInherited(host: "127.0.0.1", port: 1))
        let taken = try sockets.socket(host: "127.0.0.1", port: 1)
        #expect(taken.fd == fd)
        #expect(!sockets.isInherited(host: "127.0.0.1", port: 1))
        #expect(sockets.handoff == [taken])
        sockets.closed(taken)
        #expect(sockets.handoff.isEmpty)
        close(fd)
        let stopped = CallCounter()
        await sockets.onStopAccepting { stopped.add() }
        await sockets.stopAccepting()
        await sockets.onStopAccepting { stopped.add() }
        #expect(stopped.value == 2)
    }

    @Test("after-stop actions run once every listener stopped (a proxy's drain notice), in registration order; unregistered ones never")
    func afterStopAccepting() async {
        let sockets = ListenerSockets(environment: [:])
        let order = Mutex<[String]>([])
        await sockets.afterStopAccepting { order.withLock { $0.append("after 1") } }
        await sockets.onStopAccepting { order.withLock { $0.append("listener") } }
        let dropped = await sockets.afterStopAccepting { order.withLock { $0.append("dropped") } }
        await sockets.afterStopAccepting { order.withLock { $0.append("after 2") } }
        sockets.unregister(dropped)
        #expect(order.withLock { $0 }.isEmpty)
        await sockets.stopAccepting()
        #expect(order.withLock { $0 } == ["listener", "after 1", "after 2"])
        // Registered after the stop: runs at once.
        await sockets.afterStopAccepting { order.withLock { $0.append("late") } }
        #expect(order.withLock { $0 }.last == "late")
    }

    @Test("held listeners wait until accepting resumes")
    func hold() async {
        let sockets = ListenerSockets(environment: [:])
        sockets.holdAccepting()
        let passed = CallCounter()
        let waiter = Task {
            await sockets.untilAccepting()
            passed.add()
        }
        try? await Task.sleep(for: .milliseconds(50))
        #expect(passed.value == 0)
        sockets.resumeAccepting()
        await waiter.value
        #expect(passed.value == 1)
        await sockets.untilAccepting()
    }

    @Test("teleport.shutdown_delay: 30 h by default, a Go duration in the file")
    func shutdownDelay() throws {
        #expect(FileConfig().teleport.shutdownDelay == 30 * 3600)
        let config = try FileConfig.parse("teleport:\n  shutdown_delay: 90s\n", file: "t.yaml")
        #expect(config.teleport.shutdownDelay == 90)
        #expect(throws: TeleportError.self) { try FileConfig.parse("teleport:\n  shutdown_delay: soon\n", file: "t.yaml") }
    }
}

final class CallCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func add() { lock.withLock { count += 1 } }
}
