public import Foundation
public import NIOCore
public import TeleportEvents
import TeleportAPI

#if canImport(Glibc)
    import Glibc
#endif

/// Writes one session's recording to the host's disk as it happens (a node's interactive session,
/// a database session's statements) (see
/// ``SessionRecording``): `<sid>.recording` while the session runs, renamed to `<sid>.done` when it
/// ends. The uploader sends `.done` files to the auth service; `.recording` files left by a crash
/// are uploaded as partial recordings when the node starts again.
///
/// Only the output is recorded: what the user typed reaches the recording through the terminal's
/// echo, and keystrokes that are not echoed (passwords at prompts) are kept out of it.
public final class SessionRecorder: @unchecked Sendable {
    /// The directory of recordings waiting for upload (0700).
    public let directory: URL
    public let sessionID: String
    private let lock = NSLock()
    private var handle: FileHandle?
    private let started = Date()

    /// Starts a recording with its header.
    public init(directory: URL, header: SessionRecording.Header) throws {
        self.directory = directory
        self.sessionID = header.sid
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let url = Self.activeURL(directory, header.sid)
        guard FileManager.default.createFile(atPath: url.path, contents: try SessionRecording.line(header), attributes: [.posixPermissions: 0o600])
        else { throw TeleportError.connectionProblem("cannot create the session recording \(url.path)") }
        let opened = try FileHandle(forWritingTo: url)
        try opened.seekToEnd()
        // Held while the session runs (it follows the file through the rename): the uploader
        // adopts only `.recording` files no live recorder holds, i.e. real leftovers of a crash.
        _ = flock(opened.fileDescriptor, LOCK_EX | LOCK_NB)
        handle = opened
    }

    /// Records text as output (a database session's statements).
    public func output(text: String) {
        append(SessionRecording.Frame(ms: elapsedMs, output: Data(text.utf8)))
    }

    static func activeURL(_ directory: URL, _ sid: String) -> URL { directory.appendingPathComponent("\(sid).recording") }
    static func doneURL(_ directory: URL, _ sid: String) -> URL { directory.appendingPathComponent("\(sid).done") }

    private var elapsedMs: Int { Int(Date().timeIntervalSince(started) * 1000) }

    private func append(_ frame: SessionRecording.Frame) {
        guard let line = try? SessionRecording.line(frame) else { return }
        lock.withLock { try? handle?.write(contentsOf: line) }
    }

    /// Records output the user's terminal received.
    public func output(_ bytes: ByteBuffer) {
        let line = bytes.withUnsafeReadableBytes { SessionRecording.outputLine(ms: elapsedMs, output: $0) }
        lock.withLock { try? handle?.write(contentsOf: line) }
    }

    /// Records a new terminal size.
    public func resize(columns: Int, rows: Int) {
        append(SessionRecording.Frame(ms: elapsedMs, resize: "\(columns):\(rows)"))
    }

    /// Deletes a recording that must not be uploaded (a session refused before it began).
    public func abandon() {
        lock.withLock {
            try? handle?.close()
            handle = nil
        }
        try? FileManager.default.removeItem(at: Self.activeURL(directory, sessionID))
    }

    /// Ends the recording and hands it to the uploader.
    public func finish() {
        append(SessionRecording.Frame(ms: elapsedMs, end: true))
        lock.withLock {
            try? handle?.close()
            handle = nil
        }
        _ = rename(Self.activeURL(directory, sessionID).path, Self.doneURL(directory, sessionID).path)
    }
}
