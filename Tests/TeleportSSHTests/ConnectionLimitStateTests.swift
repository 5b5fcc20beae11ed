import Foundation
import Testing

@testable import TeleportSSH

/// The counting behind `teleport.connection_limits`: no sockets, no clock.
@Suite("connection limit state")
struct ConnectionLimitStateTests {
    @Test("max_connections: the excess is refused; a closed connection frees its place; 0 is no limit")
    func connections() {
        var state = ConnectionLimitState(maxConnections: 2, maxUsers: 0)
        var results: [Bool] = []
        for _ in 0..<4 { results.append(state.open()) }
        #expect(results == [true, true, false, false])
        #expect(state.openConnections == 2)
        state.close()
        results = [state.open(), state.open()]
        #expect(results == [true, false])
        var unlimited = ConnectionLimitState(maxConnections: 0, maxUsers: 0)
        var admitted = 0
        for _ in 0..<10_000 where unlimited.open() { admitted += 1 }
        #expect(admitted == 10_000)
    }

    @Test("max_users: distinct users; a user already in may open more connections; the place frees when the last one closes")
    func users() {
        var state = ConnectionLimitState(maxConnections: 0, maxUsers: 2)
        var results = ["alice", "bob", "carol", "alice"].map { state.admit(user: $0) }
        #expect(results == [true, true, false, true])
        #expect(state.users == ["alice": 2, "bob": 1])
        state.release(user: "alice")
        results = [state.admit(user: "carol")]
        state.release(user: "alice")
        results.append(state.admit(user: "carol"))
        #expect(results == [false, true])
        state.release(user: "nobody")
        #expect(state.users == ["bob": 1, "carol": 1])
    }

    @Test("refusals are reported at most once per interval, with the count since the last report")
    func reports() {
        var state = ConnectionLimitState(maxConnections: 1, maxUsers: 1, logInterval: .seconds(10))
        let start = ContinuousClock.now
        var reports: [Int?] = []
        reports.append(state.refused(.maxConnections, at: start))
        reports.append(state.refused(.maxConnections, at: start + .seconds(1)))
        reports.append(state.refused(.maxConnections, at: start + .seconds(9)))
        // Another reason has its own report.
        reports.append(state.refused(.maxUsers, at: start + .seconds(9)))
        reports.append(state.refused(.maxConnections, at: start + .seconds(10)))
        reports.append(state.refused(.maxConnections, at: start + .seconds(30)))
        #expect(reports == [1, nil, nil, 1, 3, 1])
    }
}
