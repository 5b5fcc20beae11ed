public import Foundation
public import Logging
import NIOCore
import NIOSSL
public import TeleportAPI
public import TeleportBackend
import Synchronization

/// How to reach etcd: `teleport.storage` with `type: etcd`.
public struct EtcdSettings: Sendable, Equatable {
    /// `https://host:port` (or `http://` with `insecure`) peers, tried in order.
    public var peers: [String]
    /// The etcd key every Teleport key is stored under (`/teleport/`).
    public var prefix: String
    public var tlsCertFile: String?
    public var tlsKeyFile: String?
    public var tlsCAFile: String?
    public var username: String?
    public var passwordFile: String?
    /// Accept any server certificate (self-signed etcd); not recommended.
    public var insecure: Bool
    /// The largest reply (and value) accepted; default 2 MiB.
    public var maxMessageBytes: Int

    public init(
        peers: [String], prefix: String = "/teleport/", tlsCertFile: String? = nil, tlsKeyFile: String? = nil,
        tlsCAFile: String? = nil, username: String? = nil, passwordFile: String? = nil, insecure: Bool = false,
        maxMessageBytes: Int = 2 * 1024 * 1024
    ) {
        self.peers = peers
        self.prefix = prefix
        self.tlsCertFile = tlsCertFile
        self.tlsKeyFile = tlsKeyFile
        self.tlsCAFile = tlsCAFile
        self.username = username
        self.passwordFile = passwordFile
        self.insecure = insecure
        self.maxMessageBytes = maxMessageBytes
    }
}

/// A ``Backend`` on etcd v3 through its JSON gateway (see docs/architecture.md, "The etcd backend").
///
/// Every key lives under `prefix`; revisions are etcd's `mod_revision`; conditional writes are
/// transactions comparing `mod_revision` (or `create_revision == 0`); expiries are leases (one per
/// write) plus the exact deadline stored beside the value, so reads hide expired items at once;
/// watches resume from the last revision seen and yield ``BackendEvent/reset`` when etcd has
/// compacted it away.
public final class EtcdBackend: Backend {
    private struct State {
        var closed = false
        var token: String?
        var nextWatch = 0
        var watches: [Int: Watch] = [:]
    }

    /// One watch: its task, stream, prefix, the next revision it will deliver, and the last revision
    /// this client wrote under its prefix (``close()`` lets it deliver that far first).
    private struct Watch {
        var task: Task<Void, Never>
        var continuation: AsyncStream<BackendEvent>.Continuation
        var prefix: String
        var progress: WatchProgress
        var written: Int64 = 0
    }

    /// The next revision a watch will deliver, shared by its task and ``close()``.
    private final class WatchProgress: Sendable {
        let next: Mutex<Int64>
        init(_ start: Int64) { next = Mutex(start) }
    }

    private let transport: EtcdTransport
    private let prefix: String
    private let clock: any WallClock
    private let logger: Logger
    private let credentials: (name: String, password: String)?
    /// Seconds a lease outlives the item's deadline (reads enforce the deadline itself; the lease only
    /// collects what nobody sweeps).
    private let leaseSlack: Int64
    private let state = Mutex(State())
    private static let conflictRetries = 1000

    private init(
        transport: EtcdTransport, prefix: String, clock: any WallClock, leaseSlack: Int64, credentials: (String, String)?,
        logger: Logger
    ) {
        self.transport = transport
        self.leaseSlack = leaseSlack
        self.prefix = prefix
        self.clock = clock
        self.credentials = credentials
        self.logger = logger
    }

