public import Foundation
public import Logging
import NIOCore
import NIOSSL
import PostgresNIO
public import TeleportAPI
public import TeleportEvents

/// The `postgresql://` audit log (`teleport.storage.audit_events_uri`): every auth server of a cluster
/// writes its events into one shared table, so `tctl events ls` on any of them shows them all.
///
/// Tamper evidence as in the `file://` log, one chain per writer: table `teleport_audit` holds
/// `(chain, seq)` rows, `chain` being the auth server's host UUID and `seq` counting from 1 with no gap;
/// each row's `line` is the event's JSON sealed with `prev_hash` (the hash of the same chain's row
/// before it) and its own `hash` (``AuditChain``), byte for byte what a `file://` log would hold. The
/// auth server signs each chain's head as a checkpoint (`head.file` = `postgresql/<chain>`), and
/// ``verifyChain(from:to:checkpoints:)`` checks every chain. Writes are serialised (one at a time, in
/// arrival order) on one connection, which is opened again after a failure; `(chain, seq)` is unique, so two processes
/// claiming one chain cannot both write a row.
public actor PostgresAuditLog: AuditEmitter, ChainedAuditLog, AuditSearcher {
    /// This writer's chain: the auth server's host UUID.
    public nonisolated let chain: String
    private let settings: PostgresSettings
    private let tls: TLSConfiguration?
    private let logger: Logger
    private var connection: PostgresConnection?
    /// The last row this chain holds (0 and "" before the first).
    private var lastSeq: Int64 = 0
    private var lastHash = ""

    private init(chain: String, settings: PostgresSettings, tls: TLSConfiguration?, logger: Logger) {
        self.chain = chain
        self.settings = settings
        self.tls = tls
        self.logger = logger
    }

    /// Connects (each failure one line naming the URI's key), creates the table if needed and reads
    /// this chain's head.
    public static func open(uri: String, chain: String, logger: Logger) async throws -> PostgresAuditLog {
        let settings = try PostgresSettings.parse(uri, key: "teleport.storage.audit_events_uri")
        let log = PostgresAuditLog(chain: chain, settings: settings, tls: try PostgresBackend.makeTLS(settings), logger: logger)
        try await log.start()
        return log
    }

    private func start() async throws {
        let connection = try await connected()
        do {
            try await connection.query("BEGIN", logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.schemaLock))", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS teleport_audit (id bigserial PRIMARY KEY, chain text NOT NULL, seq bigint NOT NULL,
                time timestamptz NOT NULL, event text NOT NULL, username text, sid text, line bytea NOT NULL, UNIQUE (chain, seq))
                """, logger: logger)
            for index: PostgresQuery in [
                "CREATE INDEX IF NOT EXISTS teleport_audit_time ON teleport_audit (time, id)",
                "CREATE INDEX IF NOT EXISTS teleport_audit_event ON teleport_audit (event, time, id)",
                "CREATE INDEX IF NOT EXISTS teleport_audit_user ON teleport_audit (username, time, id) WHERE username IS NOT NULL",
                "CREATE INDEX IF NOT EXISTS teleport_audit_sid ON teleport_audit (sid, time, id) WHERE sid IS NOT NULL",
            ] {
                try await connection.query(index, logger: logger)
            }
            try await connection.query("COMMIT", logger: logger)
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw failed(error)
        }
        try await readHead()
    }

    /// Advisory lock key for creating the table (two auth servers starting together).
    static let schemaLock: Int64 = 0x7465_6C65_0003

    /// The open connection, or a new one.
    private func connected() async throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        let fresh = try await PostgresBackend.connect(settings: settings, tls: tls, logger: logger)
        connection = fresh
        return fresh
    }

    /// Converts `error` and drops the connection, so the next call opens a new one.
    private func failed(_ error: any Error) -> TeleportError {
        if let connection { Task { try? await connection.close() } }
        connection = nil
        return PostgresBackend.convert(error, settings)
    }

    private func readHead() async throws {
        let connection = try await connected()
        do {
            let rows = try await connection.query(
                "SELECT seq, line FROM teleport_audit WHERE chain = \(chain) ORDER BY seq DESC LIMIT 1", logger: logger)
            lastSeq = 0
            lastHash = ""
            for try await (seq, line) in rows.decode((Int64, ByteBuffer).self) {
                lastSeq = seq
                lastHash = AuditChain.storedHash(Data(line.readableBytesView)) ?? ""
            }
        } catch {
            throw failed(error)
        }
    }

    /// True while an emit runs; later ones wait in `waiters` (the actor is re-entered at every
    /// `await`, and two emits must not take the same `seq` or `prev_hash`).
    private var writing = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    private func startWriting() async {
        if !writing {
            writing = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func stopWriting() {
        if waiters.isEmpty {
            writing = false
        } else {
            waiters.removeFirst().resume()
        }
    }

    public func emit(_ event: AuditEvent) async throws {
        await startWriting()
        defer { stopWriting() }
        // One retry: a connection that broke since the last event, or a row another process wrote
        // for this chain (the head is read again).
        do {
            try await insert(event)
        } catch {
            logger.debug("writing an audit event to PostgreSQL failed; retrying once", metadata: ["error": "\(error)"])
            try await readHead()
            try await insert(event)
        }
    }

    private func insert(_ event: AuditEvent) async throws {
        var chained = event
        chained.fields["prev_hash"] = .string(lastHash)
        chained.fields["hash"] = nil
        let (line, hash) = try AuditChain.seal(chained.jsonLine())
        let seq = lastSeq + 1
        let connection = try await connected()
        do {
            try await connection.query(
                """
                INSERT INTO teleport_audit (chain, seq, time, event, username, sid, line)
                VALUES (\(chain), \(seq), \(event.time), \(event.event), \(event.fields["user"]?.stringValue),
                \(event.fields["sid"]?.stringValue), \(ByteBuffer(bytes: line)))
                """, logger: logger)
        } catch {
            throw failed(error)
        }
        lastSeq = seq
        lastHash = hash
    }

    public func events(from: Date, to: Date) async throws -> [AuditEvent] {
        try await events("SELECT line FROM teleport_audit WHERE time >= \(from) AND time <= \(to) ORDER BY time, id")
    }

    public func search(
        from: Date, to: Date, types: Set<String>, user: String?, sessionID: String?, limit: Int, offset: Int
    ) async throws -> (events: [AuditEvent], more: Bool) {
        let typeList = types.sorted()
        let events = try await events(
            """
            SELECT line FROM teleport_audit
            WHERE time >= \(from) AND time <= \(to)
            AND (cardinality(\(typeList)::text[]) = 0 OR event = ANY(\(typeList)::text[]))
            AND (\(user)::text IS NULL OR username = \(user)) AND (\(sessionID)::text IS NULL OR sid = \(sessionID))
            ORDER BY time, id LIMIT \(limit + 1) OFFSET \(offset)
            """)
        return (Array(events.prefix(limit)), events.count > limit)
    }

    /// The events of a query selecting `line`s, without the chain's fields.
    private func events(_ query: PostgresQuery) async throws -> [AuditEvent] {
        let connection = try await connected()
        var events: [AuditEvent] = []
        do {
            for try await line in try await connection.query(query, logger: logger).decode(ByteBuffer.self) {
                var event = try AuditEvent(jsonLine: Data(line.readableBytesView))
                event.fields["hash"] = nil
                event.fields["prev_hash"] = nil
                events.append(event)
            }
        } catch let error as TeleportError {
            throw error
        } catch {
            throw failed(error)
        }
        return events
    }

    public func chainHead() async throws -> AuditChain.Head? {
        lastSeq == 0 ? nil : AuditChain.Head(file: Self.checkpointName(chain), lines: Int(lastSeq), hash: lastHash)
    }

    /// The name a chain's checkpoints carry (`head.file`).
    public static func checkpointName(_ chain: String) -> String { "postgresql/\(chain)" }

    /// Checks every chain in the table (the rows whose time falls between `from` and `to` when given)
    /// and the checkpoints signed for each.
    public func verifyChain(from: Date?, to: Date?, checkpoints: [AuditChain.Checkpoint]) async throws -> AuditChain.Report {
        let connection = try await connected()
        var chains: [String: [(seq: Int64, line: Data)]] = [:]
        do {
            let rows = try await connection.query(
                """
                SELECT chain, seq, line FROM teleport_audit
                WHERE time >= \(from ?? Date(timeIntervalSince1970: 0)) AND time <= \(to ?? Date.distantFuture)
                ORDER BY chain, seq
                """, logger: logger)
            for try await (chain, seq, line) in rows.decode((String, Int64, ByteBuffer).self) {
                chains[chain, default: []].append((seq, Data(line.readableBytesView)))
            }
        } catch {
            throw failed(error)
        }
        // A chain that has checkpoints but no rows left was emptied.
        for checkpoint in checkpoints where checkpoint.head.file.hasPrefix("postgresql/") {
            let name = String(checkpoint.head.file.dropFirst("postgresql/".count))
            if chains[name] == nil && from == nil && to == nil { chains[name] = [] }
        }
        var total = AuditChain.Report(ok: true, files: 0, events: 0, checkpoints: 0, problem: nil)
        for (name, rows) in chains.sorted(by: { $0.key < $1.key }) {
            let report = AuditChain.verify(
                chain: Self.checkpointName(name), rows: rows, fromStart: from == nil, checkpoints: checkpoints)
            total.files += report.files
            total.events += report.events
            total.checkpoints += report.checkpoints
            if !report.ok {
                total.ok = false
                total.problem = report.problem
                return total
            }
        }
        return total
    }

    /// Closes the connection (the daemon's shutdown).
    public func close() async {
        if let connection { try? await connection.close() }
        connection = nil
    }
}
