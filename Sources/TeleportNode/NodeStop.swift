import Foundation
public import ServiceLifecycle
import Synchronization
public import TeleportRecording

/// A one-shot signal that this host's node identity was removed from the cluster: the node's
/// services (SSH, uploads, heartbeats) stop, while other services of the same process (auth,
/// proxy) keep running.
public final class NodeStop: Sendable {
    struct State {
        var fired = false
        var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    /// Creates an unfired signal.
    public init() {}

    /// True once ``fire()`` was called.
    public var fired: Bool { state.withLock { $0.fired } }

    /// Fires the signal: every waiter resumes, and later waits return at once.
    public func fire() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.fired = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the signal fired, or when the task is cancelled.
    public func wait() async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.fired || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Returns at the process's graceful shutdown or when `stop` fires, whichever comes first.
    public static func untilShutdown(or stop: NodeStop?) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await gracefulShutdown() }
            if let stop { group.addTask { await stop.wait() } }
            _ = await group.next()
            group.cancelAll()
        }
    }
}

extension NodeStop: UploadStop {}
