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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = Array(argv.dropFirst())
        process.standardInput = FileHandle.nullDevice
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let status: Int32? = await withCheckedContinuation { continuation in
            let once = ResumeOnce(continuation)
            process.terminationHandler = { once.resume($0.terminationStatus) }
            do {
                try process.run()
            } catch {
                once.resume(nil)
                return
            }
            let pid = process.processIdentifier
            Task {
                try? await Task.sleep(for: timeout)
                if process.isRunning {
                    kill(pid, SIGKILL)
                    once.resume(-1)
                }
            }
        }
        guard let status else { return "error: cannot run \(executable)" }
        if status == -1 { return "error: timed out" }
        let data = output.fileHandleForReading.availableData.prefix(maxOutputBytes)
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
