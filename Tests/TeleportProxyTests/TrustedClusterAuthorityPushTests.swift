import Foundation
import TeleportAPI
@testable import TeleportProxy
import Testing

/// Trusted clusters (issue 20): when a root's proxy sends its CAs to the leaves (pure).
@Suite("trusted clusters: when the root's proxy sends its CAs to a leaf (pure)")
struct TrustedClusterAuthorityPushTests {
    @Test("a new tunnel, changed CAs and a minute without a send are due; a recent send of the same CAs is not")
    func due() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        let sent: [String: ClusterAuthorityPush.Sent] = [
            "same.example": .init(digest: "D1", at: now.addingTimeInterval(-5)),
            "stale.example": .init(digest: "D1", at: now.addingTimeInterval(-61)),
            "changed.example": .init(digest: "D0", at: now.addingTimeInterval(-1)),
        ]
        let connected: Set = ["same.example", "stale.example", "changed.example", "new.example"]
        #expect(ClusterAuthorityPush.due(connected: connected, digest: "D1", sent: sent, now: now) == ["changed.example", "new.example", "stale.example"])
        #expect(ClusterAuthorityPush.due(connected: [], digest: "D1", sent: sent, now: now).isEmpty)
    }

    @Test("the digest ignores order and changes with any key")
    func digest() {
        func ca(_ type: CertAuthority.CAType, _ ssh: [String]) -> CertAuthority {
            CertAuthority(type: type, clusterName: "root.example", activeKeys: .init(ssh: ssh.map { .init(publicKey: $0, privateKey: nil) }, tls: []))
        }
        let a = ClusterAuthorityPush.digest([ca(.user, ["k1", "k2"]), ca(.host, ["h1"])])
        #expect(a == ClusterAuthorityPush.digest([ca(.host, ["h1"]), ca(.user, ["k2", "k1"])]))
        #expect(a != ClusterAuthorityPush.digest([ca(.user, ["k1"]), ca(.host, ["h1"])]))
        #expect(a != ClusterAuthorityPush.digest([ca(.user, ["k1", "k2"]), ca(.host, ["h2"])]))
    }
}
