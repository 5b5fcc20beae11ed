public import Foundation
import Metrics
public import Logging
public import TeleportAPI

/// Counters of the audit log, exported on `/metrics`.
public enum AuditMetrics {
    /// `teleport_audit_events_dropped_total`: events dropped under `audit_failure: continue`.
    static let dropped = Counter(label: "teleport_audit_events_dropped_total")

    /// Counts dropped events.
    public static func countDropped(_ count: Int = 1) { dropped.increment(by: count) }
}

/// A node's or proxy's outbox of audit events: handlers add events without waiting (from any
/// thread, in order), and ``run(send:)`` delivers them to the auth service in batches, retrying
/// with backoff while it is unreachable. The queue is bounded; what happens when it is full is
/// explicit (``WhenFull``), and never a silent loss.
public final class AuditQueue: @unchecked Sendable {
    /// The behaviour when the auth service has been unreachable long enough to fill the queue.
    public enum WhenFull: String, Sendable {
        /// Refuse new sessions (``admits`` is false) and refuse the event with an error; the
        /// default, as an unaudited session is what an audit log exists to prevent.
        case failClosed = "fail_closed"
        /// Keep going: drop the event, count it in ``dropped``, and log an alert line.
        case dropAndContinue = "continue"
    }

    /// The most events sent in one request: one request per 100 events could not keep up with a
    /// proxied app's `app.session.request` events (a few thousand a second), and the queue filled.
    public static let batchSize = 1000

    /// The most events held.
    public let capacity: Int
    /// The behaviour when full.
    public let whenFull: WhenFull
    private let logger: Logger
    private let lock = NSLock()
    private var events: [AuditEvent] = []
    private var droppedCount = 0
    /// The auth service reported that it cannot store events (its disk is full).
    private var sinkFailing = false
    private var waiter: CheckedContinuation<Void, Never>?
    private var stopped = false

    /// Creates an empty queue.
    public init(capacity: Int = 10_000, whenFull: WhenFull = .failClosed, logger: Logger) {
        self.capacity = capacity
        self.whenFull = whenFull
        self.logger = logger
    }

    /// Adds an event. Throws when the queue is full and the policy is ``WhenFull/failClosed``.
    public func add(_ event: AuditEvent) throws {
        let woken: CheckedContinuation<Void, Never>?
        lock.lock()
        if events.count >= capacity {
            switch whenFull {
            case .failClosed:
                lock.unlock()
                throw TeleportError.connectionProblem(
                    "the audit log is unavailable (\(capacity) events wait for the auth service); refusing to go on unaudited")
            case .dropAndContinue:
                droppedCount += 1
                AuditMetrics.dropped.increment()
                let dropped = droppedCount
                lock.unlock()
                logger.error("ALERT: audit event dropped: the auth service has been unreachable", metadata: ["tp.dropped": "\(dropped)"])
                return
            }
        }
        events.append(event)
        woken = waiter
        waiter = nil
        lock.unlock()
        woken?.resume()
    }

    /// Whether new sessions may start: false while the queue is full under ``WhenFull/failClosed``.
    public var admits: Bool {
        lock.withLock { whenFull != .failClosed || (events.count < capacity && !sinkFailing) }
    }

    /// Events dropped under ``WhenFull/dropAndContinue``.
    public var dropped: Int { lock.withLock { droppedCount } }

    /// Events waiting to be delivered.
    public var pending: Int { lock.withLock { events.count } }

    /// Delivers events with `send` (up to ``batchSize`` at a time) until the task is cancelled or
    /// ``stop()`` is called and the queue is empty. A batch that fails is sent again.
    public func run(send: @Sendable ([AuditEvent]) async throws -> Void) async {
        var delay: Duration = .milliseconds(200)
        while true {
            let batch: [AuditEvent] = lock.withLock { Array(events.prefix(Self.batchSize)) }
            if batch.isEmpty {
                if lock.withLock({ stopped }) || Task.isCancelled { return }
                await withCheckedContinuation { continuation in
                    lock.lock()
                    if events.isEmpty && !stopped {
                        waiter = continuation
                        lock.unlock()
                    } else {
                        lock.unlock()
                        continuation.resume()
                    }
                }
                continue
            }
            do {
                try await send(batch)
                lock.withLock {
                    events.removeFirst(min(batch.count, events.count))
                    sinkFailing = false
                }
                delay = .milliseconds(200)
            } catch let error as TeleportError where error.code == .auditUnavailable {
                // The auth service is up but cannot store events: fail closed (no new sessions
                // until it can, the events kept) or drop them, counted, with an alert.
                let dropping = whenFull == .dropAndContinue
                lock.withLock {
                    sinkFailing = true
                    if dropping {
                        events.removeFirst(min(batch.count, events.count))
                        droppedCount += batch.count
                        AuditMetrics.dropped.increment(by: batch.count)
                    }
                }
                logger.error(
                    "ALERT: \(error.message)\(dropping ? "; \(batch.count) events dropped (audit_failure: continue)" : "; no new sessions until it can (fail closed)")")
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            } catch let error as TeleportError where error.code == .badParameter {
                // The auth service refuses these events as malformed: sending them again cannot
                // help, and they must not block the ones behind them.
                lock.withLock {
                    events.removeFirst(min(batch.count, events.count))
                    droppedCount += batch.count
                }
                logger.error("ALERT: the auth service refused \(batch.count) audit events: \(error.message)")
            } catch {
                if Task.isCancelled { return }
                logger.warning("cannot deliver audit events yet: \(error); retrying", metadata: ["tp.pending": "\(pending)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(10))
            }
        }
    }

    /// Lets ``run(send:)`` return once the queue is empty.
    public func stop() {
        let woken: CheckedContinuation<Void, Never>? = lock.withLock {
            stopped = true
            defer { waiter = nil }
            return waiter
        }
        woken?.resume()
    }
}
