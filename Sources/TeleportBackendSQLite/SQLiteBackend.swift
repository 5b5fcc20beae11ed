public import Foundation
public import Logging
public import TeleportAPI
public import TeleportBackend
import NIOCore
import NIOPosix
import SQLiteNIO
import Synchronization

/// A ``Backend`` kept in one SQLite file: the state store of a single auth server.
///
/// - Durability: WAL journal with `synchronous=FULL`, so a write that returned survives a power cut, and
///   every write is one `BEGIN IMMEDIATE … COMMIT` transaction, so a crash never leaves half an item.
/// - Concurrency: one connection; every statement goes through a FIFO async lock, so transactions never
///   interleave and concurrent callers never see `SQLITE_BUSY` from each other. A busy timeout covers other
///   processes (a backup tool, the `sqlite3` shell) holding the file briefly.
/// - Expiry: reads filter `expires > now` in SQL with the injected clock, so an expired item is invisible at
///   once; ``sweepExpired()`` (run by ``runSweeper(every:)``) deletes such rows and tells watchers.
/// - Files: the database and its `-wal`/`-shm` siblings have mode 0600; deleted content is zeroed
///   (`secure_delete`), since the store holds private keys.
/// - Errors: every SQLite, NIO and file system error becomes a ``TeleportError`` whose message names the
///   file and the fix; a corrupted file is reported by ``open(path:clock:logger:)``, not by a later read.
public final class SQLiteBackend: Backend {
    /// The schema version this code writes, kept in `PRAGMA user_version`.
    static let schemaVersion = 1
    /// How long a statement waits for a lock held by another process before failing, in milliseconds.
    static let busyTimeoutMilliseconds = 10_000
    /// The columns of an item, in the order ``item(from:)`` reads them.
    private static let itemColumns = "key, value, expires, revision"
    /// The live-item condition; its one parameter is the current time in seconds since 1970.
    private static let live = "(expires IS NULL OR expires > ?)"
    /// Writes one item whether or not its key exists (an expired row is simply replaced).
    private static let upsert = """
        INSERT INTO items (key, value, expires, revision) VALUES (?, ?, ?, ?)
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires,
        revision = excluded.revision
        """

    /// The absolute path of the database file.
    public let path: String
    private let connection: SQLiteConnection
    private let clock: any WallClock
    private let logger: Logger
    private let lock = AsyncLock()
    private let watchers = Mutex(WatcherSet())
    private let closed = Mutex(false)

    private init(path: String, connection: SQLiteConnection, clock: any WallClock, logger: Logger) {
        self.path = path
        self.connection = connection
        self.clock = clock
        self.logger = logger
    }

