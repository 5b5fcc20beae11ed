public import Foundation
public import CTeleportShims
import Testing

#if canImport(Glibc)
    public import Glibc
#elseif canImport(Musl)
    public import Musl
#elseif canImport(Darwin)
    public import Darwin
#endif

/// The outcome of a finished child process.
public struct CommandResult: Sendable, CustomStringConvertible {
    public var exitCode: Int32
    public var stdout: String
    public var stderr: String

    /// A result put together by a test (e.g. for a process it reaped itself).
    public init(exitCode: Int32, stdout: String, stderr: String) {
        self.exitCode = exitCode
        self.stdout = stdout
        self.stderr = stderr
    }

    public var description: String { "exit \(exitCode)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Process, port and temp-directory helpers for tests that drive real programs (OpenSSH, our binaries).
public enum TestSupport {
    public static let sshKeygen = "/usr/bin/ssh-keygen"
    public static let ssh = "/usr/bin/ssh"
    public static let sshd = "/usr/sbin/sshd"

    /// True when the OpenSSH client tools are installed.
    public static var hasOpenSSHClient: Bool {
        FileManager.default.isExecutableFile(atPath: sshKeygen) && FileManager.default.isExecutableFile(atPath: ssh)
    }

    /// Runs `executable` to completion with stdin from /dev/null, output captured through files (so
    /// a chatty child never blocks on a full pipe), and kills it after `timeout`.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        timeout: Duration = .seconds(60)
    ) async throws -> CommandResult {
        let directory = try makeTemporaryDirectory(prefix: "run")
        defer { try? FileManager.default.removeItem(at: directory) }
        let outURL = directory.appendingPathComponent("stdout")
        let errURL = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: outURL)
        let errHandle = try FileHandle(forWritingTo: errURL)
        defer {
            try? outHandle.close()
            try? errHandle.close()
        }

        // Our own posix_spawn and waitpid, not Foundation's Process: Process learns of an exit through
        // a socket pair its manager thread watches, and under the suite's load (hundreds of children,
        // thousands of sockets opening and closing) an exit was occasionally never reported, leaving
        // a test suspended forever (the whole run then hit CI's time limit).
        let pid = try spawn(
            executable, arguments, environment: environment.map { ProcessInfo.processInfo.environment.merging($0) { $1 } }
        ) { actions in
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, outHandle.fileDescriptor, 1)
            posix_spawn_file_actions_adddup2(&actions, errHandle.fileDescriptor, 2)
            teleport_spawn_close_from(&actions, 3)
        }
        let exitCode = await reap(pid, killAfter: timeout)
        let stdout = String(decoding: try Data(contentsOf: outURL), as: UTF8.self)
        let stderr = String(decoding: try Data(contentsOf: errURL), as: UTF8.self)
        return CommandResult(exitCode: exitCode, stdout: stdout, stderr: stderr)
    }

    /// Starts a long-running daemon with `posix_spawn` (stdin from /dev/null, stdout and stderr
    /// appended to `logPath`, default signal mask and dispositions) and returns its PID; stop it
    /// with ``stopDaemon(_:)``.
    ///
    /// Foundation's `Process` is not used for daemons: it learns of a child's exit when the child's
    /// end of a private socket pair closes, then calls a *blocking* `waitpid` on its one manager
    /// thread. `sshd` closes every inherited descriptor at startup, so Foundation would block in
    /// `waitpid(sshd)` and stop reaping every other child (our `ssh` runs) until sshd exits.
    public static func spawnDaemon(
        _ executable: String, _ arguments: [String], logPath: String, environment: [String: String]? = nil
    ) throws -> Glibc.pid_t {
        // `environment` is added to this process's.
        try spawn(executable, arguments, environment: environment.map { ProcessInfo.processInfo.environment.merging($0) { $1 } }) { actions in
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
            // Nothing else is inherited: a daemon holding this process's other descriptors (Foundation's
            // child-exit sockets among them) would delay every other child's reaping.
            teleport_spawn_close_from(&actions, 3)
        }
    }

    /// glibc's `POSIX_SPAWN_SETSID` (a GNU extension the Swift module does not import).
    public static let spawnSetSID: Int32 = 0x80

    /// `posix_spawn` as a shell starts a program: default signal mask and dispositions, the
    /// descriptors `files` sets up, `environment` (else this process's), plus `flags` (e.g.
    /// ``spawnSetSID``). Returns the PID; the caller reaps it.
    public static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, flags: Int32 = 0,
        files: (inout posix_spawn_file_actions_t) -> Void
    ) throws -> Glibc.pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        files(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | flags))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer {
            argv.forEach { free($0) }
            envp?.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = envp.map { posix_spawn(&pid, executable, &actions, &attributes, argv, $0) }
            ?? posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        try #require(result == 0, "posix_spawn \(executable) failed: \(result)")
        return pid
    }

    /// Waits for `pid` without blocking a thread (polling `waitpid(WNOHANG)`, 5 ms growing to 50 ms)
    /// and SIGKILLs it once `killAfter` has passed. Returns its exit status, or the signal number
    /// that ended it (as Foundation's `terminationStatus` did), or -1 if it was reaped elsewhere.
    public static func reap(_ pid: Glibc.pid_t, killAfter: Duration) async -> Int32 {
        let deadline = ContinuousClock.now + killAfter
        var killed = false
        var pause = Duration.milliseconds(5)
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { return -1 }
            if !killed && ContinuousClock.now >= deadline {
                kill(pid, SIGKILL)
                killed = true
            }
            // Not cancellable on purpose: the child must be reaped even when the test is cancelled.
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(50))
        }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : signal
    }

    /// Sends SIGTERM to a daemon from ``spawnDaemon(_:_:logPath:)`` (by its PID), reaps it without
    /// blocking a thread, and SIGKILLs it if it has not exited after five seconds.
    ///
    /// - Returns: true when the daemon exited on SIGTERM, false when it had to be killed.
    @discardableResult
    public static func stopDaemon(_ pid: Glibc.pid_t) async -> Bool {
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(5)
        var status: Int32 = 0
        while ContinuousClock.now < deadline {
            if waitpid(pid, &status, WNOHANG) != 0 { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        kill(pid, SIGKILL)
        while waitpid(pid, &status, WNOHANG) == 0 {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Runs `executable` and requires exit status 0, returning its output.
    @discardableResult
    public static func runChecked(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil
    ) async throws -> CommandResult {
        let result = try await run(executable, arguments, environment: environment)
        try #require(result.exitCode == 0, "\(executable) \(arguments.joined(separator: " ")) failed: \(result)")
        return result
    }

    /// Creates a fresh private (0700) directory under the system temp directory.
    public static func makeTemporaryDirectory(prefix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("teleport-test-\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]
        )
        return url
    }

    /// Writes `contents` to `url` with the given permissions (ssh and sshd refuse private keys that
    /// others can read).
    public static func write(_ contents: String, to url: URL, permissions: Int = 0o600) throws {
        try Data(contents.utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: permissions], ofItemAtPath: url.path)
    }

    /// Reads a text file.
    public static func read(_ url: URL) throws -> String {
        String(decoding: try Data(contentsOf: url), as: UTF8.self)
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
    /// `-c CONFIG` arguments for a second `teleport start` in a test: a config that only moves the
    /// node's SSH listener to a free loopback port (flags give the rest), so parallel tests never
    /// fight over 3022.
    public static func nodeListenConfig() throws -> [String] {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("teleport-node-\(UUID().uuidString).yaml")
        try write("ssh_service:\n  listen_addr: 127.0.0.1:\(try freeLoopbackPort())\n", to: url)
        return ["-c", url.path]
    }

    public static func freeLoopbackPort() throws -> UInt16 {
        // The kernel may hand the same free port out twice in a row once it is released; a port
        // given to one caller in this process is never given to another.
        for _ in 0..<100 {
            let port = try anyFreeLoopbackPort()
            let fresh = handedOutPorts.withLock { $0.insert(port).inserted }
            if fresh { return port }
        }
        throw TestSupportError("no fresh loopback port after 100 tries")
    }

    private static let handedOutPorts = LockedValue<Set<UInt16>>([])

    /// A port no one listens on, picked below the kernel's ephemeral range (read from
    /// `/proc/sys/net/ipv4/ip_local_port_range`, 32768 and up by default): a port from that range
    /// can be taken, between this check and the daemon's bind, by any process's outgoing
    /// connection, and the daemon's bind then fails with "address in use".
    private static func anyFreeLoopbackPort() throws -> UInt16 {
        let ephemeralStart = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
            .flatMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } } ?? 32768
        let range = 10_000..<max(10_001, min(ephemeralStart, 65_536))
        for _ in 0..<200 {
            let port = UInt16(Int.random(in: range))
            if canBind(port: port) { return port }
        }
        throw TestSupportError("no free loopback port in \(range) after 200 tries")
    }

    /// True when 127.0.0.1:`port` can be bound now (nothing listens or holds it).
    private static func canBind(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopbackAddress(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return bound == 0
    }

    /// Polls `condition` (a log line written by another process may reach its file a moment
    /// later) until it holds or `timeout` passes.
    public static func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return true
    }

    /// Polls until something accepts TCP connections on 127.0.0.1:`port`; false after `timeout`.
    public static func waitForPort(_ port: UInt16, timeout: Duration = .seconds(15)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if canConnect(port: port) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// True when something accepts a TCP connection on 127.0.0.1:`port` now.
    public static func canConnect(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopbackAddress(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0
    }

    private static func loopbackAddress(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }
}

/// A value behind a lock.
final class LockedValue<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

extension TestSupport {
    /// A "billion laughs" role document: nine levels of nine YAML aliases each (9^9 strings if a
    /// reader expanded them).
    public static let billionLaughsYAML = """
        kind: role
        metadata:
          name: bomb
          labels:
            a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
            b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
            c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
            d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
            e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
            f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
            g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
            h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
            i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
        spec: {}
        """
}
