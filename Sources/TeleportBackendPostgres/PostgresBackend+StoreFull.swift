import Foundation
import Logging
import Synchronization
import PostgresNIO
import TeleportAPI

/// The store full (issue 18's faults): a write PostgreSQL refuses for want of disk space (SQLSTATE
/// 53100, "could not extend file ...: No space left on device") fails with one line naming it
/// (``PostgresBackend/convert(_:_:)``), and marks the store full, so that `/readyz` says not ready
/// and why (``writeProblem()``, asked by the auth server's `BackendHealthService` after each probe
/// read). While marked, each health check tries a write that must take new disk space (a table
/// created, given a row, and rolled back: the rollback removes its file); when it succeeds the mark
/// goes. A write that succeeds meanwhile does not clear it: deletes and rows that fit in free space
/// of existing pages succeed on a full disk too.
extension PostgresBackend {
    /// SQLSTATE `disk_full`.
    static let diskFullState = "53100"

    /// Called with every write's final failure: marks the store full when it was for want of space.
    func noteWrite(failure error: any Error) {
        guard Self.sqlState(error) == Self.diskFullState else { return }
        let message = Self.convert(error, settings).message
        let first = storeFull.withLock { mark -> Bool in
            defer { mark = message }
            return mark == nil
        }
        if first {
            logger.warning("PostgreSQL is out of disk space; writes fail until space is freed", metadata: ["tp.error": "\(message)"])
        }
    }

    /// Why this store takes no writes now, or nil when it does: out of disk space (marked by a failed
    /// write, confirmed by a probe that needs new space), a standby, or a read-only database.
    public func writeProblem() async throws -> String? {
        if storeFull.withLock({ $0 }) != nil {
            if let full = try await spaceProbe() {
                storeFull.withLock { $0 = full }
                return full
            }
            storeFull.withLock { $0 = nil }
            logger.info("PostgreSQL has disk space again")
        }
        return try await readOnlyReason()
    }

    /// Creates a table in a transaction, writes one row (the table's first page: new space in the
    /// database's tablespace) and rolls back. Nil when that worked, else the reason it did not
    /// (disk full; any other failure is not this check's to report, so nil too).
    func spaceProbe() async throws -> String? {
        try await read { connection -> String? in
            try await connection.query("BEGIN", logger: logger)
            do {
                try await connection.query("CREATE TABLE teleport_space_probe (v bytea)", logger: logger)
                try await connection.query("INSERT INTO teleport_space_probe VALUES ('\\x00'::bytea)", logger: logger)
                try await connection.query("ROLLBACK", logger: logger)
                return nil
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                if Self.sqlState(error) == Self.diskFullState { return Self.convert(error, settings).message }
                return nil
            }
        }
    }
}
