import NIOPosix
import SQLiteNIO
import TeleportAPI

extension SQLiteBackend {
    /// Converts any error from SQLite, NIO or the file system into a ``TeleportError`` whose one-line
    /// message names the database file and says what to do. A ``TeleportError`` passes through unchanged,
    /// and so does `CancellationError`, which callers expect to see as such.
    static func convert(_ error: any Error, path: String) -> any Error {
        if error is TeleportError || error is CancellationError { return error }
        if let sqlite = error as? SQLiteError {
            return convert(sqlite, path: path)
        }
        if error is NIOThreadPoolError.ThreadPoolInactive {
            return TeleportError.connectionProblem(
                "the state database \(path) cannot be used: its I/O thread pool has shut down",
                cause: error
            )
        }
        return TeleportError.internalError("the state database \(path) failed: \(error)", cause: error)
    }

    /// Converts one SQLite error; see ``convert(_:path:)``.
    static func convert(_ error: SQLiteError, path: String) -> TeleportError {
        let detail = error.message
        switch error.reason {
        case .corrupt, .corruptIndex, .corruptSequenceSchema, .corruptVirtualTable, .notADatabase, .format:
            return .connectionProblem(
                "the state database \(path) is corrupted (\(detail)): restore it from a backup or move it away",
                cause: error
            )
        case .cantOpen, .cantOpenDirectory, .cantOpenInvalidPath, .cantOpenCygwinPath, .cantOpenUnfollowedSymlink,
            .permission, .auth:
            return .connectionProblem(
                "cannot open the state database \(path) (\(detail)): check that its directory exists and is "
                    + "writable by this user",
                cause: error
            )
        case .readOnly, .readonlyCantLock, .readonlyDirectory, .readonlyInRecovery, .readonlyInRollback,
            .readonlyBackingMoved:
            return .connectionProblem(
                "the state database \(path) is read-only (\(detail)): make the file and its directory writable "
                    + "by this user",
                cause: error
            )
        case .busy, .busyTimeout, .busyInRecovery, .busyInSnapshot, .locked, .lockedBySharedCache,
            .lockedVirtualTable:
            return .connectionProblem(
                "the state database \(path) is locked by another process (\(detail)): stop the other process "
                    + "that uses it",
                cause: error
            )
        case .full:
            return .connectionProblem(
                "the disk holding the state database \(path) is full: free some space and retry",
                cause: error
            )
        case .tooBig:
            return .init(.limitExceeded, "the item is too big for the state database \(path) (\(detail))", cause: error)
        case .noMemory, .ioErrorNoMemory:
            return .connectionProblem("out of memory while using the state database \(path)", cause: error)
        case .ioError, .ioErrorFailedRead, .ioErrorIncompleteRead, .ioErrorFailedWrite, .ioErrorFailedSync,
            .ioErrorFailedDirSync, .ioErrorFailedTruncate, .ioErrorFailedStat, .ioErrorFailedUnlock,
            .ioErrorFailedReadLock, .ioErrorFailedDelete, .ioErrorFailedAccess, .ioErrorFailedLockCheck,
            .ioErrorFailedAdvisoryLock, .ioErrorFailedClose, .ioErrorFailedSharedMemOpen,
            .ioErrorFailedSharedMemSize, .ioErrorFailedSharedMemMap, .ioErrorFailedDeleteNonexistent,
            .ioErrorFailedMemoryMap, .ioErrorCantFindTempdir, .ioErrorCygwinPath, .ioErrorBadDataChecksum,
            .ioErrorCorruptedFilesystem:
            return .connectionProblem(
                "I/O error on the state database \(path) (\(detail)): check the disk and the file system",
                cause: error
            )
        default:
            return .internalError("the state database \(path) failed (\(error.reason): \(detail))", cause: error)
        }
    }
}
