import CTeleportShims
public import Foundation
public import Logging
public import TeleportAPI
import Synchronization

/// Dynamic labels: each command (an argv, run without a shell) runs right away and then every
/// period; its trimmed, size-capped output is the label's value. A failing or hanging command
/// gives an error value (`error: ...`), never a crashed node.
public final class CommandLabels: Sendable {
    /// One label command.
    public struct Command: Sendable, Equatable {
        /// The label name.
        public var name: String
        /// The argv.
        public var argv: [String]
        /// Seconds between runs (at least 60).
        public var period: Double
        /// Creates a command; periods below a minute are raised to a minute, as the seed says.
        public init(name: String, argv: [String], period: Double) {
            self.name = name
            self.argv = argv
            self.period = max(period, Self.minimumPeriod)
        }
        /// The shortest period.
        public static let minimumPeriod: Double = 60
    }

    /// The longest label value kept.
    public static let maxOutputBytes = 1024
    /// How long a command may run.
    public static let timeout: Duration = .seconds(10)

    let commands: [Command]
    let logger: Logger
    private let results: Mutex<[String: ServerNode.CommandLabelResult]>

    /// Creates the labels; nothing runs until ``run()``.
    public init(commands: [Command], logger: Logger) {
        self.commands = commands
        self.logger = logger
        results = Mutex([:])
    }

    /// The latest result of every command that has run.
    public var current: [String: ServerNode.CommandLabelResult] { results.withLock { $0 } }

    /// Runs every command once, concurrently (so the first heartbeat carries every label).
    public func runOnce() async {
        await withTaskGroup(of: Void.self) { group in
            for command in commands {
                group.addTask { [self] in await refresh(command) }
            }
        }
    }

    /// Runs every command on its schedule until cancelled; with `startNow: false` the first run
    /// waits one period (after ``runOnce()``).
    public func run(startNow: Bool = true) async {
        await withTaskGroup(of: Void.self) { group in
            for command in commands {
                group.addTask { [self] in
                    if !startNow { try? await Task.sleep(for: .seconds(command.period)) }
                    while !Task.isCancelled {
                        await refresh(command)
                        try? await Task.sleep(for: .seconds(command.period))
                    }
                }
            }
        }
    }

    func refresh(_ command: Command) async {
        let value = await Self.execute(command.argv, timeout: Self.timeout)
        results.withLock {
            $0[command.name] = .init(period: GoDuration.format(seconds: command.period), command: command.argv, result: value)
        }
    }

    /// Runs `argv` once and returns its trimmed output or an `error: ...` value.
    public static func execute(_ argv: [String], timeout: Duration) async -> String {
        guard let executable = argv.first else { return "error: empty command" }
        let path = executable.contains("/") ? executable : Self.lookUp(executable)
        guard let path else { return "error: \(executable) not found in PATH" }
        // posix_spawn and the node's reaper (pidfd), not Foundation's Process: the timeout signals
        // the process only while it is known to be running, so it can never hit a recycled PID.
        var fds: [CInt] = [0, 0]
        guard teleport_pipe_cloexec(&fds) == 0 else { return "error: cannot run \(executable)" }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        defer { close(readEnd) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        teleport_spawn_close_from(&actions, 3)
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArgs { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, nil, cArgs, environ)
        close(writeEnd)
        guard spawned == 0 else { return "error: cannot run \(executable)" }
        let child = pid
        let running = RunningFlag()
        let status: Int32? = await withCheckedContinuation { continuation in
            let once = ResumeOnce(continuation)
            ProcessReaper.shared.wait(for: child) { exit in
                running.value.withLock { $0 = false }
                if case .status(let code) = exit { once.resume(Int32(code)) } else { once.resume(128) }
            }
            Task {
                try? await Task.sleep(for: timeout)
                // Resumed inside the lock: once killed, the reaper's exit report (which takes the
                // same lock first) can no longer win the race and turn a timeout into "exit status".
                running.value.withLock { stillRunning in
                    guard stillRunning else { return }
                    kill(child, SIGKILL)
                    once.resume(-1)
                }
            }
        }
        guard let status else { return "error: cannot run \(executable)" }
        if status == -1 { return "error: timed out" }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
        while data.count < maxOutputBytes {
            let count = read(readEnd, &buffer, buffer.count)
            guard count > 0 else { break }
            data.append(contentsOf: buffer[..<count])
        }
        data = data.prefix(maxOutputBytes)
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if status != 0 { return "error: exit status \(status)" }
        // A label value is printable and bounded (LabelRules, checked again by the auth service):
        // colours or other control bytes in the output are shown escaped, long output is cut.
        let line = TerminalText.escape(text.replacingOccurrences(of: "\n", with: " "))
        return String(line.prefix(LabelRules.maxValueLength))
    }

    static func lookUp(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// Whether a label command is still running (cleared by the reaper before the PID can be reused).
final class RunningFlag: Sendable {
    let value = Mutex(true)
}

/// Resumes a continuation exactly once, whichever of exit or timeout comes first.
final class ResumeOnce: Sendable {
    private let continuation: Mutex<CheckedContinuation<Int32?, Never>?>

    init(_ continuation: CheckedContinuation<Int32?, Never>) {
        self.continuation = Mutex(continuation)
    }

    func resume(_ value: Int32?) {
        let taken = continuation.withLock { stored -> CheckedContinuation<Int32?, Never>? in
            defer { stored = nil }
            return stored
        }
        taken?.resume(returning: value)
    }
}

#if canImport(Glibc)
import Glibc
#endif
