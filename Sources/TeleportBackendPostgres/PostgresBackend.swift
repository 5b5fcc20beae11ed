public import Foundation
public import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization
public import TeleportAPI
public import TeleportBackend

/// A ``Backend`` on PostgreSQL, so that several auth servers share one store (see docs/architecture.md,
/// "The PostgreSQL backend").
///
/// Items live in `teleport_items` (key and value `bytea`, `expires timestamptz`, a `revision` from one
/// sequence, new on every write). Every write is one transaction that also appends its changes to
/// `teleport_events` (an append-only log with a `bigserial` id) and sends `NOTIFY teleport_events`.
/// Event ids are taken under a transaction-scoped advisory lock held from the event insert to the
/// commit, so they become visible in id order and a reader polling `id > cursor` never skips one.
/// One feed per backend follows the log (woken by LISTEN, polled every `pollInterval` as a fallback) and
/// fans events out to the watchers; when the pruner has removed events the feed had not read, every
/// watcher gets ``BackendEvent/reset``.
public final class PostgresBackend: Backend {
    /// Tuning; the defaults suit a daemon.
    public struct Options: Sendable {
        /// How often the feed polls when no notification wakes it.
        public var pollInterval: Duration = .seconds(1)
        /// How long events stay in `teleport_events` before ``pruneEvents()`` removes them.
        public var eventRetention: Duration = .seconds(600)
        /// How long a call waits for a pooled connection before it fails with one line naming the
        /// pool or `max_connections` (``PostgresLeases``).
        public var leaseTimeout: Duration = .seconds(5)
        /// Creates the defaults.
        public init() {}
    }

    /// One watch: its prefix, stream, the event id after which it starts (nil while `watch` is still
    /// reading it; events meanwhile wait in `pending`).
    private struct Watcher {
        var prefix: String
        var continuation: AsyncStream<BackendEvent>.Continuation
        var start: Int64?
        var pending: [(id: Int64, event: BackendEvent)] = []
    }

    private struct State {
        var closed = false
        var nextWatcher = 0
        var watchers: [Int: Watcher] = [:]
        /// The last event id the feed has delivered.
        var cursor: Int64 = 0
        /// The highest event id this client wrote (``close()`` delivers up to it first).
        var lastWritten: Int64 = 0
        var tasks: [Task<Void, Never>] = []
        var poller: Task<Void, Never>?
    }

    /// The schema version this code writes (`teleport_meta.version`).
    static let schemaVersion: Int32 = 1
    /// Advisory lock keys: one for schema changes, one that orders event ids.
    static let schemaLock: Int64 = 0x7465_6C65_0001
    static let eventLock: Int64 = 0x7465_6C65_0002
    /// The NOTIFY channel.
    static let channel = "teleport_events"
    static let pollBatch = 1000

    private let client: PostgresClient
    private let runTask: Task<Void, Never>
    let settings: PostgresSettings
    private let options: Options
    private let clock: any WallClock
    let logger: Logger
    private let state = Mutex(State())
    private let wakes: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    /// Every call's connection comes through here: the wait for it is bounded.
    private let leases: PostgresLeases
    /// Why a write failed for want of disk space (SQLSTATE 53100), until a probe finds space again
    /// (``writeProblem()``; PostgresBackend+StoreFull.swift).
    let storeFull = Mutex<String?>(nil)

