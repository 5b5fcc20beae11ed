import Foundation
public import TeleportAPI
import TeleportBackend
import TeleportCrypto
import TeleportServices

extension AuthServer {
    /// Records an issued user certificate under its subject key until it expires, so that proxies
    /// and nodes can authorize the plain key (see ``UserCertificateFeed``).
    func recordUserCertificate(_ certificate: SSHCertificate) async throws {
        try await stores.backend.put(
            Item(
                key: UserCertificateFeed.key(fingerprintHex: certificate.publicKey.fingerprintHex),
                value: try UserCertificateFeed.encode(certificate.authorizedKeyLine(comment: certificate.keyID)),
                expires: certificate.validBefore))
    }

    /// The user CA's SSH public keys.
    func userCAKeyLines() async throws -> [String] {
        try await certAuthority(.user).spec.activeKeys.ssh.map(\.publicKey)
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
