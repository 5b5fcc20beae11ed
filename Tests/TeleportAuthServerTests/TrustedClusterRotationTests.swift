import Crypto
import Foundation
import TeleportAPI
@testable import TeleportAuthServer
import TeleportCrypto
import Testing

/// Trusted clusters (issue 20): a leaf follows its root's CA rotation, in process. The root's
/// proxies send the root's current CAs (`exchangeableAuthorities`) to the leaf, whose auth service
/// replaces what it held (`updateRootAuthorities`): during the rotation both keys are accepted,
/// once it completed only the new one; every change and refusal is audited.
@Suite("trusted clusters: the leaf follows the root's CA rotation (in process)")
struct TrustedClusterRotationTests {
    typealias Setup = TrustedClusterRootUserTests.Setup

    /// The root's current user CA signing key.
    static func signer(_ setup: Setup) async throws -> Curve25519.Signing.PrivateKey {
        let ca = try await setup.root.auth.certAuthority(.user)
        let pem = try #require(ca.spec.activeKeys.ssh.first?.privateKey)
        guard case .ed25519(let key) = try OpenSSHPrivateKey(pemRepresentation: pem).key else {
            throw TeleportError.internalError("the user CA has no Ed25519 key")
        }
        return key
    }

    /// The root's CAs as its proxy sends them.
    static func push(_ setup: Setup) async throws -> AuthAPI.RootAuthoritiesUpdated {
        try await setup.leaf.updateRootAuthorities(.init(cluster: "root.example", certAuthorities: try await setup.root.auth.exchangeableAuthorities()))
    }

    /// A root user's access to the leaf with a certificate of `signer`.
    static func admit(_ setup: Setup, _ signer: Curve25519.Signing.PrivateKey) async throws -> AuthAPI.RootUserAdmission {
        let cert = try TrustedClusterRootUserTests.certificate(
            "alice", roles: ["root-access"], logins: ["alice"], key: TrustedClusterRootUserTests.key(), signer: signer, clock: setup.root.clock)
        return try await setup.leaf.admitRootUser(.init(cluster: "root.example", certificate: cert.authorizedKeyLine(), record: false))
    }

    @Test("a user CA rotation on the root: both keys during it, only the new one after; the host CA follows too; audited")
    func followsRotation() async throws {
        let setup = try await TrustedClusterRootUserTests.open()
        let clock = setup.root.clock
        let old = try await Self.signer(setup)
        #expect(try await Self.push(setup).updated == [], "nothing new before a rotation")
        #expect(setup.audit.named("trusted_cluster.authorities.update").isEmpty)

        try await setup.root.auth.rotate(.user, .setPhase(.initialized, now: clock.now()), by: "admin")
        #expect(try await Self.push(setup).updated == ["user"])
        let held = try #require(try await setup.leaf.trustedAuthority(cluster: "root.example", type: .user))
        #expect(held.trustedKeys.ssh.count == 2, "the old and the new key")
        #expect(held.trustedKeys.ssh.allSatisfy { $0.privateKey == nil }, "public halves only")
        let event = try #require(setup.audit.named("trusted_cluster.authorities.update").last)
        #expect(event.code == "T7011I" && event.fields["cluster_name"] == "root.example" && event.fields["ca_types"] == .array(["user"]))

        try await setup.root.auth.rotate(.user, .setPhase(.updateClients, now: clock.now()), by: "admin")
        let new = try await Self.signer(setup)
        #expect(new.publicKey.rawRepresentation != old.publicKey.rawRepresentation, "the root signs with the new key")
        _ = try await Self.push(setup)
        #expect(try await Self.admit(setup, old).roles == ["access"])
        #expect(try await Self.admit(setup, new).roles == ["access"])

        // Without the update the completed rotation would not reach the leaf: the old key still works.
        try await setup.root.auth.rotate(.user, .setPhase(.updateServers, now: clock.now()), by: "admin")
        try await setup.root.auth.rotate(.user, .setPhase(.standby, now: clock.now()), by: "admin")
        #expect(try await Self.admit(setup, old).roles == ["access"])
        #expect(try await Self.push(setup).updated == ["user"])
        #expect(try await setup.leaf.trustedAuthority(cluster: "root.example", type: .user)?.trustedKeys.ssh.count == 1)
        // Now the old CA is refused (and audited), the new one admitted.
        await #expect(throws: TeleportError.self) { try await Self.admit(setup, old) }
        #expect(setup.audit.named("trusted_cluster.user.denied").last?.code == "T7010W")
        #expect(try await Self.admit(setup, new).roles == ["access"])

        // The host CA: the leaf holds what the root's proxies present after a rotation.
        try await setup.root.auth.rotate(.host, .setPhase(.initialized, now: clock.now()), by: "admin")
        #expect(try await Self.push(setup).updated == ["host"])
        #expect(try await setup.leaf.trustedAuthority(cluster: "root.example", type: .host)?.trustedKeys.tls.count == 2)
    }

    @Test("refused and audited: a cluster this leaf does not trust, CAs of another cluster, a missing CA, its own name")
    func refusals() async throws {
        let setup = try await TrustedClusterRootUserTests.open()
        let mine = try await setup.root.auth.exchangeableAuthorities()
        let cases: [(cluster: String, authorities: [CertAuthority], message: String)] = [
            ("other.example", mine, "trusts no root cluster"),
            ("leaf.example", try await setup.leaf.exchangeableAuthorities(), "trusts no root cluster"),
            ("root.example", try await setup.leaf.exchangeableAuthorities(), "belongs to cluster \"leaf.example\""),
            ("root.example", mine.filter { $0.spec.type == .user }, "exactly one host CA"),
        ]
        for item in cases {
            let error = await #expect(throws: TeleportError.self) {
                try await setup.leaf.updateRootAuthorities(.init(cluster: item.cluster, certAuthorities: item.authorities))
            }
            #expect(error?.message.contains(item.message) == true, "\(item.cluster): \(error?.message ?? "")")
        }
        let refused = setup.audit.named("trusted_cluster.authorities.update")
        #expect(refused.count == cases.count && refused.allSatisfy { $0.code == "T7011W" })
        // The root's CAs the leaf holds are unchanged.
        let held = try #require(try await setup.leaf.trustedAuthority(cluster: "root.example", type: .user))
        #expect(AuthServer.samePublicKeys(held, try #require(mine.first { $0.spec.type == .user })))
    }
}
