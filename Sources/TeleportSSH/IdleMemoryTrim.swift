import CTeleportShims
import Dispatch
import Foundation

/// Gives the heap's freed memory back to the system when the daemon's last SSH connection has
/// closed (issue 13, item 5). glibc keeps what a burst of sessions freed inside its arenas (only the
/// top of the main heap shrinks by itself), so after 100 sessions the daemon stayed ~8 MiB above
/// its baseline for good; `malloc_trim(0)` releases the free pages of every arena. It runs once
/// per idle period, `delay` after the count reaches zero (the sessions' teardown finishes on the
/// event loops first), and not at all while a new connection arrives in between.
final class IdleMemoryTrim: @unchecked Sendable {
    /// The daemon's trimmer (SSH servers count their connections here).
    static let shared = IdleMemoryTrim(delay: .seconds(1))

    private let lock = NSLock()
    private let delay: DispatchTimeInterval
    private var open = 0
    private var generation = 0
    private var trimmed = 0
    /// Called after each scheduled check: true when it trimmed, false when it was skipped (tests).
    private let afterCheck: @Sendable (Bool) -> Void

    init(delay: DispatchTimeInterval, afterCheck: @escaping @Sendable (Bool) -> Void = { _ in }) {
        self.delay = delay
        self.afterCheck = afterCheck
    }

    /// How many times the heap was trimmed (tests).
    var trims: Int { lock.withLock { trimmed } }

    /// An SSH connection was accepted.
    func opened() {
        lock.withLock {
            open += 1
            generation += 1
        }
    }

    /// An SSH connection closed: the last one schedules a trim.
    func closed() {
        let scheduled: Int? = lock.withLock {
            open = max(0, open - 1)
            generation += 1
            return open == 0 ? generation : nil
        }
        guard let scheduled else { return }
        DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [self] in
            // Still idle since the last close: nothing opened or closed meanwhile.
            guard lock.withLock({ open == 0 && generation == scheduled }) else {
                afterCheck(false)
                return
            }
            _ = teleport_malloc_trim()
            lock.withLock { trimmed += 1 }
            afterCheck(true)
        }
    }
}
