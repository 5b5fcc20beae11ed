import Synchronization

/// Which of the enabled services are up; `/readyz` answers 200 only when all are.
public final class Readiness: Sendable {
    private let state: Mutex<(expected: Set<String>, ready: Set<String>)>
    private let drainingState = Mutex(false)

    /// True once a graceful restart or stop began draining: `/readyz` answers 503.
    public var draining: Bool {
        get { drainingState.withLock { $0 } }
        set { drainingState.withLock { $0 = newValue } }
    }

    /// Creates readiness for the named components.
    public init(expected: Set<String>) {
        state = Mutex((expected, []))
    }

    /// Marks `component` ready.
    public func markReady(_ component: String) {
        state.withLock { _ = $0.ready.insert(component) }
    }

    /// Marks `component` not ready.
    public func markNotReady(_ component: String) {
        state.withLock { _ = $0.ready.remove(component) }
    }

    /// The components not yet ready (empty when ready).
    public var pending: [String] {
        state.withLock { $0.expected.subtracting($0.ready).sorted() }
    }
}
