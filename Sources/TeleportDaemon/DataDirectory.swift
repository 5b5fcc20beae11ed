public import Foundation
public import TeleportAPI

/// The daemon's data directory: created 0700, locked against a second daemon, holding the host
/// UUID, the state database, keys (0600) and the audit log.
public final class DataDirectory: Sendable {
    /// The directory.
    public let url: URL
    /// The open `teleport.lock`, locked (a graceful restart hands it to the new process).
    let lockDescriptor: Int32

    /// Creates (0700) and locks `url`. Fails with one line when it is a file, not writable, or
    /// locked by another running daemon. `inheritedLock` is the lock a graceful restart handed
    /// over: taken when it is this directory's lock file.
    public init(url: URL, inheritedLock: Int32? = nil) throws {
        self.url = url
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw TeleportError.badParameter("data_dir \(url.path) is a file, not a directory (set teleport.data_dir to a directory)")
            }
        } else {
            do {
                try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw TeleportError.accessDenied(
                    "cannot create data_dir \(url.path): \(Self.reason(error)) (run as root or set teleport.data_dir to a writable directory)")
            }
        }
        guard access(url.path, W_OK | X_OK) == 0 else {
            throw TeleportError.accessDenied(
                "data_dir \(url.path) is not writable by this user (run as its owner or set teleport.data_dir)")
        }
        chmod(url.path, 0o700)
        let lockPath = url.appendingPathComponent("teleport.lock").path
        if let inheritedLock, Self.sameFile(inheritedLock, lockPath), flock(inheritedLock, LOCK_EX | LOCK_NB) == 0 {
            lockDescriptor = inheritedLock
            Self.writePID(inheritedLock)
            return
        }
        if let inheritedLock { close(inheritedLock) }
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw TeleportError.accessDenied("cannot open the lock file \(lockPath) (errno \(errno))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw TeleportError.alreadyExists(
                "another teleport process is already running with data_dir \(url.path) (stop it first, or use another data_dir)")
        }
        Self.writePID(descriptor)
        lockDescriptor = descriptor
    }

    /// Closing releases the lock unless a process started by a graceful restart holds a copy
    /// (an explicit unlock would release it for that process too).
    deinit {
        close(lockDescriptor)
    }

    static func writePID(_ descriptor: Int32) {
        let pid = "\(getpid())\n"
        _ = ftruncate(descriptor, 0)
        _ = pid.withCString { pwrite(descriptor, $0, strlen($0), 0) }
    }

    /// True when `descriptor` is open on `path`.
    static func sameFile(_ descriptor: Int32, _ path: String) -> Bool {
        guard let open = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(descriptor)") else { return false }
        return URL(fileURLWithPath: open).resolvingSymlinksInPath().path == URL(fileURLWithPath: path).resolvingSymlinksInPath().path
    }

    static func reason(_ error: any Error) -> String {
        let text = (error as NSError).localizedDescription
        return text.isEmpty ? "\(error)" : text
    }

    /// The keys directory (0700).
    public var keysDirectory: URL { url.appendingPathComponent("keys") }

    /// The SQLite state file's default place.
    /// Session recordings waiting for upload on a node (0700).
    public var recordingUploads: URL {
        url.appendingPathComponent("log").appendingPathComponent("upload").appendingPathComponent("sessions").appendingPathComponent("default")
    }

    /// Database sessions' recordings waiting for upload (the database service's own directory).
    public var databaseRecordingUploads: URL {
        url.appendingPathComponent("log").appendingPathComponent("upload").appendingPathComponent("sessions").appendingPathComponent("db")
    }

    public var backendPath: URL { url.appendingPathComponent("backend").appendingPathComponent("sqlite.db") }

    /// The default audit log directory.
    public var logDirectory: URL { url.appendingPathComponent("log") }

    /// This host's UUID, created on first use.
    public func hostUUID() throws -> String {
        let file = url.appendingPathComponent("host_uuid")
        if let text = try? String(contentsOf: file, encoding: .utf8) {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if UUID(uuidString: trimmed) != nil { return trimmed.lowercased() }
            throw TeleportError.badParameter("\(file.path) does not hold a UUID (remove it to get a new host identity)")
        }
        let uuid = UUID().uuidString.lowercased()
        try Data((uuid + "\n").utf8).write(to: file, options: .atomic)
        chmod(file.path, 0o600)
        return uuid
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
