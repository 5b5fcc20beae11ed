import CTeleportShims
import Foundation
import Glibc
public import NIOCore
import TeleportAPI
public import TeleportRecording

/// A process started for a session: its pid and the descriptors the session reads and writes.
public struct SessionProcess: Sendable {
    /// The process (and process-group) ID.
    public let pid: Int32
    /// With a terminal: the pseudo-terminal master (read and write). Without: stdin's write end.
    public let inputFD: CInt
    /// Without a terminal: stdout's read end (with one, equal to `inputFD`).
    public let outputFD: CInt
    /// Without a terminal: stderr's read end; nil with a terminal (stderr goes to the terminal).
    public let errorFD: CInt?
    /// Whether the session has a terminal.
    public var hasTerminal: Bool { errorFD == nil }

    /// Starts `argv` (argv[0] is the program path; `arg0` what the program sees as its name) as
    /// `user` with `environment`, on a new pseudo-terminal of `windowSize` (then `SSH_TTY` names
    /// it) or on three pipes.
    ///
    /// - Parameter changeUser: true when the daemon runs as root and must drop to `user`; when false
    ///   the caller has checked that `user` is the daemon's own account.
    public static func spawn(
        argv: [String], arg0: String? = nil, environment: [String: String], user: LoginUser, changeUser: Bool,
        terminal windowSize: (rows: Int, columns: Int)?
    ) throws -> SessionProcess {
        var toClose: [CInt] = []
        defer { for fd in toClose { close(fd) } }
        var childIn: CInt, childOut: CInt, childErr: CInt
        let inputFD: CInt, outputFD: CInt
        var errorFD: CInt?
        if let windowSize {
            var name = [CChar](repeating: 0, count: 128)
            let master = teleport_open_pty(&name, name.count)
            guard master >= 0 else { throw Self.error("cannot open a pseudo-terminal") }
            let ttyPath = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let slave = open(ttyPath, O_RDWR | O_NOCTTY | O_CLOEXEC)
            guard slave >= 0 else {
                close(master)
                throw Self.error("cannot open the pseudo-terminal \(ttyPath)")
            }
            // As sshd: the session's terminal, by its real path (`/dev/pts/N`).
            var environment = environment
            environment["SSH_TTY"] = ttyPath
            if changeUser { _ = fchown(slave, user.uid, user.gid) }
            _ = teleport_set_window_size(master, UInt16(clamping: windowSize.rows), UInt16(clamping: windowSize.columns))
            toClose.append(slave)
            childIn = slave; childOut = slave; childErr = slave
            inputFD = master; outputFD = master
            // Closed below on failure only.
            return try launch(
                argv: argv, arg0: arg0, environment: environment, user: user, changeUser: changeUser, tty: true,
                child: (childIn, childOut, childErr), parent: (inputFD, outputFD, nil), closeOnFailure: [master])
        }
        let stdinPipe = try pipePair(), stdoutPipe = try pipePair(), stderrPipe = try pipePair()
        toClose += [stdinPipe.read, stdoutPipe.write, stderrPipe.write]
        childIn = stdinPipe.read; childOut = stdoutPipe.write; childErr = stderrPipe.write
        errorFD = stderrPipe.read
        return try launch(
            argv: argv, arg0: arg0, environment: environment, user: user, changeUser: changeUser, tty: false,
            child: (childIn, childOut, childErr), parent: (stdinPipe.write, stdoutPipe.read, errorFD),
            closeOnFailure: [stdinPipe.write, stdoutPipe.read, stderrPipe.read])
    }

    private static func launch(
        argv: [String], arg0: String?, environment: [String: String], user: LoginUser, changeUser: Bool, tty: Bool,
        child: (CInt, CInt, CInt), parent: (CInt, CInt, CInt?), closeOnFailure: [CInt]
    ) throws -> SessionProcess {
        guard let path = argv.first else { throw TeleportError.badParameter("empty command") }
        var arguments = argv
        if let arg0 { arguments[0] = arg0 }
        let cArgs = arguments.map { strdup($0) } + [nil]
        let cEnv = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in cArgs { free(pointer) }
            for pointer in cEnv { free(pointer) }
        }
        let pid: Int32 = user.groups.withUnsafeBufferPointer { groups in
            user.home.withCString { home in
                var spec = teleport_session_spawn(
                    stdin_fd: child.0, stdout_fd: child.1, stderr_fd: child.2, controlling_tty: tty ? 1 : 0,
                    change_user: changeUser ? 1 : 0, uid: user.uid, gid: user.gid, groups: groups.baseAddress,
                    group_count: Int32(groups.count), directory: home)
                return teleport_spawn_session(path, cArgs, cEnv, &spec)
            }
        }
        guard pid > 0 else {
            let failure = Self.error("cannot start \(path) as \(user.name)")
            for fd in closeOnFailure { close(fd) }
            throw failure
        }
        for fd in [parent.0, parent.1] + (parent.2.map { [$0] } ?? []) {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        return SessionProcess(pid: pid, inputFD: parent.0, outputFD: parent.1, errorFD: parent.2)
    }

    /// Waits for the process (on the daemon's one reaper thread, never a concurrency or event-loop
    /// thread; see `ProcessReaper`) and completes the future on `loop`.
    public func waitForExit(on loop: any EventLoop) -> EventLoopFuture<ProcessExit> {
        let promise = loop.makePromise(of: ProcessExit.self)
        ProcessReaper.shared.wait(for: pid) { promise.succeed($0) }
        return promise.futureResult
    }

    /// Sends a signal to the session's process group.
    public func signal(_ number: Int32) {
        _ = teleport_signal_session(pid, number)
    }

    /// Sets the terminal's size (no-op without a terminal).
    public func resize(rows: Int, columns: Int) {
        guard hasTerminal else { return }
        _ = teleport_set_window_size(inputFD, UInt16(clamping: rows), UInt16(clamping: columns))
    }

    private static func pipePair() throws -> (read: CInt, write: CInt) {
        var fds: [CInt] = [0, 0]
        guard teleport_pipe_cloexec(&fds) == 0 else { throw error("cannot create a pipe") }
        return (fds[0], fds[1])
    }

    private static func error(_ what: String) -> TeleportError {
        TeleportError.internalError("\(what): \(String(cString: strerror(errno)))")
    }
}

