import Foundation
import Logging
import TeleportAPI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension SQLiteBackend {
    /// The permission bits of the database file and its `-wal` and `-shm` siblings: owner read and write.
    static let fileMode: mode_t = 0o600

    /// The first 16 bytes of every SQLite 3 database file.
    static let sqliteHeader = Array("SQLite format 3\0".utf8)

    /// `path` made absolute against the working directory, so messages name the real file and SQLite never
    /// reads a relative `file:` name as a URI.
    static func absolutePath(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// Creates the database file with mode 0600 before SQLite touches it, or tightens the mode of an
    /// existing file to 0600. Fails with a message that names the path and the fix when the directory is
    /// missing or not writable, or the path is not a regular file.
    static func prepareFile(at path: String, logger: Logger) throws {
        let fd = openOrCreate(path, mode: fileMode)
        guard fd >= 0 else {
            throw fileError(errno, path: path)
        }
        defer { closeDescriptor(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw fileError(errno, path: path)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw TeleportError.badParameter(
                "the state database \(path) is not a regular file: move it away or choose another path"
            )
        }
        if info.st_size > 0 {
            // SQLite would take a short garbage file for an empty database and write over it.
            var header = [UInt8](repeating: 0, count: sqliteHeader.count)
            let read = pread(fd, &header, header.count, 0)
            guard read == header.count, header == sqliteHeader else {
                throw TeleportError.connectionProblem(
                    "the state database \(path) is corrupted (file is not a database): restore it from a backup "
                        + "or move it away"
                )
            }
        }
        if info.st_mode & 0o777 != fileMode {
            guard fchmod(fd, fileMode) == 0 else {
                throw fileError(errno, path: path)
            }
            logger.notice(
                "Tightened the permissions of the state database to 0600",
                metadata: ["tp.backend.path": .string(path)]
            )
        }
    }

    /// Sets mode 0600 on the `-wal` and `-shm` siblings of `path` where they exist. SQLite already gives
    /// them the mode of the database file; this covers files left behind by an older process.
    static func tightenSiblings(of path: String) throws {
        for suffix in ["-wal", "-shm"] {
            let sibling = path + suffix
            var info = stat()
            guard stat(sibling, &info) == 0 else { continue }
            if info.st_mode & 0o777 != fileMode, chmod(sibling, fileMode) != 0 {
                throw fileError(errno, path: sibling)
            }
        }
    }

    /// A one-line error for a failed file system call on the database file.
    static func fileError(_ code: Int32, path: String) -> TeleportError {
        let reason = String(cString: strerror(code))
        let directory = (path as NSString).deletingLastPathComponent
        switch code {
        case ENOENT, ENOTDIR:
            return .connectionProblem(
                "cannot create the state database \(path) (\(reason)): create the directory \(directory) "
                    + "(mode 0700) or choose another data directory"
            )
        case EACCES, EPERM, EROFS:
            return .connectionProblem(
                "cannot open the state database \(path) (\(reason)): make \(directory) and the file writable "
                    + "by this user or choose another data directory"
            )
        case EISDIR:
            return .badParameter(
                "the state database \(path) is a directory: move it away or choose another path"
            )
        default:
            return .connectionProblem("cannot open the state database \(path) (\(reason))")
        }
    }
}

/// `open(2)` with `O_CREAT`, out of reach of ``SQLiteBackend``'s own `open` method.
private func openOrCreate(_ path: String, mode: mode_t) -> Int32 {
    open(path, O_RDWR | O_CREAT | O_CLOEXEC, mode)
}

/// `close(2)`, out of reach of ``SQLiteBackend``'s own `close` method.
private func closeDescriptor(_ fd: Int32) {
    _ = close(fd)
}