    /// Checks `settings` (one-line errors: no peers, unreadable files), connects, and authenticates
    /// when a username is set. `leaseSlack` is how long etcd keeps an expired item before its lease
    /// removes it (tests with a manual clock make it long, so real time never races the test clock).
    public static func open(
        settings: EtcdSettings, clock: any WallClock = SystemClock(), leaseSlack: TimeInterval = 5, logger: Logger
    ) async throws -> EtcdBackend {
        let endpoints = try EtcdTransport.endpoints(settings.peers)
        guard !settings.prefix.isEmpty else {
            throw TeleportError.badParameter("teleport.storage.prefix is empty; set it, e.g. /teleport/")
        }
        guard settings.maxMessageBytes >= 64 * 1024 else {
            throw TeleportError.badParameter(
                "teleport.storage.etcd_max_client_msg_size_bytes \(settings.maxMessageBytes) is too small; use at least 65536")
        }
        var sslContext: NIOSSLContext?
        if endpoints.contains(where: \.tls) {
            sslContext = try makeTLS(settings)
        }
        var credentials: (String, String)?
        if let username = settings.username {
            guard let file = settings.passwordFile else {
                throw TeleportError.badParameter("teleport.storage.username is set without password_file; add the file holding etcd's password")
            }
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw TeleportError.badParameter("teleport.storage.password_file: cannot read \(file); check the path and its permissions")
            }
            credentials = (username, text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let transport = EtcdTransport(
            endpoints: endpoints, sslContext: sslContext, maxMessageBytes: settings.maxMessageBytes, timeout: .seconds(30))
        let backend = EtcdBackend(
            transport: transport, prefix: settings.prefix, clock: clock, leaseSlack: Int64(max(1, leaseSlack.rounded(.up))),
            credentials: credentials, logger: logger)
        try await backend.authenticate()
        // One read proves the peers answer and the credentials work before the daemon goes on.
        _ = try await backend.currentRevision()
        return backend
    }

    private static func makeTLS(_ settings: EtcdSettings) throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        func read(_ path: String, _ field: String) throws -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw TeleportError.badParameter("teleport.storage.\(field): cannot read \(path); check the path and its permissions")
            }
            return Array(data)
        }
        if settings.insecure {
            tls.certificateVerification = .none
        } else if let caFile = settings.tlsCAFile {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(try read(caFile, "tls_ca_file")))
            } catch let error as TeleportError {
                throw error
            } catch {
                throw TeleportError.badParameter("teleport.storage.tls_ca_file: \(caFile) holds no PEM certificate (\(error))")
            }
        }
        switch (settings.tlsCertFile, settings.tlsKeyFile) {
        case (let cert?, let key?):
            let certBytes = try read(cert, "tls_cert_file")
            let keyBytes = try read(key, "tls_key_file")
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(certBytes).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: keyBytes, format: .pem))
            } catch {
                throw TeleportError.badParameter("teleport.storage.tls_cert_file/tls_key_file: \(cert) or \(key) is not a PEM certificate/key (\(error))")
            }
        case (nil, nil): break
        default:
            throw TeleportError.badParameter("teleport.storage: set both tls_cert_file and tls_key_file, or neither")
        }
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw TeleportError.badParameter("teleport.storage: the etcd TLS settings cannot be loaded: \(error)")
        }
    }

    // MARK: Calls

    private func authenticate() async throws {
        guard let credentials else { return }
        let reply: EtcdWire.AuthenticateResponse = try await rawCall(
            "/v3/auth/authenticate", EtcdWire.AuthenticateRequest(name: credentials.name, password: credentials.password), token: nil)
        guard let token = reply.token else {
            throw TeleportError.accessDenied("etcd gave no token for user \(credentials.name); check username and password_file")
        }
        state.withLock { $0.token = token }
    }

    private func rawCall<Request: Encodable, Reply: Decodable>(_ path: String, _ request: Request, token: String?) async throws -> Reply {
        let body = try JSONEncoder().encode(request)
        let data = try await transport.call(path, body, token: token)
        do {
            return try JSONDecoder().decode(Reply.self, from: data)
        } catch {
            throw TeleportError.connectionProblem("etcd's reply to \(path) is not understood: \(error)")
        }
    }

    /// One gateway call with the session token; a token etcd no longer accepts is renewed once.
    private func call<Request: Encodable, Reply: Decodable>(_ path: String, _ request: Request) async throws -> Reply {
        let token = try state.withLock { state in
            if state.closed { throw TeleportError.connectionProblem("the etcd backend is closed") }
            return state.token
        }
        do {
            return try await rawCall(path, request, token: token)
        } catch let error as TeleportError where error.code == .accessDenied && credentials != nil {
            try await authenticate()
            return try await rawCall(path, request, token: state.withLock { $0.token })
        }
    }

    private func etcdKey(_ key: String) -> Data { Data((prefix + key).utf8) }

    private func teleportKey(_ data: Data) -> String {
        String(decoding: data, as: UTF8.self).dropFirstIfPrefix(prefix)
    }

    private func currentRevision() async throws -> Int64 {
        let reply: EtcdWire.RangeResponse = try await call(
            "/v3/kv/range", EtcdWire.RangeRequest(key: etcdKey(""), limit: .init(1), keys_only: true))
        return reply.header?.revision?.value ?? 0
    }

    private func decode(_ kv: EtcdWire.KeyValue) throws -> Item {
        let stored: EtcdWire.Stored
        do {
            stored = try JSONDecoder().decode(EtcdWire.Stored.self, from: kv.value ?? Data())
        } catch {
            throw TeleportError.internalError("the etcd value at \(prefix)\(teleportKey(kv.key)) is not a Teleport item: \(error)")
        }
        let key = teleportKey(kv.key)
        return Item(key: key, value: stored.v, expires: stored.e, revision: Self.revision(kv.mod_revision?.value ?? 0, key))
    }

    private func isLive(_ item: Item) -> Bool {
        guard let expires = item.expires else { return true }
        return expires > clock.now()
    }

    /// The stored item at `key` with its mod_revision, expired or not.
    private func raw(_ key: String) async throws -> (item: Item, modRevision: Int64)? {
        let reply: EtcdWire.RangeResponse = try await call("/v3/kv/range", EtcdWire.RangeRequest(key: etcdKey(key)))
        guard let kv = reply.kvs?.first else { return nil }
        return (try decode(kv), kv.mod_revision?.value ?? 0)
    }

    /// Runs a write that takes a lease again (with a new lease) when etcd says the lease is gone:
    /// one granted with the item's TTL (plus the slack) can run out before the write that uses it
    /// when this process stalls that long.
    private func retryingLostLease<T>(_ write: () async throws -> T) async throws -> T {
        for _ in 1..<3 {
            do {
                return try await write()
            } catch let error as TeleportError where error.message.contains("requested lease not found") {
                continue
            }
        }
        return try await write()
    }

    private func lease(for expires: Date?) async throws -> EtcdWire.Int64Text? {
        var unshared: [Int64: EtcdWire.Int64Text] = [:]
        return try await lease(for: expires, sharing: &unshared)
    }

    /// A lease for `expires`; `leases` (TTL in seconds → lease) lets the items of one batch that
    /// need the same TTL share one lease (a batch of heartbeats takes one grant, not one per node).
    private func lease(for expires: Date?, sharing leases: inout [Int64: EtcdWire.Int64Text]) async throws -> EtcdWire.Int64Text? {
        guard let expires else { return nil }
        let seconds = max(1, Int64(max(0, expires.timeIntervalSince(clock.now())).rounded(.up)) + leaseSlack)
        // An item computed a second or two after the batch's first (a slow grant in between) shares
        // that lease: its TTL is at most 2 s longer than needed, and the exact expiry travels with
        // the value, so reads hide the item in time all the same.
        if let shared = leases[seconds] ?? leases[seconds + 1] ?? leases[seconds + 2] { return shared }
        let reply: EtcdWire.LeaseGrantResponse = try await call("/v3/lease/grant", EtcdWire.LeaseGrantRequest(TTL: .init(seconds)))
        guard let id = reply.ID else {
            throw TeleportError.connectionProblem("etcd granted no lease: \(reply.error ?? "no ID in the reply")")
        }
        leases[seconds] = id
        return id
    }

    private func putRequest(_ item: Item) async throws -> EtcdWire.PutRequest {
        var unshared: [Int64: EtcdWire.Int64Text] = [:]
        return try await putRequest(item, sharing: &unshared)
    }

    private func putRequest(_ item: Item, sharing leases: inout [Int64: EtcdWire.Int64Text]) async throws -> EtcdWire.PutRequest {
        let value = try JSONEncoder().encode(EtcdWire.Stored(v: item.value, e: item.expires))
        if value.count > transport.maxMessageBytes {
            throw TeleportError.limitExceeded(
                "the value of \(item.key) (\(item.value.count) bytes) exceeds etcd_max_client_msg_size_bytes (\(transport.maxMessageBytes))")
        }
        return EtcdWire.PutRequest(key: etcdKey(item.key), value: value, lease: try await lease(for: item.expires, sharing: &leases))
    }

    /// Runs `operation` only if `key`'s mod_revision is still `modRevision` (0: the key is absent);
    /// returns the new revision, or nil when the comparison failed.
    private func conditional(_ key: String, modRevision: Int64, _ operation: EtcdWire.RequestOp) async throws -> Int64? {
        let compare =
            modRevision == 0
            ? EtcdWire.Compare(key: etcdKey(key), target: "CREATE", create_revision: .init(0))
            : EtcdWire.Compare(key: etcdKey(key), target: "MOD", mod_revision: .init(modRevision))
        let reply: EtcdWire.TxnResponse = try await call("/v3/kv/txn", EtcdWire.TxnRequest(compare: [compare], success: [operation]))
        guard reply.succeeded == true else { return nil }
        let revision = reply.header?.revision?.value ?? 0
        noteWrite(revision, startKey: key, endKey: nil)
        return revision
    }

    /// Records that this client wrote `revision` to `startKey` (or the range up to `endKey`).
    private func noteWrite(_ revision: Int64, startKey: String, endKey: String?) {
        state.withLock { state in
            for (id, watch) in state.watches {
                let touches =
                    if let endKey { startKey.hasPrefix(watch.prefix) || watch.prefix.hasPrefix(startKey) || (startKey..<endKey).contains(watch.prefix) } else { startKey.hasPrefix(watch.prefix) }
                if touches { state.watches[id]?.written = max(watch.written, revision) }
            }
        }
    }

    private func stamped(_ item: Item, _ revision: Int64) -> Item {
        var stored = item
        stored.revision = Self.revision(revision, item.key)
        return stored
    }

    /// An item's revision: etcd's `mod_revision`, then the key, since every key one transaction
    /// (``putBatch(_:)``) writes shares the mod_revision.
    package static func revision(_ modRevision: Int64, _ key: String) -> String { "\(modRevision):\(key)" }

    private func conflict(_ key: String) -> TeleportError {
        TeleportError.compareFailed("key \(key) kept changing under concurrent writers; try again")
    }

    // MARK: Backend

    public func get(_ key: String) async throws -> Item {
        // Not `guard let (item, _) = try await raw(key)`: Swift 6.3's optimizer turns that binding of
        // an optional tuple from an awaited call into an empty item (release builds only; every
        // read of the etcd backend failed at start). Bind the tuple, then take its member.
        guard let found = try await raw(key), isLive(found.item) else {
            throw TeleportError.notFound("key \(key) is not found")
        }
        return found.item
    }

    @discardableResult public func put(_ item: Item) async throws -> Item {
        try await retryingLostLease {
            let reply: EtcdWire.PutResponse = try await call("/v3/kv/put", try await putRequest(item))
            let revision = reply.header?.revision?.value ?? 0
            noteWrite(revision, startKey: item.key, endKey: nil)
            return stamped(item, revision)
        }
    }

    public func putBatch(_ items: [Item]) async throws {
        try await retryingLostLease {
            guard !items.isEmpty else { return }
            var operations: [EtcdWire.RequestOp] = []
            var leases: [Int64: EtcdWire.Int64Text] = [:]
            for item in items { operations.append(EtcdWire.RequestOp(request_put: try await putRequest(item, sharing: &leases))) }
            let reply: EtcdWire.TxnResponse = try await call("/v3/kv/txn", EtcdWire.TxnRequest(compare: [], success: operations))
            for item in items { noteWrite(reply.header?.revision?.value ?? 0, startKey: item.key, endKey: nil) }
        }
    }

    @discardableResult public func create(_ item: Item) async throws -> Item {
        try await retryingLostLease {
            for _ in 0..<Self.conflictRetries {
                let existing = try await raw(item.key)
                if let existing, isLive(existing.item) {
                    throw TeleportError.alreadyExists("key \(item.key) already exists")
                }
                let operation = EtcdWire.RequestOp(request_put: try await putRequest(item))
                if let revision = try await conditional(item.key, modRevision: existing?.modRevision ?? 0, operation) {
                    return stamped(item, revision)
                }
            }
            throw conflict(item.key)
        }
    }

    /// Reads every key, then one txn comparing each key's revision as read (create_revision 0 for
    /// an absent key) and putting every item; a lost race re-reads and tries again.
    public func createBatch(_ items: [Item]) async throws {
        try Self.checkUniqueKeys(items)
        guard !items.isEmpty else { return }
        try await retryingLostLease {
            for _ in 0..<Self.conflictRetries {
                var compares: [EtcdWire.Compare] = []
                for item in items {
                    let existing = try await raw(item.key)
                    if let existing, isLive(existing.item) {
                        throw TeleportError.alreadyExists("key \(item.key) already exists")
                    }
                    let modRevision = existing?.modRevision ?? 0
                    compares.append(
                        modRevision == 0
                            ? EtcdWire.Compare(key: etcdKey(item.key), target: "CREATE", create_revision: .init(0))
                            : EtcdWire.Compare(key: etcdKey(item.key), target: "MOD", mod_revision: .init(modRevision)))
                }
                var operations: [EtcdWire.RequestOp] = []
                var leases: [Int64: EtcdWire.Int64Text] = [:]
                for item in items { operations.append(EtcdWire.RequestOp(request_put: try await putRequest(item, sharing: &leases))) }
                let reply: EtcdWire.TxnResponse = try await call("/v3/kv/txn", EtcdWire.TxnRequest(compare: compares, success: operations))
                guard reply.succeeded == true else { continue }
                for item in items { noteWrite(reply.header?.revision?.value ?? 0, startKey: item.key, endKey: nil) }
                return
            }
            throw conflict(items[0].key)
        }
    }

    @discardableResult public func update(_ item: Item) async throws -> Item {
        try await retryingLostLease {
            for _ in 0..<Self.conflictRetries {
                guard let existing = try await raw(item.key), isLive(existing.item) else {
                    throw TeleportError.notFound("key \(item.key) is not found")
                }
                let operation = EtcdWire.RequestOp(request_put: try await putRequest(item))
                if let revision = try await conditional(item.key, modRevision: existing.modRevision, operation) {
                    return stamped(item, revision)
                }
            }
            throw conflict(item.key)
        }
    }

    @discardableResult public func compareAndSwap(expected: Item, replacement: Item) async throws -> Item {
        try await retryingLostLease {
            guard expected.key == replacement.key else {
                throw TeleportError.badParameter("compare-and-swap needs one key, got \(expected.key) and \(replacement.key)")
            }
            for _ in 0..<Self.conflictRetries {
                guard let existing = try await raw(expected.key), isLive(existing.item) else {
                    throw TeleportError.notFound("key \(expected.key) is not found")
                }
                guard existing.item.value == expected.value else {
                    throw TeleportError.compareFailed("key \(expected.key) has changed since it was read")
                }
                let operation = EtcdWire.RequestOp(request_put: try await putRequest(replacement))
                if let revision = try await conditional(expected.key, modRevision: existing.modRevision, operation) {
                    return stamped(replacement, revision)
                }
            }
            throw conflict(expected.key)
        }
    }

    public func delete(_ key: String) async throws {
        for _ in 0..<Self.conflictRetries {
            guard let existing = try await raw(key), isLive(existing.item) else {
                throw TeleportError.notFound("key \(key) is not found")
            }
            let operation = EtcdWire.RequestOp(request_delete_range: EtcdWire.DeleteRangeRequest(key: etcdKey(key)))
            if try await conditional(key, modRevision: existing.modRevision, operation) != nil { return }
        }
        throw conflict(key)
    }

    /// Every stored item in `[startKey, endKey)`, expired or not, a page at a time.
    private func scan(startKey: String, endKey: String, _ body: (Item, Int64) async throws -> Bool) async throws {
        let end = etcdKey(endKey)
        var next = etcdKey(startKey)
        while true {
            let reply: EtcdWire.RangeResponse = try await call(
                "/v3/kv/range", EtcdWire.RangeRequest(key: next, range_end: end, limit: .init(500)))
            let kvs = reply.kvs ?? []
            for kv in kvs {
                guard try await body(try decode(kv), kv.mod_revision?.value ?? 0) else { return }
            }
            guard reply.more == true, let last = kvs.last else { return }
            next = last.key + [0]
        }
    }

    public func getRange(startKey: String, endKey: String, limit: Int) async throws -> [Item] {
        var items: [Item] = []
        try await scan(startKey: startKey, endKey: endKey) { item, _ in
            if isLive(item) { items.append(item) }
            return limit <= 0 || items.count < limit
        }
        return items
    }

    public func deleteRange(startKey: String, endKey: String) async throws {
        let reply: EtcdWire.PutResponse = try await call(
            "/v3/kv/deleterange", EtcdWire.DeleteRangeRequest(key: etcdKey(startKey), range_end: etcdKey(endKey)))
        noteWrite(reply.header?.revision?.value ?? 0, startKey: startKey, endKey: endKey)
    }

    public func keepAlive(_ key: String, expires: Date) async throws {
        try await retryingLostLease {
            for _ in 0..<Self.conflictRetries {
                guard let existing = try await raw(key), isLive(existing.item) else {
                    throw TeleportError.notFound("key \(key) is not found")
                }
                var renewed = existing.item
                renewed.expires = expires
                let operation = EtcdWire.RequestOp(request_put: try await putRequest(renewed))
                if try await conditional(key, modRevision: existing.modRevision, operation) != nil { return }
            }
            throw conflict(key)
        }
    }

    @discardableResult public func sweepExpired() async throws -> Int {
        var expired: [(String, Int64)] = []
        try await scan(startKey: "", endKey: Keys.rangeEnd("")) { item, modRevision in
            if !isLive(item) { expired.append((item.key, modRevision)) }
            return true
        }
        var count = 0
        for (key, modRevision) in expired {
            let operation = EtcdWire.RequestOp(request_delete_range: EtcdWire.DeleteRangeRequest(key: etcdKey(key)))
            if try await conditional(key, modRevision: modRevision, operation) != nil { count += 1 }
        }
        return count
    }

    // MARK: Watches

    public func watch(prefix watchPrefix: String) async throws -> AsyncStream<BackendEvent> {
        try await watch(prefix: watchPrefix, fromRevision: try await currentRevision() + 1)
    }

    /// Compacts etcd's history up to `revision` (tests: a watcher resuming from before it gets a reset).
    package func compact(revision: Int64) async throws {
        let _: EtcdWire.PutResponse = try await call("/v3/kv/compaction", EtcdWire.CompactionRequest(revision: .init(revision), physical: true))
    }

    /// A watch from etcd revision `start` (the public one starts at the next revision).
    package func watch(prefix watchPrefix: String, fromRevision start: Int64) async throws -> AsyncStream<BackendEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: BackendEvent.self)
        let (ready, readySignal) = AsyncStream.makeStream(of: TeleportError?.self)
        let id = try state.withLock { state in
            if state.closed { throw TeleportError.connectionProblem("the etcd backend is closed") }
            state.nextWatch += 1
            return state.nextWatch
        }
        let progress = WatchProgress(start)
        let task = Task { [self] in
            await self.runWatch(prefix: watchPrefix, progress: progress, continuation: continuation, ready: readySignal)
        }
        state.withLock { $0.watches[id] = Watch(task: task, continuation: continuation, prefix: watchPrefix, progress: progress) }
        continuation.onTermination = { [weak self] _ in
            task.cancel()
            self?.state.withLock { _ = $0.watches.removeValue(forKey: id) }
        }
        for await outcome in ready {
            if let outcome {
                task.cancel()
                throw outcome
            }
            break
        }
        return stream
    }

    /// Follows one watch until cancelled: reconnects from the last revision seen when the stream
    /// breaks, and yields `.reset` (then follows from now) when etcd has compacted that revision.
    private func runWatch(
        prefix watchPrefix: String, progress: WatchProgress, continuation: AsyncStream<BackendEvent>.Continuation,
        ready: AsyncStream<TeleportError?>.Continuation
    ) async {
        let created = Mutex(false)
        let key = etcdKey(watchPrefix)
        let end = Data(Keys.rangeEnd(prefix + watchPrefix).utf8)
        let failures = Mutex(0)
        while !Task.isCancelled {
            let from = progress.next.withLock { $0 }
            do {
                let body = try JSONEncoder().encode(
                    EtcdWire.WatchRequest(create_request: .init(key: key, range_end: end, start_revision: .init(from))))
                let token = state.withLock { $0.token }
                try await transport.stream("/v3/watch", body, token: token) { [self] line in
                    let message: EtcdWire.WatchMessage
                    do {
                        message = try JSONDecoder().decode(EtcdWire.WatchMessage.self, from: line)
                    } catch {
                        throw TeleportError.connectionProblem("etcd sent a watch message that is not understood: \(error)")
                    }
                    if let error = message.error {
                        throw TeleportError.connectionProblem("etcd ended the watch: \(error.message ?? "no reason given")")
                    }
                    guard let result = message.result else { return }
                    if result.created == true {
                        failures.withLock { $0 = 0 }
                        if !created.withLock({ $0 }) {
                            created.withLock { $0 = true }
                            ready.yield(nil)
                            ready.finish()
                        }
                    }
                    if let compacted = result.compact_revision?.value, compacted > 0 {
                        // The revisions we would resume from are gone: say so, then follow from now.
                        self.logger.warning("etcd compacted the watched revisions; resetting watchers", metadata: ["compacted": "\(compacted)"])
                        continuation.yield(.reset)
                        progress.next.withLock { $0 = (result.header?.revision?.value ?? compacted) + 1 }
                        throw CancellationError()
                    }
                    if result.canceled == true {
                        throw TeleportError.connectionProblem("etcd cancelled the watch: \(result.cancel_reason ?? "no reason given")")
                    }
                    for event in result.events ?? [] {
                        guard let kv = event.kv else { continue }
                        if event.type == "DELETE" {
                            continuation.yield(.delete(key: self.teleportKey(kv.key)))
                        } else {
                            continuation.yield(.put(try self.decode(kv)))
                        }
                        if let revision = kv.mod_revision?.value { progress.next.withLock { $0 = revision + 1 } }
                    }
                }
            } catch is CancellationError {
                continue
            } catch {
                if Task.isCancelled { break }
                if !created.withLock({ $0 }) {
                    ready.yield(error as? TeleportError ?? TeleportError.connectionProblem("the etcd watch failed: \(error)"))
                    ready.finish()
                    continuation.finish()
                    return
                }
                failures.withLock { $0 += 1 }
                logger.warning("the etcd watch broke; reconnecting", metadata: ["error": "\(error)"])
            }
            if Task.isCancelled { break }
            // Back off a little per consecutive failure (at most 2 s) before reconnecting.
            try? await Task.sleep(for: .milliseconds(min(2000, 100 * max(1, failures.withLock { $0 }))))
        }
        continuation.finish()
    }

    /// Ends every watch: each first delivers what this client wrote under its prefix (for at most
    /// five seconds), so a write acknowledged before `close` is not lost to its own watchers.
    /// Connections the transport has opened for unary calls (kept alive and reused).
    package var connectionsOpened: Int { transport.pool.opened.load(ordering: .relaxed) }

    public func close() async throws {
        defer { transport.pool.closeAll() }
        let watches = state.withLock { state in
            state.closed = true
            let watches = Array(state.watches.values)
            state.watches.removeAll()
            return watches
        }
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        for watch in watches {
            while watch.progress.next.withLock({ $0 }) <= watch.written, ContinuousClock.now < deadline, !watch.task.isCancelled {
                try? await Task.sleep(for: .milliseconds(10))
            }
            watch.task.cancel()
            watch.continuation.finish()
        }
    }
}

extension String {
    fileprivate func dropFirstIfPrefix(_ prefix: String) -> String {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self
    }
}
