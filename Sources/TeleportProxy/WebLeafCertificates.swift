import Crypto
import Foundation
import Synchronization
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto

/// SSH certificates of web sessions' users for asking a leaf cluster what they may see (the leaf
/// checks the certificate against the root's user CA and maps its roles; a listing needs no key).
/// One per web session (by a hash of its ID), issued on the session's behalf (`POST
/// /v1/websessions/certs`, audited as `cert.create`) and used until a minute before it expires;
/// at most ``capacity`` are kept (expired ones, then the oldest, go first).
final class WebLeafCertificates: Sendable {
    static let capacity = 1024

    struct Entry: Sendable {
        var line: String
        var validBefore: Date
        var added: Date
    }

    private let entries = Mutex<[String: Entry]>([:])

    init() {}

    /// The certificate line for the session, issued when none is kept or it expires within a minute.
    func line(sessionID: String, user: String, auth: AuthClient, now: @Sendable () -> Date = { Date() }) async throws -> String {
        let key = SHA256.hash(data: Data(sessionID.utf8)).map { String(format: "%02x", $0) }.joined()
        if let kept = entries.withLock({ $0[key] }), kept.validBefore.timeIntervalSince(now()) > 60 { return kept.line }
        let sshKey = Curve25519.Signing.PrivateKey()
        let tlsKey = P256.Signing.PrivateKey()
        let issued = try await auth.actingFor(webSession: sessionID).webSessionCertificates(
            AuthAPI.SignUserRequest(
                user: user, sshPublicKey: SSHPublicKey.ed25519(sshKey.publicKey).authorizedKeyLine(), tlsPublicKeyPEM: tlsKey.publicKey.pemRepresentation,
                ttlSeconds: 0, keyProof: try LoginProof.sign(purpose: .webSession, user: user, sshKey: sshKey, tlsKey: tlsKey, now: now())))
        let certificate = try SSHCertificate(authorizedKeyLine: issued.sshCertificate)
        let line = certificate.authorizedKeyLine(comment: certificate.keyID)
        let entry = Entry(line: line, validBefore: certificate.validBefore, added: now())
        entries.withLock { entries in
            Self.insert(&entries, key: key, entry: entry, now: entry.added)
        }
        return line
    }

    /// Adds `entry`, first dropping expired entries and then the oldest while full (pure).
    static func insert(_ entries: inout [String: Entry], key: String, entry: Entry, now: Date, capacity: Int = capacity) {
        if entries[key] == nil, entries.count >= capacity {
            entries = entries.filter { $0.value.validBefore > now }
            while entries.count >= capacity, let oldest = entries.min(by: { $0.value.added < $1.value.added }) {
                entries[oldest.key] = nil
            }
        }
        entries[key] = entry
    }

    /// How many are kept (for tests).
    var count: Int { entries.withLock { $0.count } }
}