    private init(
        client: PostgresClient, runTask: Task<Void, Never>, settings: PostgresSettings, options: Options, clock: any WallClock, logger: Logger
    ) {
        self.client = client
        self.runTask = runTask
        self.settings = settings
        self.options = options
        self.clock = clock
        self.logger = logger
        self.leases = PostgresLeases(timeout: options.leaseTimeout, poolSize: settings.poolMaxConns, server: "\(settings.host):\(settings.port)")
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Opens the store named by a `conn_string` (see ``PostgresSettings/parse(_:home:)``).
    public static func open(
        connString: String, clock: any WallClock = SystemClock(), options: Options = Options(), logger: Logger
    ) async throws -> PostgresBackend {
        try await open(settings: try PostgresSettings.parse(connString), clock: clock, options: options, logger: logger)
    }

    /// Connects once (proving the address, TLS, the credentials and the database, each failure a
    /// one-line error), creates or migrates the schema, then starts the connection pool and the feed.
    public static func open(
        settings: PostgresSettings, clock: any WallClock = SystemClock(), options: Options = Options(), logger: Logger
    ) async throws -> PostgresBackend {
        let tls = try makeTLS(settings)
        let head = try await migrate(settings: settings, tls: tls, logger: logger)
        var configuration = PostgresClient.Configuration(
            host: settings.host, port: settings.port, username: settings.user, password: settings.password, database: settings.database,
            tls: clientTLS(settings.sslMode, tls))
        configuration.options.connectTimeout = settings.connectTimeout
        configuration.options.maximumConnections = settings.poolMaxConns
        configuration.options.minimumConnections = 0
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        // The pool's own background work; cancelled by close(). Nothing leases a connection before
        // the task has entered run() (leases made earlier were seen to wait forever under load).
        let (started, startedSignal) = AsyncStream.makeStream(of: Void.self)
        let runTask = Task {
            startedSignal.finish()
            await client.run()
        }
        for await _ in started {}
        for _ in 0..<10 { await Task.yield() }
        let backend = PostgresBackend(client: client, runTask: runTask, settings: settings, options: options, clock: clock, logger: logger)
        backend.startFeed(from: head)
        return backend
    }

    // MARK: TLS

    /// Checks that the TLS files `settings` names can be read and parsed (configuration checks run
    /// before anything is created); one-line `badParameter` errors.
    package static func checkTLS(_ settings: PostgresSettings) throws {
        _ = try makeTLS(settings)
    }

    static func makeTLS(_ settings: PostgresSettings) throws -> TLSConfiguration? {
        if settings.sslMode == .disable { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        let source = settings.configKey
        switch settings.sslMode {
        case .disable: return nil
        case .allow, .prefer, .require:
            // As libpq: without a root certificate these modes encrypt but verify nothing.
            tls.certificateVerification = settings.sslRootCert == nil ? .none : .noHostnameVerification
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        if let root = settings.sslRootCert, root != "system" {
            guard FileManager.default.isReadableFile(atPath: root) else {
                throw TeleportError.badParameter("\(source): sslrootcert=\(root) cannot be read; check the path and its permissions")
            }
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(root))
            } catch {
                throw TeleportError.badParameter("\(source): sslrootcert=\(root) holds no PEM certificate (\(error))")
            }
        }
        if let cert = settings.sslCert, let key = settings.sslKey {
            for (name, path) in [("sslcert", cert), ("sslkey", key)] where !FileManager.default.isReadableFile(atPath: path) {
                throw TeleportError.badParameter("\(source): \(name)=\(path) cannot be read; check the path and its permissions")
            }
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            } catch {
                throw TeleportError.badParameter("\(source): sslcert=\(cert) or sslkey=\(key) is not a PEM certificate and key (\(error))")
            }
        }
        return tls
    }

    private static func clientTLS(_ mode: PostgresSettings.SSLMode, _ tls: TLSConfiguration?) -> PostgresClient.Configuration.TLS {
        guard let tls else { return .disable }
        return [.allow, .prefer].contains(mode) ? .prefer(tls) : .require(tls)
    }

    // MARK: Schema

