import Foundation
import TeleportAPI
import TeleportCrypto
import Testing
import X509

/// Cross-signatures during a host CA rotation: a host that trusts only the old CA accepts the new
/// CA when the old one cross-signed it, and nothing else (a stranger's CA, a cross-signature by a
/// stranger, one whose key does not match).
@Suite("TLS authority cross-signatures")
struct TLSAuthorityCrossSignTests {
    let clock = ManualClock()

    func authority(_ cluster: String = "rotate.example") throws -> TLSAuthority {
        try TLSAuthority.generate(clusterName: cluster, type: "host", clock: clock)
    }

    @Test func theOldCAVouchesForTheNewOne() throws {
        let old = try authority()
        let new = try authority()
        let cross = try old.crossSign(new.certificate)
        #expect(cross.publicKey == new.certificate.publicKey && cross.subject == new.certificate.subject)
        #expect(old.signed(cross))
        let vouched = TLSAuthority.vouched(
            candidates: [new.certificate, old.certificate], crossSigned: [cross], trusted: [old.certificate])
        #expect(vouched == [new.certificate, old.certificate])
    }

    @Test func strangersAreNotVouchedFor() throws {
        let old = try authority()
        let new = try authority()
        let stranger = try authority("evil.example")
        // No cross-signature at all; one by a stranger; one by the old CA of another key.
        let cases: [[Certificate]] = [
            [],
            [try stranger.crossSign(new.certificate)],
            [try old.crossSign(stranger.certificate)],
        ]
        for crossSigned in cases {
            let vouched = TLSAuthority.vouched(candidates: [new.certificate], crossSigned: crossSigned, trusted: [old.certificate])
            #expect(vouched.isEmpty)
        }
        // A stranger's certificate that copies the new CA's subject but has its own key.
        let forged = try TLSAuthority.vouched(
            candidates: [stranger.certificate], crossSigned: [try old.crossSign(new.certificate)], trusted: [old.certificate])
        #expect(forged.isEmpty)
    }
}
