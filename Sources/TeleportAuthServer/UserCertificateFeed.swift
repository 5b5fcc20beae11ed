import Foundation
import Logging
import TeleportAPI
import TeleportBackend
import TeleportCrypto

/// The registry of issued user certificates (certificate-bound keys; see docs/architecture.md):
/// every certificate the auth service issues is stored under `/usercerts/<key sha256 hex>` until it
/// expires, and this feed turns the backend's watch into a long-poll change feed for proxies and
/// nodes. Cursors are `<generation>:<sequence>`; the generation is new on every start, so a cursor
/// from another process (or from before a restart) gets a full snapshot.
actor UserCertificateFeed {
    static let prefix = Keys.key("usercerts") + "/"
    static let locksPrefix = Keys.key("locks") + "/"
    static let rolesPrefix = Keys.key("roles") + "/"
    static let authoritiesPrefix = "/authorities/"
    static let capacity = 10_000

    private let backend: any Backend
    private let logger: Logger
    private let generation = UUID().uuidString.prefix(8).lowercased()
    private var sequence = 0
    private var recent: [(sequence: Int, certificate: String?)] = []
    private var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
    private var watching: Task<Void, Never>?
    private var stopped = false

    init(backend: any Backend, logger: Logger) {
        self.backend = backend
        self.logger = logger
    }

    static func key(fingerprintHex: String) -> String { prefix + fingerprintHex }

    /// Starts following the backend (idempotent).
    func start() async throws {
        guard watching == nil else { return }
        let stream = try await backend.watch(prefix: Self.prefix)
        let locks = try await backend.watch(prefix: Self.locksPrefix)
        let roles = try await backend.watch(prefix: Self.rolesPrefix)
        // A CA rotation changes the user CA keys every reply carries: hosts learn them at once.
        let authorities = try await backend.watch(prefix: Self.authoritiesPrefix)
        watching = Task { [weak self] in
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await event in stream {
                        if case .reset = event {
                            await self?.resetFeed()
                            continue
                        }
                        guard case .put(let item) = event, let record = try? Self.decode(item.value) else { continue }
                        await self?.append(record)
                    }
                }
                group.addTask {
                    // The reply carries the current locks; a change only has to wake the waiters.
                    for await _ in locks { await self?.append(nil) }
                }
                group.addTask {
                    for await _ in roles { await self?.append(nil) }
                }
                group.addTask {
                    for await _ in authorities { await self?.append(nil) }
                }
            }
        }
    }

    /// The backend may have lost events (``BackendEvent/reset``): every cursor handed out so far gets
    /// a full snapshot next time, and waiting polls answer now.
    private func resetFeed() {
        logger.warning("the backend's watch was reset; certificate feed subscribers get a snapshot")
        sequence += 1
        recent.removeAll()
        let woken = waiters
        waiters.removeAll()
        for (_, waiter) in woken { waiter.resume() }
    }

    private func append(_ certificate: String?) {
        sequence += 1
        recent.append((sequence, certificate))
        if recent.count > Self.capacity { recent.removeFirst(recent.count - Self.capacity) }
        let woken = waiters
        waiters.removeAll()
        for (_, waiter) in woken { waiter.resume() }
    }

    /// The changes after `cursor`, waiting up to `wait` for some when there are none yet.
    func changes(after cursor: String?, wait: Duration) async throws -> (cursor: String, reset: Bool, certificates: [String]) {
        if let since = followable(cursor) {
            if since == sequence, wait > .zero, !stopped { await waitForChange(upTo: wait) }
            // A reset while this poll waited makes the cursor unfollowable: the snapshot below.
            if followable(cursor) != nil {
                let fresh = recent.filter { $0.sequence > since }.compactMap(\.certificate)
                return ("\(generation):\(sequence)", false, fresh)
            }
        }
        let at = sequence
        let items = try await backend.getRange(prefix: Self.prefix)
        return ("\(generation):\(at)", true, items.compactMap { try? Self.decode($0.value) })
    }

    /// How many long polls are waiting now (tests).
    var waitingPolls: Int { waiters.count }

    /// Answers every waiting long poll now and makes later ones answer without waiting.
    func stop() {
        stopped = true
        let woken = waiters
        waiters.removeAll()
        for (_, waiter) in woken { waiter.resume() }
    }

    /// The sequence number of `cursor` when the changes after it are all still in `recent`; nil
    /// when it is unknown, from another generation, or older than a reset or the buffer.
    private func followable(_ cursor: String?) -> Int? {
        guard let cursor, let since = parse(cursor), since <= sequence, since >= (recent.first?.sequence ?? sequence + 1) - 1
        else { return nil }
        return since
    }

    private func parse(_ cursor: String) -> Int? {
        let parts = cursor.split(separator: ":")
        guard parts.count == 2, parts[0] == generation else { return nil }
        return Int(parts[1])
    }

    private func waitForChange(upTo limit: Duration) async {
        let id = UUID()
        let timer = Task { [weak self] in
            try? await Task.sleep(for: limit)
            await self?.wake(id)
        }
        await withCheckedContinuation { continuation in
            waiters[id] = continuation
        }
        timer.cancel()
    }

    private func wake(_ id: UUID) {
        waiters.removeValue(forKey: id)?.resume()
    }

    struct Record: Codable {
        var certificate: String
    }

    static func decode(_ data: Data) throws -> String {
        try JSONDecoder().decode(Record.self, from: data).certificate
    }

    static func encode(_ certificate: String) throws -> Data {
        try JSONEncoder().encode(Record(certificate: certificate))
    }
}
