import Logging
import ServiceLifecycle
import Synchronization
import TeleportAPI
import TeleportBackend

/// Reads one key of the backend every `interval` and tells ``Readiness`` when the store stops or
/// starts answering, so that `/readyz` on an auth server behind a load balancer says 503 while its
/// store is unreachable (issue 18). A read that takes longer than `timeout` counts as a failure; a
/// read still hanging is not doubled by the next probe.
struct BackendHealthService: Service, CustomStringConvertible {
    let backend: any Backend
    let readiness: Readiness
    let logger: Logger
    var interval: Duration = .seconds(3)
    var timeout: Duration = .seconds(5)
    /// After a successful read: why the store takes no writes, if it does not (PostgreSQL: a
    /// standby or a read-only database). Part of the probe, so under the same timeout.
    var writeCheck: (@Sendable () async -> String?)?
    /// A probe read running longer than this is cancelled and a new one starts.
    var abandonAfter: Duration = .seconds(30)

    var description: String { "BackendHealthService" }

    /// The probe's key: never written, so a healthy store answers "not found".
    static let probeKey = "/readiness/probe"

    func run() async throws {
        let running = ProbeSlot()
        try? await cancelWhenGracefulShutdown {
            var reported: String?
            while !Task.isCancelled {
                let problem = await probe(running)
                if problem != reported {
                    readiness.setProblem("backend", problem)
                    if let problem {
                        logger.warning("the backend does not answer; /readyz says not ready", metadata: ["tp.error": "\(problem)"])
                    } else if reported != nil {
                        logger.info("the backend answers again; /readyz says ready")
                    }
                    reported = problem
                }
                try await Task.sleep(for: interval)
            }
        }
        running.task.withLock { $0?.cancel() }
    }

    /// One read: nil when the store answered (an item or "not found"), else why not.
    private func probe(_ running: ProbeSlot) async -> String? {
        let (answers, answer) = AsyncStream.makeStream(of: String?.self, bufferingPolicy: .bufferingNewest(2))
        // Claims the slot before the read starts (the read frees it when it ends). A read hung for
        // longer than `abandonAfter` is cancelled and left behind (seen: a read waiting for a pool
        // connection while PostgreSQL had none free never ended, and /readyz stayed 503 after the
        // store recovered).
        let now = ContinuousClock.now
        let abandonLimit = abandonAfter
        let claimed: (generation: Int, abandoned: Bool)? = running.state.withLock { state in
            if let since = state.since, now - since < abandonLimit { return nil }
            let abandoned = state.since != nil
            state.since = now
            state.generation += 1
            return (state.generation, abandoned)
        }
        if let claimed {
            if claimed.abandoned {
                running.task.withLock { $0?.cancel() }
                logger.warning("a read of the backend hung; left behind", metadata: ["tp.after": "\(abandonLimit)"])
            }
            let generation = claimed.generation
            let backend = self.backend
            let writeCheck = self.writeCheck
            let task = Task {
                do {
                    _ = try await backend.get(Self.probeKey)
                    answer.yield(await writeCheck?() ?? nil)
                } catch let error as TeleportError where error.code == .notFound {
                    answer.yield(await writeCheck?() ?? nil)
                } catch {
                    answer.yield((error as? TeleportError)?.message ?? "\(error)")
                }
                running.state.withLock { state in
                    if state.generation == generation { state.since = nil }
                }
            }
            running.task.withLock { $0 = task }
        }
        let limit = timeout
        let timer = Task {
            try? await Task.sleep(for: limit)
            answer.yield("the backend did not answer in \(limit)")
        }
        defer { timer.cancel() }
        for await result in answers { return result }
        return nil
    }
}

/// The probe read: since when one is running (nil: none) and which, and its task (cancelled at
/// shutdown, or when abandoned).
final class ProbeSlot: Sendable {
    struct State {
        var since: ContinuousClock.Instant?
        var generation = 0
    }
    let state = Mutex(State())
    let task = Mutex<Task<Void, Never>?>(nil)
}
