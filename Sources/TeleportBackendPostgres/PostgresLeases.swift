import PostgresNIO
import Synchronization
import TeleportAPI

/// Bounds how long a call waits for a connection from the pool (issue 18).
///
/// PostgresNIO's pool queues a lease until a connection is free or the pool's circuit breaker trips
/// (after its connection attempts have failed for a while: tens of seconds). When another client
/// holds every slot PostgreSQL allows (`max_connections`), or the pool's own connections are all
/// busy, a call would wait that long. Here a call waits at most ``timeout`` for its connection and
/// then fails with one line naming the likely cause; once it has the connection, the call itself
/// is not bounded here.
///
/// The lease is taken by a child task that hands the connection over and holds it until the call is
/// done; when the wait times out (or the caller is cancelled) the child is cancelled, which withdraws
/// the request from the pool's queue. A connection that arrives after the timeout goes straight back.
final class PostgresLeases: Sendable {
    /// How long a call waits for a pooled connection.
    let timeout: Duration
    /// `pool_max_conns`.
    let poolSize: Int
    /// The server, for messages.
    let server: String
    /// Connections handed to calls and not yet given back.
    private let inUse = Atomic<Int>(0)

    init(timeout: Duration, poolSize: Int, server: String) {
        self.timeout = timeout
        self.poolSize = poolSize
        self.server = server
    }

    /// The number of connections calls hold now.
    var busy: Int { inUse.load(ordering: .relaxed) }

    /// The error of a wait that timed out with `busy` connections held by calls.
    static func timeoutError(timeout: Duration, busy: Int, poolSize: Int, server: String) -> TeleportError {
        let seconds = timeout.components.seconds
        if busy >= poolSize {
            return .limitExceeded(
                "all \(poolSize) connections of the pool to PostgreSQL at \(server) stayed busy for \(seconds) s (pool_max_conns=\(poolSize)); "
                    + "the store is overloaded: try again, or raise pool_max_conns in conn_string (and max_connections on the server)")
        }
        return .connectionProblem(
            "PostgreSQL at \(server) gave no connection within \(seconds) s (\(busy) of pool_max_conns=\(poolSize) in use): "
                + "it has no free connections (max_connections, perhaps all taken by other clients) or does not answer; "
                + "try again, and check the server's max_connections and pg_stat_activity")
    }

    /// Runs `body` on a pooled connection, waiting at most ``timeout`` for it. The driver's errors
    /// pass through unconverted (the caller converts them); a timed-out wait throws the one-line
    /// ``timeoutError(timeout:busy:poolSize:server:)``.
    func with<T>(_ client: PostgresClient, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let handoff = LeaseHandoff()
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        defer { release.finish() }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await client.withConnection { connection in
                        guard handoff.deliver(connection) else { return }
                        for await _ in released {}
                    }
                } catch {
                    handoff.fail(error)
                }
            }
            let timer = Task { [self] in
                try await Task.sleep(for: timeout)
                handoff.fail(Self.timeoutError(timeout: timeout, busy: busy, poolSize: poolSize, server: server))
            }
            defer { timer.cancel() }
            let connection = try await handoff.wait()
            inUse.add(1, ordering: .relaxed)
            defer {
                inUse.subtract(1, ordering: .relaxed)
                release.finish()
            }
            return try await body(connection)
        }
    }
}

/// One connection handed from the leasing task to the caller, or the reason there is none; the
/// first outcome wins.
final class LeaseHandoff: Sendable {
    private struct State {
        var outcome: Result<PostgresConnection, any Error>?
        var waiter: CheckedContinuation<PostgresConnection, any Error>?
    }

    private let state = Mutex(State())

    /// Hands `connection` over; false when the caller has already given up (the connection goes back).
    func deliver(_ connection: PostgresConnection) -> Bool { resolve(.success(connection)) }

    /// Ends the wait with `error` (the lease failed, or the wait timed out); ignored after an outcome.
    func fail(_ error: any Error) { resolve(.failure(error)) }

    @discardableResult private func resolve(_ outcome: Result<PostgresConnection, any Error>) -> Bool {
        let (first, waiter) = state.withLock { state -> (Bool, CheckedContinuation<PostgresConnection, any Error>?) in
            guard state.outcome == nil else { return (false, nil) }
            state.outcome = outcome
            return (true, state.waiter.take())
        }
        waiter?.resume(with: outcome)
        return first
    }

    /// The connection, or the error that ended the wait.
    func wait() async throws -> PostgresConnection {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<PostgresConnection, any Error>? = state.withLock { state in
                if let outcome = state.outcome { return outcome }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
