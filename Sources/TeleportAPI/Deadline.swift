import Synchronization

/// Runs `body`; if it has not finished after `limit`, cancels it and throws
/// `TeleportError.connectionProblem(timeoutMessage())` (for calls to a peer that may never answer).
public func withDeadline<T: Sendable>(
    _ limit: Duration, timeoutMessage: @escaping @Sendable () -> String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw TeleportError.connectionProblem(timeoutMessage())
        }
        defer { group.cancelAll() }
        guard let value = try await group.next() else { throw TeleportError.connectionProblem(timeoutMessage()) }
        return value
    }
}

/// Like ``withDeadline(_:timeoutMessage:_:)``, but once `limit` has passed it throws without waiting
/// for `body` to end: `body` is cancelled and left behind, its result dropped. For awaits that may
/// ignore cancellation (a query on a connection that never answers), where waiting would hang the
/// caller. The caller's cancellation reaches `body`.
public func withAbandoningDeadline<T: Sendable>(
    _ limit: Duration, timeoutMessage: @escaping @Sendable () -> String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let outcome = ResumeOnce<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            outcome.set(continuation)
            let work = Task {
                let result: Result<T, any Error>
                do { result = .success(try await body()) } catch { result = .failure(error) }
                outcome.take()?.resume(with: result)
            }
            outcome.setWork(work)
            Task {
                try? await Task.sleep(for: limit)
                guard let waiting = outcome.take() else { return }
                work.cancel()
                waiting.resume(throwing: TeleportError.connectionProblem(timeoutMessage()))
            }
        }
    } onCancel: {
        outcome.cancelWork()
    }
}

/// A continuation resumed by whichever of two tasks comes first, and the task doing the work.
final class ResumeOnce<T: Sendable>: Sendable {
    private let state = Mutex<CheckedContinuation<T, any Error>?>(nil)
    private let work = Mutex<Task<Void, Never>?>(nil)
    func set(_ continuation: CheckedContinuation<T, any Error>) { state.withLock { $0 = continuation } }
    func take() -> CheckedContinuation<T, any Error>? { state.withLock { $0.take() } }
    func setWork(_ task: Task<Void, Never>) { work.withLock { $0 = task } }
    func cancelWork() { work.withLock { $0 }?.cancel() }
}
