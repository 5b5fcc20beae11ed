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
