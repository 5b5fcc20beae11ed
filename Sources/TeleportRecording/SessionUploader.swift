public import Foundation
public import Logging
public import ServiceLifecycle
import TeleportAPI
public import TeleportAuthClient
import TeleportEvents

#if canImport(Glibc)
    import Glibc
#endif

/// Uploads finished session recordings from a host's disk (a node's, a database service's) to the
/// auth service, retrying with backoff while it cannot be reached; a recording is deleted here only
/// once the auth service has it. Recordings a crash left behind (`.recording`) are uploaded as partial ones at start.
public struct SessionUploader: Service, CustomStringConvertible {
    /// The directory of recordings waiting for upload.
    let directory: URL
    let auth: AuthClient
    let logger: Logger
    /// When fired (the host's identity was removed), uploads stop; recordings stay on disk.
    var stop: (any UploadStop)?

    public var description: String { "SessionUploader" }

    /// A copy that stops uploading when `stop` fires.
    public func stopping(_ stop: any UploadStop) -> SessionUploader {
        var copy = self
        copy.stop = stop
        return copy
    }

    public init(directory: URL, auth: AuthClient, logger: Logger) {
        self.directory = directory
        self.auth = auth
        self.logger = logger
    }

    public func run() async throws {
        Self.adoptLeftovers(in: directory, logger: logger)
        var delay: Duration = .seconds(1)
        while !Task.isShuttingDownGracefully && !Task.isCancelled && stop?.fired != true {
            if await uploadAll() {
                delay = .seconds(1)
            } else {
                delay = min(delay * 2, .seconds(30))
            }
            let wait = delay
            try? await cancelWhenGracefulShutdown { [stop] in
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { try? await Task.sleep(for: wait) }
                    if let stop { group.addTask { await stop.wait() } }
                    _ = await group.next()
                    group.cancelAll()
                }
            }
        }
        if stop?.fired == true {
            logger.warning("session uploads stopped: this host's identity was removed; recordings stay on disk")
            try? await gracefulShutdown()
            return
        }
        // One last try, bounded: a stopping node must not hang on an unreachable auth service.
        let last = Task { _ = await uploadAll() }
        let deadline = ContinuousClock.now + .seconds(3)
        while ContinuousClock.now < deadline, !files(suffix: ".done").isEmpty { try? await Task.sleep(for: .milliseconds(50)) }
        last.cancel()
    }

    /// Hands the recordings of sessions a crash interrupted (`.recording` files that no live
    /// recorder holds locked) to the upload as partial ones; returns their session ids. A session
    /// that is still running (one that started as this process did) is left alone, so it is
    /// uploaded whole when it ends.
    @discardableResult
    public static func adoptLeftovers(in directory: URL, logger: Logger) -> [String] {
        var adopted: [String] = []
        for name in Self.files(in: directory, suffix: ".recording") {
            let path = directory.appendingPathComponent(name).path
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { continue }
            defer { close(descriptor) }
            // A live recorder holds the lock: not a leftover.
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else { continue }
            let sid = String(name.dropLast(".recording".count))
            logger.warning("found the recording of a session interrupted by a restart; uploading it as partial", metadata: ["tp.sid": "\(sid)"])
            if rename(path, directory.appendingPathComponent("\(sid).done").path) == 0 { adopted.append(sid) }
        }
        return adopted
    }

    func files(suffix: String) -> [String] {
        Self.files(in: directory, suffix: suffix)
    }

    static func files(in directory: URL, suffix: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter {
            $0.hasSuffix(suffix) && SessionRecording.validSessionID(String($0.dropLast(suffix.count)))
        }.sorted()
    }

    /// Uploads every finished recording; false when one failed (to back off).
    func uploadAll() async -> Bool {
        var allDone = true
        for name in files(suffix: ".done") {
            let sid = String(name.dropLast(".done".count))
            let url = directory.appendingPathComponent(name)
            do {
                guard let data = FileManager.default.contents(atPath: url.path) else { continue }
                try await auth.uploadRecording(sessionID: sid, gzip: try SessionRecording.compress(data))
                try FileManager.default.removeItem(at: url)
                logger.info("uploaded a session recording", metadata: ["tp.sid": "\(sid)", "tp.bytes": "\(data.count)"])
            } catch let error as TeleportError
                where (error.code == .accessDenied && !error.message.contains("identity was removed")) || error.code == .alreadyExists
            {
                // Refused for good (retrying cannot help): kept on disk as `.refused`, not retried.
                _ = rename(url.path, directory.appendingPathComponent("\(sid).refused").path)
                logger.error("the auth service refused a session recording; kept as \(sid).refused: \(error.message)", metadata: ["tp.sid": "\(sid)"])
            } catch {
                allDone = false
                logger.warning("cannot upload a session recording yet: \(error)", metadata: ["tp.sid": "\(sid)"])
            }
        }
        return allDone
    }
}

/// A one-shot signal that stops an uploader (the node's: its identity was removed).
public protocol UploadStop: Sendable {
    /// Whether it has fired.
    var fired: Bool { get }
    /// Returns once it has fired.
    func wait() async
}
