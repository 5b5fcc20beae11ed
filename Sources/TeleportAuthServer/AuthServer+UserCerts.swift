import Foundation
public import TeleportAPI
import TeleportBackend
import TeleportCrypto
import TeleportServices

extension AuthServer {
    /// How long an expired certificate stays in the registry: a host asked about it then refuses it
    /// as expired (the user learns to log in again) rather than as unknown to the cluster.
    static let expiredCertificateGrace: TimeInterval = 600

    /// Records an issued user certificate under its subject key until it expires (plus
    /// ``expiredCertificateGrace``), so that proxies
    /// and nodes can authorize the plain key (see ``UserCertificateFeed``). A key is bound to one
    /// user: a current certificate of another user for the same key is never replaced (the write
    /// is a create or a compare-and-swap, so two concurrent issues cannot both win).
    ///
    /// - Throws: ``TeleportError`` `accessDenied` when the key is bound to another user.
    func recordUserCertificate(_ certificate: SSHCertificate) async throws {
        let key = UserCertificateFeed.key(fingerprintHex: certificate.publicKey.fingerprintHex)
        let item = Item(
            key: key, value: try UserCertificateFeed.encode(certificate.authorizedKeyLine(comment: certificate.keyID)),
            expires: certificate.validBefore.addingTimeInterval(Self.expiredCertificateGrace))
        for _ in 0..<3 {
            // A fresh key (the usual case: tsh login makes one each time) takes one write.
            do {
                // Written together with the certificates issued meanwhile (one transaction).
                try await registryCreates.create(item)
                return
            } catch let error as TeleportError where error.code == .alreadyExists {}
            let existing: Item
            do {
                existing = try await stores.backend.get(key)
            } catch let error as TeleportError where error.code == .notFound {
                continue
            }
            try refuseIfBound(existing, to: certificate.keyID, key: certificate.publicKey)
            do {
                try await stores.backend.compareAndSwap(expected: existing, replacement: item)
                return
            } catch let error as TeleportError where error.code == .compareFailed || error.code == .notFound {
                continue
            }
        }
        throw TeleportError.connectionProblem("the certificate registry changed during three attempts to record a certificate; retry")
    }

    /// Refuses to certify `key` for `user` while a current certificate binds it to another user.
    func checkKeyBinding(_ key: SSHPublicKey, user: String) async throws {
        let existing: Item
        do {
            existing = try await stores.backend.get(UserCertificateFeed.key(fingerprintHex: key.fingerprintHex))
        } catch let error as TeleportError where error.code == .notFound {
            return
        }
        try refuseIfBound(existing, to: user, key: key)
    }

    private func refuseIfBound(_ existing: Item, to user: String, key: SSHPublicKey) throws {
        let now = clock.now()
        guard let line = try? UserCertificateFeed.decode(existing.value), let current = try? SSHCertificate(authorizedKeyLine: line) else {
            return
        }
        guard current.keyID == user || current.validBefore <= now || (existing.expires.map { $0 <= now } ?? false) else {
            throw TeleportError.accessDenied(
                "key \(key.fingerprintSHA256) already has a current certificate for another user: a key is certified for one user only; generate a new key (tsh login does)")
        }
    }

    /// The user CA's SSH public keys.
    func userCAKeyLines() async throws -> [String] {
        try await certAuthority(.user).trustedKeys.ssh.map(\.publicKey)
    }

    /// The locks in force (expired ones are left out even before the backend sweeps them).
    public func locks() async throws -> [Lock] {
        let now = clock.now()
        return try await stores.locks.list().filter { $0.metadata.expires.map { $0 > now } ?? true }
    }

    /// The change feed for hosts' caches (a new or removed lock or role is a change too).
    public func userCertificateChanges(after cursor: String?, wait: Duration) async throws -> AuthAPI.UserCertChanges {
        let changes = try await userCertificates.changes(after: cursor, wait: wait)
        return AuthAPI.UserCertChanges(
            cursor: changes.cursor, reset: changes.reset, certificates: changes.certificates, userCAKeys: try await userCAKeyLines(),
            locks: try await locks(), roles: try await stores.roles.list())
    }

    /// One current certificate by its subject key's SHA-256 (hex); `notFound` when none.
    public func userCertificate(fingerprintHex: String) async throws -> AuthAPI.UserCertLookup {
        guard fingerprintHex.count == 64, fingerprintHex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw TeleportError.badParameter("a key fingerprint is 64 lowercase hex digits")
        }
        let item = try await stores.backend.get(UserCertificateFeed.key(fingerprintHex: fingerprintHex))
        return AuthAPI.UserCertLookup(
            certificate: try UserCertificateFeed.decode(item.value), userCAKeys: try await userCAKeyLines(), locks: try await locks(),
            roles: try await stores.roles.list())
    }
}
