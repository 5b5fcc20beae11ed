import Foundation
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import TeleportTestSupport
import Testing

/// tctl reads the local admin identity while a CA rotation may be renaming a new key and then a
/// new certificate into place: a pair that does not match is read again until it does.
@Suite("Client identity: key and certificate read as a pair")
struct ClientIdentityPairTests {
    @Test func mismatchedPairIsReadAgainUntilItMatches() async throws {
        let clock = SystemClock()
        let old = try TLSAuthority.generate(clusterName: "pair.example", type: "host", clock: clock)
        let new = try TLSAuthority.generate(clusterName: "pair.example", type: "host", clock: clock)
        let oldCertificate = try old.certificatePEM
        let newCertificate = try new.certificatePEM
        #expect(ClientIdentity(keyPEM: new.keyPEM, certificatePEM: newCertificate, trustedCAPEMs: []).keyMatchesCertificate)
        #expect(!ClientIdentity(keyPEM: new.keyPEM, certificatePEM: oldCertificate, trustedCAPEMs: []).keyMatchesCertificate)

        let dir = try TestSupport.makeTemporaryDirectory(prefix: "pair")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Halfway through a renewal: the new key, the old certificate.
        try ClientIdentity(keyPEM: new.keyPEM, certificatePEM: oldCertificate, trustedCAPEMs: [oldCertificate]).save(directory: dir, name: "admin")
        // The renewal finishes while the reader waits.
        let finisher = Task.detached {
            try await Task.sleep(for: .milliseconds(150))
            try SecureFile.write(Data(newCertificate.utf8), to: dir.appendingPathComponent("admin.crt"))
        }
        let loaded = try ClientIdentity.loadPair(directory: dir, name: "admin", attempts: 200, pause: 0.01)
        try await finisher.value
        #expect(loaded.keyMatchesCertificate && loaded.certificatePEM == newCertificate)
        // A pair that never matches is returned after the attempts (the TLS set-up names it).
        try ClientIdentity(keyPEM: new.keyPEM, certificatePEM: oldCertificate, trustedCAPEMs: [oldCertificate]).save(directory: dir, name: "bad")
        #expect(!(try ClientIdentity.loadPair(directory: dir, name: "bad", attempts: 3, pause: 0.001)).keyMatchesCertificate)
    }
}
