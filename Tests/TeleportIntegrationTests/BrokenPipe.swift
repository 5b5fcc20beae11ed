import CTeleportShims
import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a program whose standard output and error are a pipe nobody reads any more (as
/// `tctl get all | head -1` once `head` has exited): every write fails with EPIPE, or raises
/// SIGPIPE where it is not ignored. Spawned with default signals, as a shell would.
enum BrokenPipe {
    /// How the program ended.
    enum Ending: Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        var description: String {
            switch self {
            case .exited(let code): "exit \(code)"
            case .signalled(let signal): "killed by signal \(signal)"
            }
        }
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: Duration = .seconds(60)) async throws
        -> Ending
    {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0, "pipe failed: errno \(errno)")
        close(fds[0])
        defer { close(fds[1]) }
        let pid = try TestSupport.spawn(executable, arguments, environment: environment ?? ProcessInfo.processInfo.environment) { actions in
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
            posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
            teleport_spawn_close_from(&actions, 3)
        }
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) != pid {
            if ContinuousClock.now > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                Issue.record("\(executable) \(arguments) did not exit in time")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// A quiet exit: a normal exit (not a signal, not a trap), 0 or 141 for "the reader went away"
    /// or the command's own failure status.
    static func isQuiet(_ ending: Ending) -> Bool {
        if case .exited = ending { return true }
        return false
    }
}

@Suite("writing to a closed pipe")
struct BrokenPipeTests {
    /// `tsh`, `tctl` and `teleport` failing (after the event loops started, which ignore SIGPIPE
    /// and made Foundation's write trap) or printing many lines into a pipe whose reader is gone
    /// exit normally; before, they died of SIGPIPE or a trap (SIGILL, exit 132).
    @Test(arguments: [
        ("tsh", ["ls", "--proxy=127.0.0.1:1", "--insecure"]),
        ("tsh", ["--help"]),
        ("tctl", ["status", "--auth-server=127.0.0.1:1"]),
        ("tctl", ["--help"]),
        ("teleport", ["start", "--config", "/nonexistent/teleport.yaml"]),
        ("teleport", ["configure"]),
    ])
    func exitsQuietly(program: String, arguments: [String]) async throws {
        let ending = try await BrokenPipe.run(try ClusterFixture.binary(program), arguments)
        #expect(BrokenPipe.isQuiet(ending), "\(program) \(arguments.joined(separator: " ")): \(ending)")
    }
}
