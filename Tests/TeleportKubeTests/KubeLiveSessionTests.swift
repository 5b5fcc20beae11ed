import Testing

@testable import TeleportKube

/// The registry of joinable Kubernetes sessions: joiners get the output from when they joined,
/// the status at the end, and a joiner that falls too far behind is let go (bounded memory).
@Suite("live Kubernetes sessions")
struct KubeLiveSessionTests {
    static func session() -> KubeLiveSession {
        KubeLiveSession(sid: "s1", owner: "bob", cluster: "dev", namespace: "default", pod: "web-0", inject: { _ in })
    }

    @Test("joiners get what is broadcast after they joined, then the status, then the end; participants are listed once each")
    func broadcastAndEnd() async {
        let live = Self.session()
        live.broadcast([1])
        let (_, first) = live.join(user: "carol")
        let (_, second) = live.join(user: "carol")
        live.broadcast([2])
        live.end(status: [3])
        var firstFrames: [[UInt8]] = []
        for await frame in first { firstFrames.append(frame) }
        var secondFrames: [[UInt8]] = []
        for await frame in second { secondFrames.append(frame) }
        #expect(firstFrames == [[2], [3]])
        #expect(secondFrames == [[2], [3]])
        #expect(live.participants == ["bob", "carol"])
        #expect(live.joinerCount == 0)
        // After the end, a join gets a finished outbox.
        let (_, late) = live.join(user: "dave")
        var lateFrames: [[UInt8]] = []
        for await frame in late { lateFrames.append(frame) }
        #expect(lateFrames.isEmpty)
    }

    @Test("a joiner that does not read is dropped once its backlog is full; the others go on")
    func slowJoinerDropped() async {
        let live = Self.session()
        let (_, slow) = live.join(user: "slow")
        for index in 0..<(KubeLiveSession.joinerBacklog + 5) { live.broadcast([UInt8(truncatingIfNeeded: index)]) }
        #expect(live.joinerCount == 0)
        var count = 0
        for await _ in slow { count += 1 }
        #expect(count == KubeLiveSession.joinerBacklog)
        let (_, fresh) = live.join(user: "fresh")
        live.broadcast([9])
        live.end(status: nil)
        var frames: [[UInt8]] = []
        for await frame in fresh { frames.append(frame) }
        #expect(frames == [[9]])
    }

    @Test("the registry finds sessions by id until they are removed")
    func registry() {
        let sessions = KubeLiveSessions()
        sessions.add(Self.session())
        #expect(sessions.session("s1")?.owner == "bob")
        #expect(sessions.session("s2") == nil)
        sessions.remove("s1")
        #expect(sessions.session("s1") == nil)
    }
}
