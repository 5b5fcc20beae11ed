import CTeleportShims
import Foundation
import Glibc

/// Waits for the daemon's session processes on ONE thread (issue 13, item 5): each process gets a
/// pidfd (`pidfd_open`), and the thread polls them all, reaping a process (`waitpid` of its pid,
/// never of any child, so other waiters such as command labels keep theirs) when its pidfd turns
/// readable. A thread per session, as before, made 100 sessions 100 threads, whose stacks glibc
/// caches and whose allocations spread over up to 8 malloc arenas per core: memory the daemon kept
/// after the sessions ended. Where pidfds are unavailable (Linux before 5.3, a seccomp filter), a
/// process falls back to a thread of its own.
package final class ProcessReaper: @unchecked Sendable {
    /// The daemon's reaper.
    package static let shared = ProcessReaper()

    private let lock = NSLock()
    /// pid → (its pidfd, what to call with its exit).
    private var waiting: [Int32: (pidfd: CInt, done: @Sendable (ProcessExit) -> Void)] = [:]
    /// Wakes the thread when a process is added; -1 when eventfd failed (then every process falls back).
    private let wake: CInt
    private var started = false

    private init() {
        wake = teleport_eventfd()
    }

    /// The processes waited for now (tests).
    package var count: Int { lock.withLock { waiting.count } }

    /// Calls `done` (on the reaper's thread) with `pid`'s exit once it has exited.
    package func wait(for pid: Int32, done: @escaping @Sendable (ProcessExit) -> Void) {
        let pidfd = wake >= 0 ? teleport_pidfd_open(pid) : -1
        guard pidfd >= 0 else {
            Self.waitOnOwnThread(pid, done: done)
            return
        }
        let start = lock.withLock {
            waiting[pid] = (pidfd, done)
            defer { started = true }
            return !started
        }
        if start {
            let thread = Thread { [self] in run() }
            thread.name = "teleport-reaper"
            thread.stackSize = 128 * 1024
            thread.start()
        }
        var one: UInt64 = 1
        _ = Glibc.write(wake, &one, MemoryLayout<UInt64>.size)
    }

    private func run() {
        while true {
            var fds = [pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            var pids: [Int32] = []
            lock.withLock {
                for (pid, entry) in waiting {
                    fds.append(pollfd(fd: entry.pidfd, events: Int16(POLLIN), revents: 0))
                    pids.append(pid)
                }
            }
            guard poll(&fds, nfds_t(fds.count), -1) >= 0 else { continue }  // EINTR
            if fds[0].revents != 0 {
                var value: UInt64 = 0
                _ = read(wake, &value, MemoryLayout<UInt64>.size)
            }
            for (index, pid) in pids.enumerated() where fds[index + 1].revents != 0 {
                var status: Int32 = 0
                let reaped = waitpid(pid, &status, WNOHANG)
                if reaped == 0 { continue }  // not yet (spurious wake-up)
                guard let entry = lock.withLock({ waiting.removeValue(forKey: pid) }) else { continue }
                close(entry.pidfd)
                // Reaped elsewhere (ECHILD): as the per-thread waiter did, status 255.
                entry.done(reaped < 0 ? .status(255) : Self.exit(status))
            }
            // An emptied dictionary keeps its capacity: give it back.
            lock.withLock { if waiting.isEmpty { waiting = [:] } }
        }
    }

    private static func waitOnOwnThread(_ pid: Int32, done: @escaping @Sendable (ProcessExit) -> Void) {
        let thread = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 {
                if errno != EINTR {
                    done(.status(255))
                    return
                }
            }
            done(exit(status))
        }
        thread.stackSize = 128 * 1024
        thread.start()
    }

    private static func exit(_ status: Int32) -> ProcessExit {
        let low = status & 0x7f
        if low == 0 { return .status(Int((status >> 8) & 0xff)) }
        return .signal(Signals.name(of: low), coreDumped: status & 0x80 != 0)
    }
}

/// How a child process ended (a session's, a label command's).
public enum ProcessExit: Sendable, Equatable {
    /// It exited with this status.
    case status(Int)
    /// A signal killed it (`TERM`, `KILL`, ... without the `SIG` prefix).
    case signal(String, coreDumped: Bool)
}

/// SSH signal names (RFC 4254 section 6.10) and their numbers.
public enum Signals {
    static let table: [(String, Int32)] = [
        ("ABRT", SIGABRT), ("ALRM", SIGALRM), ("FPE", SIGFPE), ("HUP", SIGHUP), ("ILL", SIGILL), ("INT", SIGINT),
        ("KILL", SIGKILL), ("PIPE", SIGPIPE), ("QUIT", SIGQUIT), ("SEGV", SIGSEGV), ("TERM", SIGTERM),
        ("USR1", SIGUSR1), ("USR2", SIGUSR2),
    ]

    /// The number of the SSH signal `name`, nil when it is not one of RFC 4254's.
    public static func number(of name: String) -> Int32? {
        table.first { $0.0 == name }?.1
    }

    /// The SSH name of signal `number` (`"TERM"`), or `"SIG<n>"` for others.
    public static func name(of number: Int32) -> String {
        table.first { $0.1 == number }?.0 ?? "SIG\(number)"
    }
}
