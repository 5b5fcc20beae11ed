import Foundation
import Synchronization
import TeleportWire

/// The interactive Kubernetes sessions (`kubectl exec -it`, `attach -it`) this service relays
/// now, for `tsh join`: each session's output goes to its joiners as well as to its owner, and
/// a joiner in `peer` mode types into it.
final class KubeLiveSessions: Sendable {
    private let sessions = Mutex<[String: KubeLiveSession]>([:])

    func add(_ session: KubeLiveSession) { sessions.withLock { $0[session.sid] = session } }

    func remove(_ sid: String) { _ = sessions.withLock { $0.removeValue(forKey: sid) } }

    func session(_ sid: String) -> KubeLiveSession? { sessions.withLock { $0[sid] } }
}

/// One live session: who owns it, where it runs, how a peer's keystrokes reach the pod, and
/// the joiners' outboxes.
final class KubeLiveSession: Sendable {
    let sid: String
    let owner: String
    let cluster: String
    let namespace: String
    let pod: String
    /// Writes one frame (already encoded as the client's) towards the API server.
    let inject: @Sendable ([UInt8]) async throws -> Void
    /// The most frames a joiner may have waiting; one that falls further behind is dropped.
    static let joinerBacklog = 1024

    struct Joiners {
        var outboxes: [UUID: AsyncStream<[UInt8]>.Continuation] = [:]
        var ended = false
        /// Everyone who took part, in order, the owner first.
        var participants: [String] = []
    }
    private let joiners = Mutex(Joiners())

    init(sid: String, owner: String, cluster: String, namespace: String, pod: String, inject: @escaping @Sendable ([UInt8]) async throws -> Void) {
        self.sid = sid
        self.owner = owner
        self.cluster = cluster
        self.namespace = namespace
        self.pod = pod
        self.inject = inject
        joiners.withLock { $0.participants = [owner] }
    }

    /// Everyone who took part so far, the owner first.
    var participants: [String] { joiners.withLock { $0.participants } }

    /// A new joiner's outbox (already finished when the session has ended).
    func join(user: String) -> (UUID, AsyncStream<[UInt8]>) {
        let id = UUID()
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingOldest(Self.joinerBacklog))
        let added = joiners.withLock { state -> Bool in
            guard !state.ended else { return false }
            state.outboxes[id] = continuation
            if !state.participants.contains(user) { state.participants.append(user) }
            return true
        }
        if !added { continuation.finish() }
        return (id, stream)
    }

    /// Removes a joiner.
    func leave(_ id: UUID) {
        joiners.withLock { $0.outboxes.removeValue(forKey: id) }?.finish()
    }

    /// Hands one server frame to every joiner; a joiner whose outbox is full is let go.
    func broadcast(_ frame: [UInt8]) {
        let outboxes = joiners.withLock { Array($0.outboxes) }
        for (id, outbox) in outboxes {
            if case .dropped = outbox.yield(frame) { leave(id) }
        }
    }

    /// The number of joiners now.
    var joinerCount: Int { joiners.withLock { $0.outboxes.count } }

    /// Ends the session for its joiners: the status frame, then their outboxes finish.
    func end(status: [UInt8]?) {
        let outboxes = joiners.withLock { state -> [AsyncStream<[UInt8]>.Continuation] in
            state.ended = true
            defer { state.outboxes = [:] }
            return Array(state.outboxes.values)
        }
        for outbox in outboxes {
            if let status { outbox.yield(status) }
            outbox.finish()
        }
    }
}