    /// One direct connection (no pool), each failure a one-line error naming the server and the fix.
    static func connect(settings: PostgresSettings, tls: TLSConfiguration?, logger: Logger) async throws -> PostgresConnection {
        let connectionTLS: PostgresConnection.Configuration.TLS
        do {
            if let tls {
                let context = try NIOSSLContext(configuration: tls)
                connectionTLS = [.allow, .prefer].contains(settings.sslMode) ? .prefer(context) : .require(context)
            } else {
                connectionTLS = .disable
            }
        } catch {
            throw TeleportError.badParameter("\(settings.configKey): the TLS settings cannot be loaded: \(error)")
        }
        var configuration = PostgresConnection.Configuration(
            host: settings.host, port: settings.port, username: settings.user, password: settings.password, database: settings.database,
            tls: connectionTLS)
        configuration.options.connectTimeout = .seconds(settings.connectTimeout.components.seconds)
        do {
            return try await PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration, id: 0, logger: logger
            ).get()
        } catch {
            throw convert(error, settings)
        }
    }

    /// One direct connection: proves the server answers and accepts us, then creates or upgrades the
    /// schema under an advisory lock (two auth servers starting together create it once). Returns the
    /// event log's head, where the feed starts.
    private static func migrate(settings: PostgresSettings, tls: TLSConfiguration?, logger: Logger) async throws -> Int64 {
        let connection = try await connect(settings: settings, tls: tls, logger: logger)
        do {
            try await connection.query("BEGIN", logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(\(schemaLock))", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS teleport_meta (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL, pruned_through bigint NOT NULL DEFAULT 0)",
                logger: logger)
            try await connection.query("INSERT INTO teleport_meta (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING", logger: logger)
            var version: Int32 = 0
            for try await value in try await connection.query("SELECT version FROM teleport_meta WHERE id = 1", logger: logger).decode(Int32.self) {
                version = value
            }
            if version > schemaVersion {
                throw TeleportError.badParameter(
                    "\(settings.displayName) holds the backend schema version \(version), newer than this teleport knows (\(schemaVersion)); upgrade teleport")
            }
            if version < 1 {
                for statement: PostgresQuery in [
                    "CREATE SEQUENCE IF NOT EXISTS teleport_revision",
                    "CREATE TABLE IF NOT EXISTS teleport_items (key bytea PRIMARY KEY, value bytea NOT NULL, expires timestamptz, revision bigint NOT NULL)",
                    "CREATE INDEX IF NOT EXISTS teleport_items_expires ON teleport_items (expires) WHERE expires IS NOT NULL",
                    """
                    CREATE TABLE IF NOT EXISTS teleport_events (id bigserial PRIMARY KEY, key bytea NOT NULL, kind smallint NOT NULL,
                    value bytea, expires timestamptz, revision bigint, created timestamptz NOT NULL DEFAULT now())
                    """,
                    "CREATE INDEX IF NOT EXISTS teleport_events_created ON teleport_events (created)",
                    "UPDATE teleport_meta SET version = 1 WHERE id = 1",
                ] {
                    try await connection.query(statement, logger: logger)
                }
                logger.info("created the PostgreSQL backend schema", metadata: ["database": "\(settings.displayName)"])
            }
            try await connection.query("COMMIT", logger: logger)
            let head = try await Self.head(connection, logger: logger)
            try? await connection.close()
            return head
        } catch {
            try? await connection.close()
            throw convert(error, settings)
        }
    }

    // MARK: Calls

    private func checkOpen() throws {
        if state.withLock({ $0.closed }) { throw TeleportError.connectionProblem("the PostgreSQL backend is closed") }
    }

    /// Runs `body` in one transaction on a pooled connection; retries serialization failures and
    /// deadlocks, converts every other failure into a ``TeleportError``.
    private func transaction<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try checkOpen()
        var attempt = 0
        while true {
            do {
                return try await leases.with(client) { connection in
                    try await connection.query("BEGIN", logger: logger)
                    do {
                        let result = try await body(connection)
                        try await connection.query("COMMIT", logger: logger)
                        return result
                    } catch {
                        _ = try? await connection.query("ROLLBACK", logger: logger)
                        throw error
                    }
                }
            } catch {
                attempt += 1
                if let state = Self.sqlState(error), Self.retryableStates.contains(state), attempt < 20 {
                    try await Task.sleep(for: .milliseconds(attempt * 5))
                    continue
                }
                noteWrite(failure: error)
                throw Self.convert(error, settings)
            }
        }
    }

    /// One read outside a transaction (`whileClosing`: the feed's reads, which go on until ``close()``
    /// has delivered this client's own writes).
    func read<T>(whileClosing: Bool = false, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        if !whileClosing { try checkOpen() }
        do {
            return try await leases.with(client) { try await body($0) }
        } catch {
            throw Self.convert(error, settings)
        }
    }

    private static func bytes(_ key: String) -> ByteBuffer { ByteBuffer(string: key) }
    private static func bytes(_ data: Data) -> ByteBuffer { ByteBuffer(bytes: data) }
    private static func string(_ buffer: ByteBuffer) -> String { String(buffer: buffer) }
    private static func data(_ buffer: ByteBuffer) -> Data { Data(buffer.readableBytesView) }

    private static func item(_ row: (ByteBuffer, ByteBuffer, Date?, Int64)) -> Item {
        Item(key: string(row.0), value: data(row.1), expires: row.2, revision: String(row.3))
    }

    /// The tail of a single-key write `WITH w AS (... RETURNING key, value, expires, revision)`: once
    /// every row of `w` is written, take the event lock, NOTIFY, and append the rows to the log. One
    /// statement, so one round trip and its own transaction; the lock comes after the row locks (the
    /// aggregate reads all of `w` first), so whoever holds it waits only for its commit.
    static let putEvents = """
        , l AS (SELECT pg_advisory_xact_lock(\(eventLock)), pg_notify('\(channel)', '') FROM (SELECT count(*) AS n FROM w) AS c WHERE c.n > 0)
        INSERT INTO teleport_events (key, kind, value, expires, revision)
        SELECT w.key, 0, w.value, w.expires, w.revision FROM w, l ORDER BY w.key RETURNING id, expires, revision
        """

    /// As ``putEvents`` for `WITH w AS (DELETE ... RETURNING key)`.
    static let deleteEvents = """
        , l AS (SELECT pg_advisory_xact_lock(\(eventLock)), pg_notify('\(channel)', '') FROM (SELECT count(*) AS n FROM w) AS c WHERE c.n > 0)
        INSERT INTO teleport_events (key, kind) SELECT w.key, 1 FROM w, l ORDER BY w.key RETURNING id, expires, revision
        """

    /// Runs one write statement ending in ``putEvents`` or ``deleteEvents``; returns its event row
    /// (nil: nothing matched). Retries serialization failures and deadlocks.
    private func write(_ query: PostgresQuery) async throws -> (id: Int64, expires: Date?, revision: Int64?)? {
        try checkOpen()
        var attempt = 0
        while true {
            do {
                let rows = try await leases.with(client) { connection in
                    try await Self.drain(connection.query(query, logger: logger), as: (Int64, Date?, Int64?).self)
                }
                guard let row = rows.first else { return nil }
                state.withLock { $0.lastWritten = max($0.lastWritten, row.0) }
                return (row.0, row.1, row.2)
            } catch {
                attempt += 1
                if let state = Self.sqlState(error), Self.retryableStates.contains(state), attempt < 20 {
                    try await Task.sleep(for: .milliseconds(attempt * 5))
                    continue
                }
                noteWrite(failure: error)
                throw Self.convert(error, settings)
            }
        }
    }

    /// Every row of `rows` decoded as `type`.
    private static func drain<each Column: PostgresDecodable>(
        _ rows: PostgresRowSequence, as type: (repeat each Column).Type
    ) async throws -> [(repeat each Column)] {
        var all: [(repeat each Column)] = []
        for try await row in rows.decode(type) { all.append(row) }
        return all
    }

    /// `item` with the expiry and revision PostgreSQL stored (expiries to the microsecond).
    private func stamped(_ item: Item, _ written: (id: Int64, expires: Date?, revision: Int64?)) -> Item {
        var stored = item
        stored.expires = written.expires
        stored.revision = written.revision.map(String.init) ?? ""
        return stored
    }

    /// Appends put events for `keys` (their rows as they are now) to the log, under the event lock.
    private func recordPuts(_ connection: PostgresConnection, _ keys: [ByteBuffer]) async throws {
        guard !keys.isEmpty else { return }
        try await connection.query("SELECT pg_advisory_xact_lock(\(Self.eventLock)), pg_notify('\(unescaped: Self.channel)', '')", logger: logger)
        let rows = try await connection.query(
            """
            INSERT INTO teleport_events (key, kind, value, expires, revision)
            SELECT key, 0, value, expires, revision FROM teleport_items WHERE key = ANY(\(keys)) ORDER BY key RETURNING id
            """, logger: logger)
        try await noteWritten(rows)
    }

    /// Appends delete events for `keys`, in the given order, under the event lock.
    private func recordDeletes(_ connection: PostgresConnection, _ keys: [ByteBuffer]) async throws {
        guard !keys.isEmpty else { return }
        try await connection.query("SELECT pg_advisory_xact_lock(\(Self.eventLock)), pg_notify('\(unescaped: Self.channel)', '')", logger: logger)
        let rows = try await connection.query(
            """
            INSERT INTO teleport_events (key, kind)
            SELECT k, 1 FROM unnest(\(keys)::bytea[]) WITH ORDINALITY AS t(k, n) ORDER BY n RETURNING id
            """, logger: logger)
        try await noteWritten(rows)
    }

    private func noteWritten(_ rows: PostgresRowSequence) async throws {
        var highest: Int64 = 0
        for try await id in rows.decode(Int64.self) { highest = max(highest, id) }
        state.withLock { $0.lastWritten = max($0.lastWritten, highest) }
    }

    private func notFound(_ key: String) -> TeleportError { TeleportError.notFound("key \(key) is not found") }

    // MARK: Backend

    /// Why this store takes no writes now (a standby, or `default_transaction_read_only` set for
    /// the database or role), or nil when it does: `/readyz` says not ready then (issue 18).
    public func readOnlyReason() async throws -> String? {
        try await read { connection -> String? in
            let rows = try await connection.query(
                "SELECT current_setting('transaction_read_only'), pg_is_in_recovery()", logger: logger)
            for try await (readOnly, recovering) in rows.decode((String, Bool).self) {
                if recovering { return "PostgreSQL at \(settings.host):\(settings.port) is a standby (read-only); point conn_string at the primary" }
                if readOnly == "on" {
                    return "PostgreSQL at \(settings.host):\(settings.port) is read-only (default_transaction_read_only); writes fail until it is turned off"
                }
            }
            return nil
        }
    }

    public func get(_ key: String) async throws -> Item {
        let now = clock.now()
        let found = try await read { connection -> Item? in
            let rows = try await connection.query(
                """
                SELECT key, value, expires, revision FROM teleport_items
                WHERE key = \(Self.bytes(key)) AND (expires IS NULL OR expires > \(now))
                """, logger: logger)
            for try await row in rows.decode((ByteBuffer, ByteBuffer, Date?, Int64).self) { return Self.item(row) }
            return nil
        }
        guard let found else { throw notFound(key) }
        return found
    }

    @discardableResult public func put(_ item: Item) async throws -> Item {
        let written = try await write(
            """
            WITH w AS (
            INSERT INTO teleport_items (key, value, expires, revision)
            VALUES (\(Self.bytes(item.key)), \(Self.bytes(item.value)), \(item.expires), nextval('teleport_revision'))
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires = EXCLUDED.expires, revision = EXCLUDED.revision
            RETURNING key, value, expires, revision)\(unescaped: Self.putEvents)
            """)
        guard let written else { throw TeleportError.internalError("PostgreSQL stored no row for \(item.key)") }
        return stamped(item, written)
    }

    public func putBatch(_ items: [Item]) async throws {
        guard !items.isEmpty else { return }
        // One row per key (the last one wins, as sequential puts would), in key order so that two
        // batches over the same keys lock them in the same order.
        var last: [String: Item] = [:]
        for item in items { last[item.key] = item }
        let unique = last.values.sorted { $0.key < $1.key }
        try await transaction { connection in
            for chunk in stride(from: 0, to: unique.count, by: 1000).map({ unique[$0..<min($0 + 1000, unique.count)] }) {
                var bindings = PostgresBindings(capacity: chunk.count * 3)
                var values: [String] = []
                for (index, item) in chunk.enumerated() {
                    bindings.append(Self.bytes(item.key))
                    bindings.append(Self.bytes(item.value))
                    bindings.append(item.expires)
                    values.append("($\(index * 3 + 1), $\(index * 3 + 2), $\(index * 3 + 3), nextval('teleport_revision'))")
                }
                let sql = """
                    INSERT INTO teleport_items (key, value, expires, revision) VALUES \(values.joined(separator: ", "))
                    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires = EXCLUDED.expires, revision = EXCLUDED.revision
                    """
                try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
            }
            try await recordPuts(connection, unique.map { Self.bytes($0.key) })
        }
    }

    /// One transaction: a multi-row insert whose conflicts update only expired rows; if fewer rows
    /// come back than were given, a key holds a live item and the transaction rolls back. Row locks
    /// are taken in key order (as ``putBatch(_:)``), so two batches over the same keys do not deadlock.
    public func createBatch(_ items: [Item]) async throws {
        try Self.checkUniqueKeys(items)
        guard !items.isEmpty else { return }
        let now = clock.now()
        let sorted = items.sorted { $0.key < $1.key }
        try await transaction { connection in
            var written = Set<String>()
            for chunk in stride(from: 0, to: sorted.count, by: 1000).map({ sorted[$0..<min($0 + 1000, sorted.count)] }) {
                var bindings = PostgresBindings(capacity: chunk.count * 3 + 1)
                var values: [String] = []
                for (index, item) in chunk.enumerated() {
                    bindings.append(Self.bytes(item.key))
                    bindings.append(Self.bytes(item.value))
                    bindings.append(item.expires)
                    values.append("($\(index * 3 + 1), $\(index * 3 + 2), $\(index * 3 + 3), nextval('teleport_revision'))")
                }
                bindings.append(now)
                let sql = """
                    INSERT INTO teleport_items (key, value, expires, revision) VALUES \(values.joined(separator: ", "))
                    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires = EXCLUDED.expires, revision = EXCLUDED.revision
                    WHERE teleport_items.expires IS NOT NULL AND teleport_items.expires <= $\(chunk.count * 3 + 1)
                    RETURNING key
                    """
                let rows = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
                for try await key in rows.decode(ByteBuffer.self) { written.insert(Self.string(key)) }
            }
            if let existing = items.first(where: { !written.contains($0.key) }) {
                throw TeleportError.alreadyExists("key \(existing.key) already exists")
            }
            try await recordPuts(connection, sorted.map { Self.bytes($0.key) })
        }
    }

    @discardableResult public func create(_ item: Item) async throws -> Item {
        let now = clock.now()
        let written = try await write(
            """
            WITH w AS (
            INSERT INTO teleport_items (key, value, expires, revision)
            VALUES (\(Self.bytes(item.key)), \(Self.bytes(item.value)), \(item.expires), nextval('teleport_revision'))
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires = EXCLUDED.expires, revision = EXCLUDED.revision
            WHERE teleport_items.expires IS NOT NULL AND teleport_items.expires <= \(now)
            RETURNING key, value, expires, revision)\(unescaped: Self.putEvents)
            """)
        guard let written else { throw TeleportError.alreadyExists("key \(item.key) already exists") }
        return stamped(item, written)
    }

    @discardableResult public func update(_ item: Item) async throws -> Item {
        let now = clock.now()
        let written = try await write(
            """
            WITH w AS (
            UPDATE teleport_items SET value = \(Self.bytes(item.value)), expires = \(item.expires), revision = nextval('teleport_revision')
            WHERE key = \(Self.bytes(item.key)) AND (expires IS NULL OR expires > \(now))
            RETURNING key, value, expires, revision)\(unescaped: Self.putEvents)
            """)
        guard let written else { throw notFound(item.key) }
        return stamped(item, written)
    }

    @discardableResult public func compareAndSwap(expected: Item, replacement: Item) async throws -> Item {
        guard expected.key == replacement.key else {
            throw TeleportError.badParameter("compare-and-swap needs one key, got \(expected.key) and \(replacement.key)")
        }
        let now = clock.now()
        let key = Self.bytes(expected.key)
        let written = try await write(
            """
            WITH w AS (
            UPDATE teleport_items SET value = \(Self.bytes(replacement.value)), expires = \(replacement.expires),
            revision = nextval('teleport_revision')
            WHERE key = \(key) AND (expires IS NULL OR expires > \(now)) AND value = \(Self.bytes(expected.value))
            RETURNING key, value, expires, revision)\(unescaped: Self.putEvents)
            """)
        if let written { return stamped(replacement, written) }
        let live = try await read { connection in
            try await Self.drain(
                connection.query("SELECT 1 FROM teleport_items WHERE key = \(key) AND (expires IS NULL OR expires > \(now))", logger: logger),
                as: Int32.self)
        }
        if live.isEmpty { throw notFound(expected.key) }
        throw TeleportError.compareFailed("key \(expected.key) has changed since it was read")
    }

    public func delete(_ key: String) async throws {
        let now = clock.now()
        let written = try await write(
            """
            WITH w AS (
            DELETE FROM teleport_items WHERE key = \(Self.bytes(key)) AND (expires IS NULL OR expires > \(now))
            RETURNING key)\(unescaped: Self.deleteEvents)
            """)
        guard written != nil else { throw notFound(key) }
    }

    public func getRange(startKey: String, endKey: String, limit: Int) async throws -> [Item] {
        guard startKey < endKey else { return [] }
        let now = clock.now()
        return try await read { connection in
            let query: PostgresQuery =
                limit > 0
                ? """
                SELECT key, value, expires, revision FROM teleport_items
                WHERE key >= \(Self.bytes(startKey)) AND key < \(Self.bytes(endKey)) AND (expires IS NULL OR expires > \(now))
                ORDER BY key LIMIT \(limit)
                """
                : """
                SELECT key, value, expires, revision FROM teleport_items
                WHERE key >= \(Self.bytes(startKey)) AND key < \(Self.bytes(endKey)) AND (expires IS NULL OR expires > \(now))
                ORDER BY key
                """
            var items: [Item] = []
            for try await row in try await connection.query(query, logger: logger).decode((ByteBuffer, ByteBuffer, Date?, Int64).self) {
                items.append(Self.item(row))
            }
            return items
        }
    }

    public func deleteRange(startKey: String, endKey: String) async throws {
        guard startKey < endKey else { return }
        try await transaction { connection in
            let rows = try await connection.query(
                "DELETE FROM teleport_items WHERE key >= \(Self.bytes(startKey)) AND key < \(Self.bytes(endKey)) RETURNING key", logger: logger)
            var keys: [ByteBuffer] = []
            for try await key in rows.decode(ByteBuffer.self) { keys.append(key) }
            try await recordDeletes(connection, keys.sorted { $0.readableBytesView.lexicographicallyPrecedes($1.readableBytesView) })
        }
    }

    public func keepAlive(_ key: String, expires: Date) async throws {
        let now = clock.now()
        let written = try await write(
            """
            WITH w AS (
            UPDATE teleport_items SET expires = \(expires), revision = nextval('teleport_revision')
            WHERE key = \(Self.bytes(key)) AND (expires IS NULL OR expires > \(now))
            RETURNING key, value, expires, revision)\(unescaped: Self.putEvents)
            """)
        guard written != nil else { throw notFound(key) }
    }

    /// Deletes expired items a thousand at a time (rows another auth server is sweeping are skipped),
    /// each batch with its delete events; returns how many this call removed.
    @discardableResult public func sweepExpired() async throws -> Int {
        let now = clock.now()
        var total = 0
        while true {
            let count = try await transaction { connection in
                let rows = try await connection.query(
                    """
                    DELETE FROM teleport_items WHERE key IN (
                    SELECT key FROM teleport_items WHERE expires <= \(now) ORDER BY key LIMIT 1000 FOR UPDATE SKIP LOCKED) RETURNING key
                    """, logger: logger)
                var keys: [ByteBuffer] = []
                for try await key in rows.decode(ByteBuffer.self) { keys.append(key) }
                try await recordDeletes(connection, keys.sorted { $0.readableBytesView.lexicographicallyPrecedes($1.readableBytesView) })
                return keys.count
            }
            total += count
            if count < 1000 { return total }
        }
    }

    // MARK: Watches

    public func watch(prefix: String) async throws -> AsyncStream<BackendEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: BackendEvent.self)
        let id = try state.withLock { state in
            if state.closed { throw TeleportError.connectionProblem("the PostgreSQL backend is closed") }
            state.nextWatcher += 1
            state.watchers[state.nextWatcher] = Watcher(prefix: prefix, continuation: continuation)
            return state.nextWatcher
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.watchers.removeValue(forKey: id) }
        }
        do {
            // Registered first, then "now" read: an event the feed delivers meanwhile waits in
            // `pending` and goes out only if it came after the call.
            let start = try await read { try await Self.head($0, logger: self.logger) }
            state.withLock { state in
                guard var watcher = state.watchers[id] else { return }
                for (eventID, event) in watcher.pending where eventID > start { watcher.continuation.yield(event) }
                watcher.pending = []
                watcher.start = start
                state.watchers[id] = watcher
            }
        } catch {
            state.withLock { _ = $0.watchers.removeValue(forKey: id) }
            continuation.finish()
            throw error
        }
        return stream
    }

    /// The newest event id, or the prune watermark when it is higher (an empty, pruned log).
    private static func head(_ connection: PostgresConnection, logger: Logger) async throws -> Int64 {
        let rows = try await connection.query(
            "SELECT greatest((SELECT coalesce(max(id), 0) FROM teleport_events), (SELECT pruned_through FROM teleport_meta WHERE id = 1))",
            logger: logger)
        for try await value in rows.decode(Int64?.self) { return value ?? 0 }
        return 0
    }

    /// Starts the feed from the current head: a LISTEN connection that wakes the poller, a ticker
    /// that wakes it every `pollInterval`, and the poller.
    private func startFeed(from head: Int64) {
        let listener = Task { [self] in await self.listen() }
        let ticker = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: options.pollInterval)
                wake.yield()
            }
        }
        let poller = Task { [self] in
            for await _ in wakes {
                do {
                    while try await poll() {}
                } catch {
                    if Task.isCancelled { break }
                    logger.warning("reading PostgreSQL's event log failed; will retry", metadata: ["error": "\(error)"])
                }
            }
        }
        state.withLock { state in
            state.cursor = head
            state.tasks = [listener, ticker]
            state.poller = poller
        }
    }

    /// Holds one pooled connection LISTENing on the channel, waking the poller on each notification;
    /// reconnects after a failure (and polls then, in case a wake-up was lost).
    private func listen() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await leases.with(client) { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        failures = 0
                        wake.yield()
                        for try await _ in notifications { wake.yield() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                failures += 1
                logger.debug("the PostgreSQL LISTEN connection failed; reconnecting", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(min(5000, 200 * max(1, failures))))
        }
    }

    /// Reads the next events after the cursor and hands them to the watchers; yields `.reset` to every
    /// watcher when the pruner has removed events past the cursor. Returns true when more may wait.
    private func poll() async throws -> Bool {
        let cursor = state.withLock { $0.cursor }
        // A read that does not answer (seen after PostgreSQL restarted under load: the feed stopped
        // for good and close() waited on it forever) is left behind after `pollTimeout` and its
        // result never applied; the next poll leases another connection.
        let (events, pruned, head) = try await withAbandoningDeadline(Self.pollTimeout, timeoutMessage: { "reading PostgreSQL's event log took longer than \(Self.pollTimeout); left behind" }) {
            try await self.fetchEvents(after: cursor)
        }
        // A feed paused or closed meanwhile (its task cancelled) applies nothing.
        try Task.checkCancellation()
        guard state.withLock({ $0.cursor }) == cursor else { return true }
        return apply(events: events, pruned: pruned, head: head, cursor: cursor)
    }

    /// How long one read of the event log may take before the feed leaves it behind.
    static let pollTimeout: Duration = .seconds(10)

    /// The events after `cursor` (at most ``pollBatch``), the prune watermark, and the head when
    /// the watermark is past the cursor.
    private func fetchEvents(after cursor: Int64) async throws -> ([(Int64, BackendEvent)], Int64, Int64) {
        try await read(whileClosing: true) { connection -> ([(Int64, BackendEvent)], Int64, Int64) in
            var events: [(Int64, BackendEvent)] = []
            let rows = try await connection.query(
                """
                SELECT id, key, kind, value, expires, revision FROM teleport_events WHERE id > \(cursor) ORDER BY id LIMIT \(Self.pollBatch)
                """, logger: logger)
            for try await (id, key, kind, value, expires, revision) in rows.decode(
                (Int64, ByteBuffer, Int16, ByteBuffer?, Date?, Int64?).self)
            {
                let name = Self.string(key)
                if kind == 1 {
                    events.append((id, .delete(key: name)))
                } else {
                    let item = Item(key: name, value: value.map(Self.data) ?? Data(), expires: expires, revision: revision.map(String.init) ?? "")
                    events.append((id, .put(item)))
                }
            }
            var pruned: Int64 = 0
            for try await value in try await connection.query("SELECT pruned_through FROM teleport_meta WHERE id = 1", logger: logger)
                .decode(Int64.self)
            {
                pruned = value
            }
            let head = cursor < pruned ? try await Self.head(connection, logger: logger) : 0
            return (events, pruned, head)
        }
    }

    /// Hands what ``fetchEvents(after:)`` read to the watchers and moves the cursor; true when more
    /// may wait.
    private func apply(events: [(Int64, BackendEvent)], pruned: Int64, head: Int64, cursor: Int64) -> Bool {
        if cursor < pruned {
            // Events after the cursor may be gone: every watcher re-reads, and the feed goes on from now.
            logger.warning("the PostgreSQL event log was pruned past this feed; resetting watchers", metadata: ["cursor": "\(cursor)", "pruned": "\(pruned)"])
            state.withLock { state in
                state.cursor = max(head, pruned)
                for watcher in state.watchers.values { watcher.continuation.yield(.reset) }
            }
            return false
        }
        guard let last = events.last?.0 else { return false }
        state.withLock { state in
            for (eventID, event) in events {
                let key: String
                switch event {
                case .put(let item): key = item.key
                case .delete(let deleted): key = deleted
                case .reset: continue
                }
                for (id, watcher) in state.watchers where key.hasPrefix(watcher.prefix) {
                    if let start = watcher.start {
                        if eventID > start { watcher.continuation.yield(event) }
                    } else {
                        state.watchers[id]?.pending.append((eventID, event))
                    }
                }
            }
            state.cursor = max(state.cursor, last)
        }
        return events.count == Self.pollBatch
    }

    // MARK: Maintenance

    /// Removes events older than `eventRetention` (by the database's clock); a watcher whose feed had
    /// not read them yet gets a reset. Returns how many went.
    @discardableResult public func pruneEvents() async throws -> Int {
        let seconds = Double(options.eventRetention.components.seconds)
        return try await pruneEvents(through: nil, olderThanSeconds: seconds)
    }

    /// Removes every event with an id up to `through` (tests: make a lagging watcher miss events).
    @discardableResult package func pruneEvents(through: Int64) async throws -> Int {
        try await pruneEvents(through: through, olderThanSeconds: 0)
    }

    private func pruneEvents(through: Int64?, olderThanSeconds: Double) async throws -> Int {
        try await transaction { connection in
            var limit: Int64 = through ?? 0
            if through == nil {
                let rows = try await connection.query(
                    "SELECT coalesce(max(id), 0) FROM teleport_events WHERE created < now() - make_interval(secs => \(olderThanSeconds))",
                    logger: logger)
                for try await value in rows.decode(Int64.self) { limit = value }
            }
            guard limit > 0 else { return 0 }
            let rows = try await connection.query("DELETE FROM teleport_events WHERE id <= \(limit) RETURNING id", logger: logger)
            var count = 0
            for try await _ in rows.decode(Int64.self) { count += 1 }
            try await connection.query(
                "UPDATE teleport_meta SET pruned_through = greatest(pruned_through, \(limit)) WHERE id = 1", logger: logger)
            return count
        }
    }

    /// The newest event id (tests).
    package func headEventID() async throws -> Int64 {
        try await read { try await Self.head($0, logger: self.logger) }
    }

    /// Stops the feed from polling (tests: a watcher falls behind while events are pruned).
    package func pauseFeed() {
        state.withLock { state in
            state.poller?.cancel()
            for task in state.tasks { task.cancel() }
            state.tasks = []
        }
    }

    /// Polls once by hand (tests, after ``pauseFeed()``).
    package func pollNow() async throws {
        while try await poll() {}
    }

    /// Sweeps expired items and prunes old events every `interval` until the task is cancelled (the
    /// daemon runs it as a service; several auth servers may run it at once).
    public func runMaintenance(every interval: Duration) async {
        while !Task.isCancelled {
            do {
                let swept = try await sweepExpired()
                let pruned = try await pruneEvents()
                if swept + pruned > 0 {
                    logger.debug("PostgreSQL backend maintenance", metadata: ["swept": "\(swept)", "pruned_events": "\(pruned)"])
                }
            } catch {
                logger.warning("PostgreSQL backend maintenance failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Delivers this client's own writes to its watchers (for at most five seconds), ends every
    /// watch, and closes the pool.
    public func close() async throws {
        let (tasks, poller, alreadyClosed) = state.withLock { state in
            let result = (state.tasks, state.poller, state.closed)
            state.closed = true
            state.tasks = []
            state.poller = nil
            return result
        }
        if alreadyClosed { return }
        for task in tasks { task.cancel() }
        wake.finish()
        // Each poll is bounded (pollTimeout); so is this wait, whatever the poller awaits.
        _ = try? await withAbandoningDeadline(Self.pollTimeout + .seconds(2), timeoutMessage: { "stopping the PostgreSQL event feed" }) { await poller?.value }
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        while state.withLock({ $0.cursor < $0.lastWritten }), ContinuousClock.now < deadline {
            do {
                let cursor = state.withLock { $0.cursor }
                _ = try await poll()
                if state.withLock({ $0.cursor }) == cursor { try await Task.sleep(for: .milliseconds(10)) }
            } catch {
                break
            }
        }
        let continuations = state.withLock { state in
            let all = state.watchers.values.map(\.continuation)
            state.watchers.removeAll()
            return all
        }
        for continuation in continuations { continuation.finish() }
        runTask.cancel()
        let runTask = self.runTask
        if (try? await withAbandoningDeadline(.seconds(10), timeoutMessage: { "closing the PostgreSQL connection pool" }) { await runTask.value }) == nil {
            logger.warning("the PostgreSQL connection pool did not stop within 10 s; leaving it behind")
        }
    }
}
