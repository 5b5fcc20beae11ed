import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Standard output and error for the command-line programs, safe when a reader goes away
/// (`tctl get all | head -1`): SIGPIPE is ignored, and a write that fails with EPIPE ends the
/// process quietly instead of trapping (Foundation's `FileHandle.write(_:)` traps on any error).
public enum StandardStreams {
    /// The exit status after the reader of standard output or error went away: 128 + SIGPIPE, what
    /// a shell reports for a program that the signal ended.
    public static let brokenPipeStatus: Int32 = 141

    /// Ignores SIGPIPE, so that writing to a closed pipe returns EPIPE instead of killing the
    /// process. Call first thing in `main`.
    public static func ignoreBrokenPipe() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// Writes `text` to standard output; exits quietly if the reader went away.
    public static func out(_ text: String) {
        write(Array(text.utf8), to: STDOUT_FILENO)
    }

    /// Writes `text` to standard error; exits quietly if the reader went away.
    public static func err(_ text: String) {
        write(Array(text.utf8), to: STDERR_FILENO)
    }

    /// Writes all of `bytes` to `fd`, retrying short writes; on EPIPE (or another write error) the
    /// process exits with ``brokenPipeStatus`` without a word (there is nobody left to read it).
    public static func write(_ bytes: [UInt8], to fd: Int32) {
        if case .failed = writeAll(bytes, to: fd) {
            // Flush nothing more: the C library's buffered stdout would fail the same way.
            _exit(brokenPipeStatus)
        }
    }

    /// The outcome of ``writeAll(_:to:)``.
    public enum WriteResult: Equatable, Sendable {
        /// Every byte was written.
        case written
        /// The descriptor refused the write (errno, EPIPE when the reader went away).
        case failed(errno: Int32)
    }

    /// Writes all of `bytes` to `fd` (retrying EINTR, EAGAIN and short writes) and says whether it could.
    public static func writeAll(_ bytes: [UInt8], to fd: Int32) -> WriteResult {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { raw -> Int in
                #if canImport(Glibc)
                    Glibc.write(fd, raw.baseAddress, raw.count)
                #else
                    Darwin.write(fd, raw.baseAddress, raw.count)
                #endif
            }
            if written < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN {
                    var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&poller, 1, 1000)
                    continue
                }
                return .failed(errno: code)
            }
            offset += written
        }
        return .written
    }
}
