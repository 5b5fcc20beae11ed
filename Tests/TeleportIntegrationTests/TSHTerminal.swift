import CTeleportShims
import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a program on a pseudo-terminal, as a person at a keyboard would: the program's session
/// has the pty as its controlling terminal (so it can open `/dev/tty` and turn echo off), and the
/// test waits for prompts and types answers, like `expect`.
///
/// Started with `posix_spawn` (new session, default signals) and reaped by PID, for the reasons
/// given at ``TestSupport/spawnDaemon(_:_:logPath:)``.
final class TSHTerminal {
    /// Everything the program wrote to the terminal so far (and the terminal's echo).
    private(set) var transcript = ""
    private let master: Int32
    private let pid: pid_t
    /// Where the next `expect` starts looking, in UTF-8 bytes of the transcript.
    private var searchOffset = 0
    private var exitStatus: Int32?

    init(_ executable: String, _ arguments: [String], environment: [String: String]) throws {
        let pty = try PTYFunctions()
        let master = pty.openpt(O_RDWR | O_NOCTTY)
        try #require(master >= 0, "posix_openpt failed: errno \(errno)")
        try #require(pty.grantpt(master) == 0 && pty.unlockpt(master) == 0, "grantpt/unlockpt failed: errno \(errno)")
        let slavePath = try #require(pty.ptsname(master).map { String(cString: $0) }, "ptsname failed")
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)

        let pid: pid_t
        do {
            pid = try TestSupport.spawn(executable, arguments, environment: environment, flags: TestSupport.spawnSetSID) { actions in
                // In the new session, opening the pty (without O_NOCTTY) makes it the controlling terminal.
                posix_spawn_file_actions_addopen(&actions, 0, slavePath, O_RDWR, 0)
                posix_spawn_file_actions_adddup2(&actions, 0, 1)
                posix_spawn_file_actions_adddup2(&actions, 0, 2)
                posix_spawn_file_actions_addclose(&actions, master)
            }
        } catch {
            close(master)
            throw error
        }
        self.master = master
        self.pid = pid
    }

    deinit {
        if exitStatus == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        close(master)
    }

    /// Waits until the program has written `text` (after the previous match); fails with the
    /// transcript after `timeout`.
    func expect(_ text: String, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            drain()
            if match(text) { return }
            if ContinuousClock.now > deadline || reap() != nil {
                drain()
                if match(text) { return }
                Issue.record("expected \"\(text)\" on the terminal; got:\n\(transcript)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Like ``expect(_:timeout:)`` but only answers whether `text` appeared in time (no issue is
    /// recorded), for a caller that retries.
    func appears(_ text: String, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            drain()
            if match(text) { return true }
            if ContinuousClock.now > deadline || reap() != nil { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func match(_ text: String) -> Bool {
        let bytes = Array(transcript.utf8)
        let start = String(decoding: bytes[min(searchOffset, bytes.count)...], as: UTF8.self)
        guard let range = start.range(of: text) else { return false }
        searchOffset += start.utf8.distance(from: start.startIndex, to: range.upperBound)
        return true
    }

    /// Changes the terminal's size (the kernel sends SIGWINCH to the program).
    func resize(rows: UInt16, columns: UInt16) {
        _ = teleport_set_window_size(master, rows, columns)
    }

    /// Sends `signal` to the program (not to its whole group).
    func signal(_ number: Int32) {
        kill(pid, number)
    }

    /// Types `text` as it is (control characters such as Ctrl-C, `\u{03}`, included).
    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
    }

    /// Types `line` and Enter.
    func sendLine(_ line: String) {
        let bytes = Array((line + "\r").utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
            if written < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard written > 0 else { return }
            offset += written
        }
    }

    /// Waits for the program to exit and returns its status (after reading all its output).
    func wait(timeout: Duration = .seconds(60)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while reap() == nil {
            drain()
            if ContinuousClock.now > deadline {
                kill(pid, SIGKILL)
                Issue.record("the program did not exit in time; terminal:\n\(transcript)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        drain()
        return exitStatus ?? -1
    }

    /// The exit status once the program has exited, else nil.
    private func reap() -> Int32? {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        // WIFEXITED / WEXITSTATUS, WTERMSIG: C macros Swift does not import.
        let signal = status & 0x7f
        exitStatus = signal == 0 ? (status >> 8) & 0xff : 128 + signal
        return exitStatus
    }

    private func drain() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
            guard count > 0 else { return }
            transcript += String(decoding: buffer[0..<count], as: UTF8.self)
        }
    }
}

/// `posix_openpt`, `grantpt`, `unlockpt` and `ptsname`: X/Open functions of the C library that
/// Swift's Glibc module does not import, looked up at run time.
private struct PTYFunctions {
    let openpt: @convention(c) (Int32) -> Int32
    let grantpt: @convention(c) (Int32) -> Int32
    let unlockpt: @convention(c) (Int32) -> Int32
    let ptsname: @convention(c) (Int32) -> UnsafeMutablePointer<CChar>?

    init() throws {
        func symbol(_ name: String) throws -> UnsafeMutableRawPointer {
            try #require(dlsym(UnsafeMutableRawPointer(bitPattern: 0), name), "\(name) not found in the C library")
        }
        openpt = unsafeBitCast(try symbol("posix_openpt"), to: (@convention(c) (Int32) -> Int32).self)
        grantpt = unsafeBitCast(try symbol("grantpt"), to: (@convention(c) (Int32) -> Int32).self)
        unlockpt = unsafeBitCast(try symbol("unlockpt"), to: (@convention(c) (Int32) -> Int32).self)
        ptsname = unsafeBitCast(try symbol("ptsname"), to: (@convention(c) (Int32) -> UnsafeMutablePointer<CChar>?).self)
    }
}