    /// Opens (creating if needed) the database at `path`, checks its integrity and schema, and returns a
    /// backend reading time from `clock`.
    ///
    /// Fails with `connectionProblem` when the directory is missing or not writable or the file is
    /// corrupted, and with `badParameter` when the path is not a regular file or holds another program's
    /// database; the message names the path and says what to do.
    public static func open(
        path: String,
        clock: any WallClock = SystemClock(),
        logger: Logger
    ) async throws -> SQLiteBackend {
        let path = absolutePath(path)
        var logger = logger
        logger[metadataKey: "tp.backend.path"] = .string(path)
        try prepareFile(at: path, logger: logger)
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(
                storage: .file(path: path),
                threadPool: .singleton,
                logger: logger,
                on: MultiThreadedEventLoopGroup.singleton.any()
            )
        } catch {
            throw convert(error, path: path)
        }
        do {
            try await configure(connection, path: path)
            try tightenSiblings(of: path)
        } catch {
            try? await closeUncancelled(connection)
            throw convert(error, path: path)
        }
        logger.debug("Opened the state database")
        return SQLiteBackend(path: path, connection: connection, clock: clock, logger: logger)
    }

    /// Sets the connection's pragmas, checks integrity and creates or checks the schema.
    private static func configure(_ db: SQLiteConnection, path: String) async throws {
        // Replaces SQLiteNIO's retry-forever busy handler with a bounded wait.
        _ = try await db.query("PRAGMA busy_timeout = \(busyTimeoutMilliseconds)")
        // The first statement that reads the header: a file that is not a database fails here.
        let mode = try await db.query("PRAGMA journal_mode = WAL")
        guard mode.first?.columns.first?.data.string?.lowercased() == "wal" else {
            throw TeleportError.connectionProblem(
                "the state database \(path) cannot use write-ahead logging: put it on a local file system"
            )
        }
        // FULL, not NORMAL: with WAL, NORMAL may lose the last commits on power loss, and this store holds
        // CA state and issued credentials; its write rate is low enough to pay one fsync per commit.
        _ = try await db.query("PRAGMA synchronous = FULL")
        _ = try await db.query("PRAGMA secure_delete = ON")
        _ = try await db.query("PRAGMA trusted_schema = OFF")
        let problems = try await db.query("PRAGMA quick_check")
            .compactMap { $0.columns.first?.data.string }
            .filter { $0 != "ok" }
        if let first = problems.first {
            throw TeleportError.connectionProblem(
                "the state database \(path) is corrupted (\(first)): restore it from a backup or move it away"
            )
        }
        let version = try await db.query("PRAGMA user_version").first?.columns.first?.data.integer ?? 0
        if version > schemaVersion {
            throw TeleportError.badParameter(
                "the state database \(path) has schema version \(version), newer than this build's "
                    + "\(schemaVersion): run a newer build or restore a backup"
            )
        }
        if version < schemaVersion {
            let tables = try await db.query("SELECT count(*) FROM sqlite_schema").first?.columns.first?.data.integer
            if version == 0, let tables, tables > 0 {
                throw TeleportError.badParameter(
                    "the file \(path) is another program's SQLite database: move it away or choose another path"
                )
            }
            try await createSchema(db)
        }
        do {
            _ = try await db.query("SELECT \(itemColumns) FROM items LIMIT 1")
            let counter = try await db.query("SELECT value FROM meta WHERE name = 'revision'")
            guard counter.first?.column("value")?.integer != nil else {
                throw TeleportError.badParameter("the revision counter is missing")
            }
        } catch let error as SQLiteError where error.reason == .error {
            throw TeleportError.connectionProblem(
                "the state database \(path) has a damaged schema (\(error.message)): restore it from a backup "
                    + "or move it away"
            )
        } catch let error as TeleportError {
            throw TeleportError.connectionProblem(
                "the state database \(path) has a damaged schema (\(error.message)): restore it from a backup "
                    + "or move it away"
            )
        }
    }

    /// Creates the tables of schema version 1 in one transaction.
    private static func createSchema(_ db: SQLiteConnection) async throws {
        let statements = [
            "BEGIN IMMEDIATE",
            """
            CREATE TABLE IF NOT EXISTS items (
                key TEXT PRIMARY KEY NOT NULL,
                value BLOB NOT NULL,
                expires REAL,
                revision INTEGER NOT NULL
            ) WITHOUT ROWID
            """,
            "CREATE INDEX IF NOT EXISTS items_expires ON items (expires) WHERE expires IS NOT NULL",
            // The revision counter lives in its own row so it never goes back, even after the item with
            // the highest revision is deleted and the process restarts.
            "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID",
            "INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0)",
            "PRAGMA user_version = \(schemaVersion)",
            "COMMIT",
        ]
        do {
            for statement in statements {
                _ = try await db.query(statement)
            }
        } catch {
            _ = try? await db.query("ROLLBACK")
            throw error
        }
    }

    // MARK: Reads

    /// The live item at `key`, or `notFound` (also when it has expired but is not swept yet).
    public func get(_ key: String) async throws -> Item {
        try await read {
            let rows = try await query(
                "SELECT \(Self.itemColumns) FROM items WHERE key = ? AND \(Self.live)",
                [.text(key), nowBind()]
            )
            guard let row = rows.first else {
                throw TeleportError.notFound("key \(key) is not found")
            }
            return try Self.item(from: row)
        }
    }

    /// Live items with `startKey <= key < endKey` in byte order of the key, at most `limit` (0: no limit).
    public func getRange(startKey: String, endKey: String, limit: Int) async throws -> [Item] {
        try await read {
            var sql = "SELECT \(Self.itemColumns) FROM items WHERE key >= ? AND key < ? AND \(Self.live) ORDER BY key"
            var binds: [SQLiteData] = [.text(startKey), .text(endKey), nowBind()]
            if limit > 0 {
                sql += " LIMIT ?"
                binds.append(.integer(limit))
            }
            return try await query(sql, binds).map(Self.item(from:))
        }
    }

    /// A stream of the committed changes to keys that start with `prefix`, from this call on, in commit
    /// order. Ends when the backend is closed or the caller stops iterating.
    public func watch(prefix: String) async throws -> AsyncStream<BackendEvent> {
        let (stream, continuation) = AsyncStream<BackendEvent>.makeStream(bufferingPolicy: .bufferingNewest(4096))
        // Registered under the lock, so the stream sees exactly the writes that commit after this call.
        let id = try await read {
            watchers.withLock { $0.add(prefix: prefix, continuation) }
        }
        continuation.onTermination = { [weak self] _ in
            self?.watchers.withLock { $0.remove(id) }
        }
        return stream
    }

    // MARK: Writes

    /// Writes `item` whether or not its key exists; returns it with its new revision.
    @discardableResult public func put(_ item: Item) async throws -> Item {
        try await write {
            let stored = try await store(item)
            return (stored, [.put(stored)])
        }
    }

    /// Writes every item in one transaction: one commit (and one fsync) for the lot.
    public func putBatch(_ items: [Item]) async throws {
        guard !items.isEmpty else { return }
        try await write {
            var events: [BackendEvent] = []
            for item in items { events.append(.put(try await store(item))) }
            return ((), events)
        }
    }

    /// Writes `item` only if no live item has its key (an expired one is replaced); else `alreadyExists`.
    @discardableResult public func create(_ item: Item) async throws -> Item {
        try await write {
            if try await liveValue(item.key) != nil {
                throw TeleportError.alreadyExists("key \(item.key) already exists")
            }
            let stored = try await store(item)
            return (stored, [.put(stored)])
        }
    }

    /// Writes every item in one transaction only if no live item has any of their keys; else
    /// `alreadyExists` naming the first, and nothing is written.
    public func createBatch(_ items: [Item]) async throws {
        try Self.checkUniqueKeys(items)
        guard !items.isEmpty else { return }
        try await write {
            for item in items {
                if try await liveValue(item.key) != nil { throw TeleportError.alreadyExists("key \(item.key) already exists") }
            }
            var events: [BackendEvent] = []
            for item in items { events.append(.put(try await store(item))) }
            return ((), events)
        }
    }

    /// Writes `item` only if a live item has its key; else `notFound`.
    @discardableResult public func update(_ item: Item) async throws -> Item {
        try await write {
            guard try await liveValue(item.key) != nil else {
                throw TeleportError.notFound("key \(item.key) is not found")
            }
            let stored = try await store(item)
            return (stored, [.put(stored)])
        }
    }

    /// Replaces the item only if its stored value equals `expected.value`; else `compareFailed`, or
    /// `notFound` when there is no live item. Both items must have the same key (else `badParameter`).
    @discardableResult public func compareAndSwap(expected: Item, replacement: Item) async throws -> Item {
        guard expected.key == replacement.key else {
            throw TeleportError.badParameter("compare-and-swap needs the same key on both sides")
        }
        return try await write {
            guard let current = try await liveValue(expected.key) else {
                throw TeleportError.notFound("key \(expected.key) is not found")
            }
            guard current == expected.value else {
                throw TeleportError.compareFailed("key \(expected.key) was changed by someone else")
            }
            let stored = try await store(replacement)
            return (stored, [.put(stored)])
        }
    }

    /// Deletes the live item at `key`; `notFound` when there is none.
    public func delete(_ key: String) async throws {
        try await write {
            let rows = try await query(
                "DELETE FROM items WHERE key = ? AND \(Self.live) RETURNING key",
                [.text(key), nowBind()]
            )
            guard !rows.isEmpty else {
                throw TeleportError.notFound("key \(key) is not found")
            }
            return ((), [.delete(key: key)])
        }
    }

    /// Deletes every item with `startKey <= key < endKey`, expired or not, and tells watchers about each.
    public func deleteRange(startKey: String, endKey: String) async throws {
        try await write {
            let keys = try await query(
                "DELETE FROM items WHERE key >= ? AND key < ? RETURNING key",
                [.text(startKey), .text(endKey)]
            ).compactMap { $0.column("key")?.string }
            return ((), keys.sorted().map { .delete(key: $0) })
        }
    }

    /// Moves the expiry of the live item at `key` to `expires`, keeping its value; the revision changes and
    /// watchers see a put. `notFound` when there is no live item.
    public func keepAlive(_ key: String, expires: Date) async throws {
        try await write {
            guard let value = try await liveValue(key) else {
                throw TeleportError.notFound("key \(key) is not found")
            }
            let stored = try await store(Item(key: key, value: value, expires: expires))
            return ((), [.put(stored)])
        }
    }

    /// Deletes every item whose expiry has passed by the injected clock, tells watchers (in key order) and
    /// returns how many went.
    @discardableResult public func sweepExpired() async throws -> Int {
        try await write {
            let keys = try await query(
                "DELETE FROM items WHERE expires IS NOT NULL AND expires <= ? RETURNING key",
                [nowBind()]
            ).compactMap { $0.column("key")?.string }
            return (keys.count, keys.sorted().map { .delete(key: $0) })
        }
    }

    /// Calls ``sweepExpired()`` every `interval` until the calling task is cancelled or the backend is
    /// closed. Failures are logged and retried at the next tick.
    public func runSweeper(every interval: Duration) async {
        while !Task.isCancelled {
            do {
                let swept = try await sweepExpired()
                if swept > 0 {
                    logger.debug("Swept expired items", metadata: ["tp.backend.swept": .stringConvertible(swept)])
                }
            } catch is CancellationError {
                return
            } catch {
                if isClosed { return }
                logger.warning("Sweeping expired items failed", metadata: ["tp.error": .string("\(error)")])
            }
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
        }
    }

    /// Stops further use, ends every watch stream and closes the file. Calling it again does nothing.
    public func close() async throws {
        let (finished, failure): (WatcherSet?, (any Error)?) = await lock.withLock {
            let wasClosed = closed.withLock { closed in
                defer { closed = true }
                return closed
            }
            if wasClosed { return (nil, nil) }
            let finished = watchers.withLock { watchers in
                defer { watchers = WatcherSet() }
                return watchers
            }
            do {
                try await Self.closeUncancelled(connection)
                return (finished, nil)
            } catch {
                return (finished, Self.convert(error, path: path))
            }
        }
        // Outside the lock: finishing a stream runs its termination handler, which takes `watchers`.
        if var finished { finished.finishAll() }
        if let failure { throw failure }
        logger.debug("Closed the state database")
    }

    // MARK: Helpers

    /// Closes `connection` in a task of its own: SQLiteNIO's close runs on a thread pool that refuses
    /// work for a cancelled task, and a connection left open asserts when it is deinitialised, so a
    /// caller that was cancelled (a shutdown, a test's time limit) must still get it closed.
    private static func closeUncancelled(_ connection: SQLiteConnection) async throws {
        try await Task { try await connection.close() }.value
    }

    private var isClosed: Bool { closed.withLock { $0 } }

    /// Runs `body` under the lock on an open backend, converting its errors.
    private func read<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await lock.withLock {
                try checkOpen()
                return try await body()
            }
        } catch {
            throw Self.convert(error, path: path)
        }
    }

    /// Runs `body` in one `BEGIN IMMEDIATE … COMMIT` transaction under the lock, then publishes the events
    /// it returned; on any failure rolls back and publishes nothing.
    private func write<T: Sendable>(_ body: () async throws -> (T, [BackendEvent])) async throws -> T {
        do {
            return try await lock.withLock {
                try checkOpen()
                try await query("BEGIN IMMEDIATE")
                let result: T
                let events: [BackendEvent]
                do {
                    (result, events) = try await body()
                    try await query("COMMIT")
                } catch {
                    await rollback()
                    throw error
                }
                watchers.withLock { watchers in
                    for event in events { watchers.publish(event) }
                }
                return result
            }
        } catch {
            throw Self.convert(error, path: path)
        }
    }

    /// Rolls back the open transaction, shielded from the caller's cancellation so a cancelled write never
    /// leaves the connection inside a transaction. A failure (no transaction left to roll back) is ignored.
    private func rollback() async {
        let connection = self.connection
        await Task {
            _ = try? await connection.query("ROLLBACK")
        }.value
    }

    private func checkOpen() throws {
        if isClosed {
            throw TeleportError.connectionProblem("the state database \(path) is closed")
        }
    }

    @discardableResult
    private func query(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        try await connection.query(sql, binds)
    }

    private func nowBind() -> SQLiteData {
        .float(clock.now().timeIntervalSince1970)
    }

    /// The value of the live item at `key`, or `nil`; call inside a transaction.
    private func liveValue(_ key: String) async throws -> Data? {
        let rows = try await query("SELECT value FROM items WHERE key = ? AND \(Self.live)", [.text(key), nowBind()])
        guard let row = rows.first else { return nil }
        return Self.data(row.column("value"))
    }

    /// Takes the next revision and writes `item` with it; call inside a transaction. Returns the item as a
    /// later read will return it.
    private func store(_ item: Item) async throws -> Item {
        let counter = try await query("UPDATE meta SET value = value + 1 WHERE name = 'revision' RETURNING value")
        guard let revision = counter.first?.column("value")?.integer else {
            throw TeleportError.internalError("the state database \(path) has lost its revision counter")
        }
        let expires = item.expires.map(\.timeIntervalSince1970)
        try await query(
            Self.upsert,
            [
                .text(item.key), .blob(ByteBuffer(bytes: item.value)), expires.map { .float($0) } ?? .null,
                .integer(revision),
            ]
        )
        return Item(
            key: item.key,
            value: item.value,
            expires: expires.map { Date(timeIntervalSince1970: $0) },
            revision: String(revision)
        )
    }

    private static func item(from row: SQLiteRow) throws -> Item {
        guard let key = row.column("key")?.string, let revision = row.column("revision")?.integer else {
            throw TeleportError.internalError("the state database returned a row without key or revision")
        }
        return Item(
            key: key,
            value: data(row.column("value")),
            expires: row.column("expires")?.double.map { Date(timeIntervalSince1970: $0) },
            revision: String(revision)
        )
    }

    private static func data(_ column: SQLiteData?) -> Data {
        switch column {
        case .blob(let buffer): Data(buffer.readableBytesView)
        case .text(let text): Data(text.utf8)
        default: Data()
        }
    }
}
