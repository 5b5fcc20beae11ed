import CTeleportShims
import Foundation
package import TeleportAPI

#if canImport(Glibc)
    import Glibc
#endif

/// Starting the process that takes over on a graceful restart (issue 19): the same binary (as it
/// is on disk now) with the same arguments, given the listening sockets, the data directory's lock
/// and the write end of a pipe it reports readiness on.
///
/// Descriptors are handed over as numbers 3, 4, ... in the new process: the listeners first
/// (``ListenerSockets/environmentKey`` names each by address), then the lock
/// (``lockKey``), the readiness pipe (``readyKey``) and the accept pipe (``acceptKey``): the new
/// process accepts only once this one stopped, so the two never race for a connection.
package enum ProcessHandoff {
    /// `TELEPORT_LOCK_FD`: the data directory's lock, already held.
    package static let lockKey = "TELEPORT_LOCK_FD"
    /// `TELEPORT_READY_FD`: where the new process writes `ready` once every service is up.
    package static let readyKey = "TELEPORT_READY_FD"
    /// `TELEPORT_ACCEPT_FD`: a pipe the new process reads; its end (this process stopped
    /// accepting, or died) lets the new process's listeners accept.
    package static let acceptKey = "TELEPORT_ACCEPT_FD"

    /// Which descriptor goes where, and the new process's environment.
    package struct Plan: Sendable, Equatable {
        /// (descriptor here, number in the new process), in order.
        package var moves: [(from: Int32, to: Int32)]
        /// The environment of the new process.
        package var environment: [String: String]
        /// Everything from this number up is closed in the new process.
        package var closeFrom: Int32

        package static func == (lhs: Plan, rhs: Plan) -> Bool {
            lhs.moves.map(\.from) == rhs.moves.map(\.from) && lhs.moves.map(\.to) == rhs.moves.map(\.to)
                && lhs.environment == rhs.environment && lhs.closeFrom == rhs.closeFrom
        }
    }

    /// Plans the handoff: pure.
    package static func plan(
        listeners: [ListenerSockets.Socket], lock: Int32?, ready: Int32, accept: Int32, environment: [String: String]
    ) -> Plan {
        var moves: [(from: Int32, to: Int32)] = []
        var next: Int32 = 3
        var handed: [ListenerSockets.Socket] = []
        for socket in listeners {
            moves.append((socket.fd, next))
            handed.append(.init(address: socket.address, fd: next))
            next += 1
        }
        var environment = environment
        environment[ListenerSockets.environmentKey] = nil
        environment[lockKey] = nil
        if !handed.isEmpty { environment[ListenerSockets.environmentKey] = ListenerSockets.format(handed) }
        if let lock {
            moves.append((lock, next))
            environment[lockKey] = "\(next)"
            next += 1
        }
        moves.append((ready, next))
        environment[readyKey] = "\(next)"
        next += 1
        moves.append((accept, next))
        environment[acceptKey] = "\(next)"
        next += 1
        return Plan(moves: moves, environment: environment, closeFrom: next)
    }

    /// The binary as it is on disk now (after an upgrade replaced it, the new one).
    static func executable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments.first ?? "teleport" }
        let path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return path.hasSuffix(" (deleted)") ? String(path.dropLast(" (deleted)".count)) : path
    }

    /// Starts the new process and waits (at most `timeout`) for it to say it is ready. Returns
    /// its pid and the descriptor to close once this process stopped accepting, or throws a
    /// ``TeleportError`` that says why it did not get ready.
    static func start(listeners: [ListenerSockets.Socket], lock: Int32?, timeout: Duration) async throws -> (pid: Int32, accept: Int32) {
        let (readyRead, readyWrite) = try makePipe()
        let acceptRead: Int32
        let acceptWrite: Int32
        do {
            (acceptRead, acceptWrite) = try makePipe()
        } catch {
            close(readyRead)
            close(readyWrite)
            throw error
        }
        let plan = plan(listeners: listeners, lock: lock, ready: readyWrite, accept: acceptRead, environment: ProcessInfo.processInfo.environment)
        let pid: pid_t
        do {
            pid = try spawn(executable(), arguments: CommandLine.arguments, plan: plan)
        } catch {
            for fd in [readyRead, readyWrite, acceptRead, acceptWrite] { close(fd) }
            throw error
        }
        close(readyWrite)
        close(acceptRead)
        defer { close(readyRead) }
        do {
            return (try await waitForReady(pid: pid, readEnd: readyRead, timeout: timeout), acceptWrite)
        } catch {
            close(acceptWrite)
            throw error
        }
    }

    static func makePipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw TeleportError.connectionProblem("cannot create a pipe (errno \(errno))") }
        _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        return (ends[0], ends[1])
    }

    /// posix_spawn with the plan's descriptors; signals back to their defaults, none blocked.
    static func spawn(_ path: String, arguments: [String], plan: Plan) throws -> pid_t {
        // Copies above every target number first, so that no move overwrites a later source.
        var copies: [(from: Int32, to: Int32)] = []
        defer { for copy in copies { close(copy.from) } }
        for move in plan.moves {
            let copy = fcntl(move.from, F_DUPFD_CLOEXEC, plan.closeFrom)
            guard copy >= 0 else { throw TeleportError.connectionProblem("cannot hand over descriptor \(move.from) (errno \(errno))") }
            copies.append((copy, move.to))
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for copy in copies { posix_spawn_file_actions_adddup2(&actions, copy.from, copy.to) }
        _ = teleport_spawn_close_from(&actions, plan.closeFrom)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGTERM, SIGINT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = plan.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard code == 0 else {
            throw TeleportError.connectionProblem("cannot start \(path): \(String(cString: strerror(code)))")
        }
        return pid
    }

    /// Reads the pipe until `ready`, its end (the process exited), or `timeout`.
    static func waitForReady(pid: pid_t, readEnd: Int32, timeout: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        var received = ""
        while ContinuousClock.now < deadline {
            var poller = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 0)
            if ready > 0 {
                var buffer = [UInt8](repeating: 0, count: 64)
                let count = read(readEnd, &buffer, buffer.count)
                if count > 0 {
                    received += String(decoding: buffer[0..<count], as: UTF8.self)
                    if received.contains("ready") {
                        reapLater(pid)
                        return pid
                    }
                    continue
                }
                if count < 0 && errno == EINTR { continue }
                // End of the pipe: the new process closed it without saying ready (it exited).
                return try failed(pid, "it exited before it was ready", wait: true)
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                throw TeleportError.connectionProblem("the new process (pid \(pid)) \(describe(status)) before it was ready; its error is in the log")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(pid, SIGKILL)
        return try failed(pid, "it was not ready within \(timeout); it was killed", wait: true)
    }

    static func failed(_ pid: pid_t, _ reason: String, wait: Bool) throws -> Int32 {
        var status: Int32 = 0
        var detail = reason
        if wait {
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            detail = "\(describe(status)) before it was ready"
        }
        throw TeleportError.connectionProblem("the new process (pid \(pid)) \(detail); its error is in the log")
    }

    /// `exited with status N` or `was killed by signal N`.
    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        return signal == 0 ? "exited with status \((status >> 8) & 0xff)" : "was killed by signal \(signal)"
    }

    /// Reaps the new process if it exits while this one still runs (after SIGUSR2).
    static func reapLater(_ pid: pid_t) {
        let thread = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        thread.stackSize = 64 * 1024
        thread.start()
    }
}
