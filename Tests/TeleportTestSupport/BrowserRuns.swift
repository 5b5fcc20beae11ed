import Foundation

/// One chromium at a time: the browser scripts (Tests/browser/*.py) of different suites would
/// otherwise run side by side, and several chromium processes on two cores slowed each script past
/// its own waits (a full run failed `top` in the web terminal and the audit page of the replay test,
/// which pass in seconds alone).
public actor BrowserRuns {
    public static let shared = BrowserRuns()
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    private func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func release() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }

    /// Runs `body` (a browser script) once no other browser script runs.
    public func exclusively<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }
}

extension TestSupport {
    /// ``run(_:_:environment:timeout:)`` for a browser script: waits until no other one runs.
    public static func runBrowser(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: Duration = .seconds(60)
    ) async throws -> CommandResult {
        try await BrowserRuns.shared.exclusively {
            try await run(executable, arguments, environment: environment, timeout: timeout)
        }
    }
}
