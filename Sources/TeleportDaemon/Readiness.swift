import Synchronization

/// Which of the enabled services are up; `/readyz` answers 200 only when all are.
public final class Readiness: Sendable {
    private let state: Mutex<(expected: Set<String>, ready: Set<String>)>
    private let drainingState = Mutex(false)
    /// Components that were ready but lost what they depend on (the backend, the auth servers), with why.
    private let problems = Mutex<[String: String]>([:])

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

    /// Records that `component` lost (a reason) or regained (nil) what it depends on: while any has a
    /// problem, `/readyz` answers 503, so a load balancer sends no new connections here.
    public func setProblem(_ component: String, _ problem: String?) {
        problems.withLock { $0[component] = problem }
    }

    /// The current problems, one line each (empty when none).
    public var currentProblems: [String] {
        problems.withLock { $0.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" } }
    }

    /// The components not yet ready (empty when ready).
    public var pending: [String] {
        state.withLock { $0.expected.subtracting($0.ready).sorted() }
    }
}
