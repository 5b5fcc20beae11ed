public import Foundation
import Glibc
import Synchronization
public import Logging
public import NIOCore
public import TeleportAPI
public import TeleportCrypto

/// A proxy's or node's copy of the cluster's issued user certificates, keyed by subject key: the
/// certificate-bound key registry of docs/architecture.md. It follows the auth service's change
/// feed, keeps a copy on disk (so logins with already-issued certificates keep working while the
/// auth service is down or after a restart), and asks the auth service directly on a miss (a
/// certificate issued a moment ago may not have arrived through the feed yet).
///
/// As an ``SSHUserAuthorizer`` it checks the certificate it finds exactly as if the client had
/// presented it: trusted user CA, user type, principals, validity (injected clock), critical options.
public actor UserCertificateCache: SSHUserAuthorizer {
    /// Reads the feed after a cursor, waiting up to some seconds.
    public typealias FetchChanges = @Sendable (_ cursor: String?, _ wait: Int) async throws -> AuthAPI.UserCertChanges
    /// Looks one certificate up by key fingerprint (hex).
    public typealias FetchOne = @Sendable (_ fingerprintHex: String) async throws -> AuthAPI.UserCertLookup

    private let file: URL
    private let checker: SSHCertificateChecker
    private let clock: any WallClock
    private let fetchChanges: FetchChanges
    private let fetchOne: FetchOne
    private let logger: Logger
    private var certificates: [String: SSHCertificate] = [:]
    private var userCAs: [SSHPublicKey] = []
    private var cursor: String?
    private var dirty = false
    /// The cluster's locks in force, as of the last reply from the auth service.
    private var locks: [Lock] = []
    /// This host's names (UUID, node name), for locks that target a node.
    private let hostNames: [String]
    private var onLocksChanged: (@Sendable ([Lock]) -> Void)?
    /// The cluster's roles by name, as of the last reply from the auth service (read without
    /// waiting for the actor: session checks run on the event loops).
    private let roleTable = Mutex<[String: Role]>([:])

    /// Creates the cache, loading `file` if it exists.
    public init(
        file: URL, clock: any WallClock, hostNames: [String] = [], fetchChanges: @escaping FetchChanges, fetchOne: @escaping FetchOne,
        logger: Logger
    ) {
        self.file = file
        self.hostNames = hostNames
        self.clock = clock
        self.checker = SSHCertificateChecker(clock: clock)
        self.fetchChanges = fetchChanges
        self.fetchOne = fetchOne
        self.logger = logger
        if let data = try? Data(contentsOf: file), let stored = try? JSONDecoder().decode(Stored.self, from: data) {
            let now = clock.now()
            for line in stored.certificates {
                if let cert = try? SSHCertificate(authorizedKeyLine: line), cert.validBefore > now {
                    certificates[cert.publicKey.fingerprintHex] = cert
                }
            }
            userCAs = stored.userCAKeys.compactMap { try? SSHPublicKey(authorizedKeyLine: $0) }
            locks = stored.locks ?? []
            roleTable.withLock { $0 = Dictionary((stored.roles ?? []).map { ($0.name, $0) }) { $1 } }
        }
    }

    /// The roles of these names that exist now (a removed role grants nothing).
    public nonisolated func roles(named names: [String]) -> [Role] {
        let table = roleTable.withLock { $0 }
        return names.compactMap { table[$0] }
    }

    private func updateRoles(_ new: [Role]?) {
        guard let new else { return }
        let byName = Dictionary(new.map { ($0.name, $0) }) { $1 }
        let changed = roleTable.withLock { table in
            defer { table = byName }
            return table != byName
        }
        if changed { dirty = true }
    }

    /// Calls `handler` with the locks whenever they change (to end the sessions they stop).
    public func setLocksHandler(_ handler: @escaping @Sendable ([Lock]) -> Void) {
        onLocksChanged = handler
    }

    /// The lock that stops `user` logging in as `login` here now, if any.
    public func lock(user: String, login: String) -> Lock? {
        let now = clock.now()
        return locks.first { $0.applies(user: user, login: login, node: hostNames, at: now) }
    }

    /// The cluster's locks in force now (not expired), as of the last reply from the auth service.
    public func locksInForce() -> [Lock] {
        let now = clock.now()
        return locks.filter { lock in lock.metadata.expires.map { $0 > now } ?? true }
    }

    private func updateLocks(_ new: [Lock]?) {
        guard let new, new != locks else { return }
        locks = new
        dirty = true
        onLocksChanged?(new)
    }

    /// How many certificates are held.
    public var count: Int { certificates.count }

    /// Follows the feed until the task is cancelled.
    public func run() async {
        var delay: Duration = .milliseconds(250)
        while !Task.isCancelled {
            do {
                let changes = try await fetchChanges(cursor, cursor == nil ? 0 : 25)
                apply(changes)
                persistIfNeeded()
                delay = .milliseconds(250)
            } catch {
                if Task.isCancelled { return }
                logger.debug("user certificate feed: \(error); retrying")
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    private func apply(_ changes: AuthAPI.UserCertChanges) {
        let now = clock.now()
        // A snapshot replaces the table, but the bindings held now still decide who owns a key.
        let previous = certificates
        if changes.reset { certificates = certificates.filter { _ in false } }
        for line in changes.certificates {
            guard let cert = try? SSHCertificate(authorizedKeyLine: line), cert.validBefore > now else { continue }
            admit(cert, previous: previous, now: now)
        }
        certificates = certificates.filter { $0.value.validBefore > now }
        let cas = changes.userCAKeys.compactMap { try? SSHPublicKey(authorizedKeyLine: $0) }
        if !cas.isEmpty { userCAs = cas }
        cursor = changes.cursor
        dirty = true
        updateLocks(changes.locks)
        updateRoles(changes.roles)
    }

    /// Stores `cert` unless its key is bound, by a current certificate, to another user: a key
    /// belongs to the user it was first certified for until that certificate expires, so a later
    /// feed entry for another user never displaces the owner's binding (the auth service refuses
    /// to issue one; this is the node's own guard). A newer certificate of the same user replaces
    /// the older one.
    private func admit(_ cert: SSHCertificate, previous: [String: SSHCertificate], now: Date) {
        let fingerprint = cert.publicKey.fingerprintHex
        if let owner = certificates[fingerprint] ?? previous[fingerprint], owner.validBefore > now, owner.keyID != cert.keyID {
            logger.warning(
                "refusing a certificate that would rebind a key to another user",
                metadata: ["tp.key": "\(cert.publicKey.fingerprintSHA256)", "tp.user": "\(cert.keyID)", "tp.owner": "\(owner.keyID)"])
            certificates[fingerprint] = owner
            return
        }
        certificates[fingerprint] = cert
    }

    private func persistIfNeeded() {
        guard dirty else { return }
        dirty = false
        let stored = Stored(
            certificates: certificates.values.map { $0.authorizedKeyLine() }.sorted(),
            userCAKeys: userCAs.map { $0.authorizedKeyLine() }, locks: locks,
            roles: roleTable.withLock { $0 }.values.sorted { $0.name < $1.name })
        do {
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let temporary = file.appendingPathExtension("tmp")
            try JSONEncoder().encode(stored).write(to: temporary)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: temporary.path)
            guard rename(temporary.path, file.path) == 0 else {
                throw TeleportError.internalError("cannot rename \(temporary.path): errno \(errno)")
            }
        } catch {
            logger.warning("cannot save the user certificate cache: \(error)")
        }
    }

    /// Finds the certificate of `key` and checks it for `login` from `clientAddress`.
    public func authorize(key: SSHPublicKey, login: String, clientAddress: SocketAddress?) async throws -> SSHAuthenticatedUser {
        let fingerprint = key.fingerprintHex
        var certificate = certificates[fingerprint]
        if certificate == nil {
            do {
                let found = try await fetchOne(fingerprint)
                let cert = try SSHCertificate(authorizedKeyLine: found.certificate)
                let cas = found.userCAKeys.compactMap { try? SSHPublicKey(authorizedKeyLine: $0) }
                if !cas.isEmpty { userCAs = cas }
                updateLocks(found.locks)
                updateRoles(found.roles)
                certificates[fingerprint] = cert
                dirty = true
                persistIfNeeded()
                certificate = cert
            } catch let error as TeleportError where error.code == .notFound {
                throw TeleportError.accessDenied(
                    "key \(key.fingerprintSHA256) is not certified by this cluster: log in with tsh login to get a certificate")
            }
        }
        guard let certificate else { throw TeleportError.accessDenied("no certificate") }
        guard certificate.publicKey == key else {
            throw TeleportError.accessDenied("the certificate found for key \(key.fingerprintSHA256) certifies another key")
        }
        let checked = try checker.check(
            certificate, trustedCAs: userCAs, expectedType: .user, login: login, clientAddress: clientAddress?.ipAddress)
        if let lock = lock(user: certificate.keyID, login: login) { throw TeleportError.accessDenied(lock.refusal) }
        return SSHAuthenticatedUser(username: certificate.keyID, login: login, publicKey: key, certificate: certificate, checked: checked)
    }

    struct Stored: Codable {
        var certificates: [String]
        var userCAKeys: [String]
        var locks: [Lock]?
        var roles: [Role]?
    }
}
