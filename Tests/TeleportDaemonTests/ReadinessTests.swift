import TeleportDaemon
import Testing

@Suite("Readiness")
struct ReadinessTests {
    @Test func pendingListsUnreadyComponentsSorted() {
        let readiness = Readiness(expected: ["proxy", "auth", "node"])
        #expect(readiness.pending == ["auth", "node", "proxy"])
        readiness.markReady("auth")
        #expect(readiness.pending == ["node", "proxy"])
        readiness.markReady("node")
        readiness.markReady("proxy")
        #expect(readiness.pending == [])
    }

    @Test func problemsAreListedUntilCleared() {
        let readiness = Readiness(expected: ["auth"])
        readiness.markReady("auth")
        readiness.setProblem("proxy", "no auth server answers the proxy")
        readiness.setProblem("backend", "timeout")
        #expect(readiness.currentProblems == ["backend: timeout", "proxy: no auth server answers the proxy"])
        #expect(readiness.pending.isEmpty, "a problem is not a start-up wait")
        readiness.setProblem("backend", nil)
        readiness.setProblem("proxy", nil)
        #expect(readiness.currentProblems.isEmpty)
    }

    @Test func markNotReadyPutsAComponentBack() {
        let readiness = Readiness(expected: ["auth", "node"])
        readiness.markReady("auth")
        readiness.markReady("node")
        readiness.markNotReady("node")
        #expect(readiness.pending == ["node"])
        readiness.markReady("node")
        #expect(readiness.pending.isEmpty)
    }

    @Test func unexpectedComponentsDoNotCount() {
        let readiness = Readiness(expected: ["auth"])
        readiness.markReady("kubernetes")
        #expect(readiness.pending == ["auth"])
        readiness.markReady("auth")
        readiness.markReady("auth")
        #expect(readiness.pending == [])
    }

    @Test func nothingExpectedIsReady() {
        #expect(Readiness(expected: []).pending == [])
    }

    @Test func concurrentMarksAreAllSeen() async {
        let names = (0..<200).map { "component-\($0)" }
        let readiness = Readiness(expected: Set(names))
        await withTaskGroup(of: Void.self) { group in
            for name in names { group.addTask { readiness.markReady(name) } }
        }
        #expect(readiness.pending == [])
    }
}
