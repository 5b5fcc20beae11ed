import Crypto
import Foundation
import Logging
import Synchronization
import TeleportAPI
import TeleportCrypto
import TeleportSSH
import Testing

/// The node's and proxy's copy of the certificate registry: a key stays bound to the user it was
/// certified for while that certificate is current; a later feed entry for another user (an
/// incremental change or a snapshot) does not displace it.
@Suite("user certificate cache bindings")
struct UserCertificateCacheTests {
    let ca = Curve25519.Signing.PrivateKey()
    let clock = ManualClock()
    let key = Curve25519.Signing.PrivateKey()

    var caLine: String { SSHPublicKey.ed25519(ca.publicKey).authorizedKeyLine() }
    var subject: SSHPublicKey { .ed25519(key.publicKey) }

    func certificate(user: String, login: String, ttl: TimeInterval = 3600) throws -> String {
        try SSHCertificate.sign(
            publicKey: subject, type: .user, serial: UInt64.random(in: 1...UInt64.max), keyID: user, validPrincipals: [login],
            validAfter: clock.now().addingTimeInterval(-60), validBefore: clock.now().addingTimeInterval(ttl),
            extensions: SSHCertificate.standardUserExtensions, caKey: ca
        ).authorizedKeyLine(comment: user)
    }

    /// Runs a cache over `replies` (one per feed poll) and returns it once all were applied.
    func cache(feeding replies: [AuthAPI.UserCertChanges]) async throws -> (UserCertificateCache, Task<Void, Never>) {
        let queue = Mutex(replies)
        let (drained, signal) = AsyncStream<Void>.makeStream()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("usercerts-\(UUID().uuidString)/cache.json")
        let cache = UserCertificateCache(
            file: file, clock: clock,
            fetchChanges: { _, _ in
                if let next = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { return next }
                signal.yield()
                try await Task.sleep(for: .seconds(3600))
                throw CancellationError()
            },
            fetchOne: { _ in throw TeleportError.notFound("none") }, logger: Logger(label: "test"))
        let task = Task { await cache.run() }
        var iterator = drained.makeAsyncIterator()
        _ = await iterator.next()
        return (cache, task)
    }

    @Test("a later certificate for another user does not displace the owner's binding (incremental change)")
    func incremental() async throws {
        let alice = try certificate(user: "alice", login: "alice")
        let bob = try certificate(user: "bob", login: "bob")
        let (cache, task) = try await cache(feeding: [
            .init(cursor: "g:1", reset: true, certificates: [alice], userCAKeys: [caLine]),
            .init(cursor: "g:2", reset: false, certificates: [bob], userCAKeys: [caLine]),
        ])
        defer { task.cancel() }
        let user = try await cache.authorize(key: subject, login: "alice", clientAddress: nil)
        #expect(user.username == "alice")
        await #expect(throws: TeleportError.self) { _ = try await cache.authorize(key: subject, login: "bob", clientAddress: nil) }
    }

    @Test("a snapshot naming another user for the key keeps the owner's current binding")
    func snapshot() async throws {
        let alice = try certificate(user: "alice", login: "alice")
        let bob = try certificate(user: "bob", login: "bob")
        let (cache, task) = try await cache(feeding: [
            .init(cursor: "g:1", reset: true, certificates: [alice], userCAKeys: [caLine]),
            .init(cursor: "h:1", reset: true, certificates: [bob], userCAKeys: [caLine]),
        ])
        defer { task.cancel() }
        #expect(try await cache.authorize(key: subject, login: "alice", clientAddress: nil).username == "alice")
    }

    @Test("the same user's newer certificate for the key replaces the older one")
    func sameUser() async throws {
        let first = try certificate(user: "alice", login: "alice")
        let second = try certificate(user: "alice", login: "alice-admin")
        let (cache, task) = try await cache(feeding: [
            .init(cursor: "g:1", reset: true, certificates: [first], userCAKeys: [caLine]),
            .init(cursor: "g:2", reset: false, certificates: [second], userCAKeys: [caLine]),
        ])
        defer { task.cancel() }
        #expect(try await cache.authorize(key: subject, login: "alice-admin", clientAddress: nil).username == "alice")
    }
}
