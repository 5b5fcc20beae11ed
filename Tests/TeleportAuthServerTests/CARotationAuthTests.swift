import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftASN1
import Synchronization
import TeleportServices
import Logging
import TeleportAPI
@testable import TeleportAuthServer
import TeleportBackend
import TeleportCrypto
import Testing
import X509

/// CA rotation in the auth service (in process, manual clock): which keys sign and which are
/// trusted in each phase, the automatic schedule, rollback from every phase, the RBAC rule and the
/// audit of `POST /v1/certauthorities/rotate`, and agents' identity renewal.
@Suite("CA rotation in the auth service (in process)")
struct CARotationAuthTests {
    static func open() async throws -> (AuthServer, ManualClock, RecordedAudit) {
        let clock = ManualClock()
        let audit = RecordedAudit()
        let auth = try await AuthServer.open(
            backend: MemoryBackend(clock: clock), audit: audit, clock: clock, configuredName: "rotate.cluster", logger: Logger(label: "test"))
        return (auth, clock, audit)
    }

    static func issueHost(_ auth: AuthServer) async throws -> Certificate {
        let issued = try await auth.issueSystemIdentity(
            role: .node, hostID: "\(UUID().uuidString.lowercased()).\(auth.clusterName)", publicKey: P256.Signing.PrivateKey().publicKey)
        return try Certificate(pemEncoded: issued.certificatePEM)
    }

    @Test("host CA, manually: old signs in init, new from update_clients; both trusted until standby, then only the new")
    func signingAndTrustPerPhase() async throws {
        let (auth, clock, audit) = try await Self.open()
        let before = try await Self.issueHost(auth)
        let oldCA = try await auth.certAuthority(.host)

        try await auth.rotate(.host, .setPhase(.initialized, now: clock.now()), by: "admin")
        auth.forgetCachedAuthorities()
        let inInit = try await Self.issueHost(auth)
        #expect(try await auth.signedByTrusted(.host, before))
        let initCA = try await auth.certAuthority(.host)
        #expect(initCA.spec.activeKeys == oldCA.spec.activeKeys, "init: the old keys still sign")
        #expect(try Certificate(pemEncoded: oldCA.spec.activeKeys.tls[0].cert).publicKey.isValidSignature(inInit.signature, for: inInit))
        #expect(try await auth.trustedAuthorities(.host).count == 2)
        #expect(try await auth.hostCAPEMs().count == 2, "joiners see both during the rotation")

        try await auth.rotate(.host, .setPhase(.updateClients, now: clock.now()), by: "admin")
        let fresh = try await Self.issueHost(auth)
        let newCA = try await auth.certAuthority(.host)
        #expect(newCA.spec.activeKeys == initCA.spec.additionalTrustedKeys, "update_clients: the new keys sign")
        #expect(try Certificate(pemEncoded: newCA.spec.activeKeys.tls[0].cert).publicKey.isValidSignature(fresh.signature, for: fresh))
        #expect(try await auth.signedByTrusted(.host, before), "the old certificate is still trusted")
        #expect(try await auth.signedByTrusted(.host, fresh))

        try await auth.rotate(.host, .setPhase(.updateServers, now: clock.now()), by: "admin")
        #expect(try await auth.signedByTrusted(.host, before))
        try await auth.rotate(.host, .setPhase(.standby, now: clock.now()), by: "admin")
        #expect(try await !auth.signedByTrusted(.host, before), "standby: the old CA is no longer trusted")
        #expect(try await auth.signedByTrusted(.host, fresh))
        #expect(try await auth.hostCAPEMs() == newCA.spec.activeKeys.tls.map(\.cert))
        let done = try await auth.certAuthority(.host)
        #expect(done.spec.rotation?.lastRotated != nil)
        #expect(done.spec.retiredSSHPublicKeys == oldCA.spec.activeKeys.ssh.map(\.publicKey), "kept for audit checkpoints")
        // The pin now is the new CA's.
        let status = try await auth.status()
        #expect(status.caPin == (try CAPin.pin(of: try Certificate(pemEncoded: newCA.spec.activeKeys.tls[0].cert))))
        #expect(audit.named("cert.rotation").map { $0.fields["phase"] } == ["init", "update_clients", "update_servers", "standby"].map { .string($0) })
    }

    @Test("user CA: SSH user CA keys handed to hosts include the new key during the rotation and only it afterwards", arguments: [true, false])
    func userCAKeysFollowTheRotation(complete: Bool) async throws {
        let (auth, clock, _) = try await Self.open()
        let old = try await auth.certAuthority(.user).spec.activeKeys.ssh.map(\.publicKey)
        try await auth.rotate(.user, .setPhase(.initialized, now: clock.now()), by: "admin")
        let during = try await auth.userCertificateChanges(after: nil, wait: .zero).userCAKeys
        #expect(during.count == 2 && during.contains(old[0]))
        try await auth.rotate(.user, .setPhase(.updateClients, now: clock.now()), by: "admin")
        let new = try await auth.certAuthority(.user).spec.activeKeys.ssh.map(\.publicKey)
        #expect(new != old)
        if complete {
            try await auth.rotate(.user, .setPhase(.updateServers, now: clock.now()), by: "admin")
            try await auth.rotate(.user, .setPhase(.standby, now: clock.now()), by: "admin")
            #expect(try await auth.userCertificateChanges(after: nil, wait: .zero).userCAKeys == new)
        } else {
            try await auth.rotate(.user, .setPhase(.rollback, now: clock.now()), by: "admin")
            #expect(try await auth.certAuthority(.user).spec.activeKeys.ssh.map(\.publicKey) == old, "rollback: the old key signs")
            try await auth.rotate(.user, .setPhase(.standby, now: clock.now()), by: "admin")
            #expect(try await auth.userCertificateChanges(after: nil, wait: .zero).userCAKeys == old)
        }
    }

    @Test("rollback from each phase returns to the old keys, drops the new ones, and is not a rotation", arguments: [
        [CARotation.Phase.initialized], [.initialized, .updateClients], [.initialized, .updateClients, .updateServers],
    ])
    func rollbackFromEachPhase(path: [CARotation.Phase]) async throws {
        let (auth, clock, _) = try await Self.open()
        let old = try await auth.certAuthority(.host)
        let before = try await Self.issueHost(auth)
        for phase in path { try await auth.rotate(.host, .setPhase(phase, now: clock.now()), by: "admin") }
        try await auth.rotate(.host, .setPhase(.rollback, now: clock.now()), by: "admin")
        auth.forgetCachedAuthorities()
        let rolled = try await auth.certAuthority(.host)
        #expect(rolled.spec.activeKeys == old.spec.activeKeys)
        #expect(rolled.spec.additionalTrustedKeys != nil, "the new keys stay trusted while agents renew back")
        try await auth.rotate(.host, .setPhase(.standby, now: clock.now()), by: "admin")
        let after = try await auth.certAuthority(.host)
        #expect(after.trustedKeys == old.spec.activeKeys)
        #expect(after.spec.rotation?.lastRotated == nil)
        #expect(try await auth.signedByTrusted(.host, before))
    }

    @Test("automatic rotation: the service's ticks move the phases at a third of the grace period each")
    func automaticSchedule() async throws {
        let (auth, clock, _) = try await Self.open()
        try await auth.rotate(.host, .start(mode: .auto, gracePeriod: 30, now: clock.now()), by: "admin")
        func phase() async throws -> CARotation.Phase { try await auth.certAuthority(.host).rotationPhase }
        try await auth.tickRotations()
        #expect(try await phase() == .initialized)
        for (seconds, expected) in [(9.0, CARotation.Phase.initialized), (1, .updateClients), (10, .updateServers), (10, .standby)] {
            clock.advance(by: seconds)
            try await auth.tickRotations()
            #expect(try await phase() == expected, "after +\(seconds) s")
        }
        #expect(try await auth.certAuthority(.host).spec.additionalTrustedKeys == nil)
    }

    @Test("POST /v1/certauthorities/rotate: a user without the cert_authority update rule is refused and audited; with it, allowed")
    func rotateRouteNeedsTheRule() async throws {
        let (auth, clock, audit) = try await Self.open()
        _ = clock
        try await auth.stores.roles.create(Role(name: "viewer", spec: Role.Spec(allow: Role.Conditions(logins: ["guest"]))))
        try await auth.stores.roles.create(
            Role(name: "rotator", spec: Role.Spec(allow: Role.Conditions(rules: [Role.Rule(resources: ["cert_authority"], verbs: ["update"])]))))
        func user(_ role: String) async throws -> Certificate {
            try await auth.tlsAuthority(.user).issue(
                publicKey: P256.Signing.PrivateKey().publicKey,
                identity: X509Identity(username: "u-\(role)", roles: [role], logins: [], clusterName: auth.clusterName), validity: 3600,
                clock: clock)
        }
        let request = AuthAPI.RotateRequest(type: "host", mode: "auto", gracePeriodSeconds: 3600)
        let viewer = try await user("viewer")
        let app = { (cert: Certificate) in Application(router: AuthAPIServer.router(auth: auth, peerCertificates: .presenting(cert))) }
        try await app(viewer).test(.router) { client in
            let refused = try await client.send(.post, "/v1/certauthorities/rotate", json: request)
            #expect(refused.status == .forbidden)
            #expect(String(buffer: refused.body).contains("may not update cert_authority"))
        }
        #expect(try await auth.certAuthority(.host).rotationPhase == .standby)
        let failure = try #require(audit.named("cert.rotation").first)
        #expect(failure.code == "T9103W")
        #expect(failure.fields["user"] == "u-viewer")

        try await app(try await user("rotator")).test(.router) { client in
            let accepted = try await client.send(.post, "/v1/certauthorities/rotate", json: request)
            #expect(accepted.status == .ok, "\(String(buffer: accepted.body))")
            let again = try await client.send(.post, "/v1/certauthorities/rotate", json: request)
            #expect(again.status == .badRequest)
            #expect(String(buffer: again.body).contains("already in progress"))
        }
        #expect(try await auth.certAuthority(.host).rotationPhase == .initialized)
        #expect(audit.named("cert.rotation").contains { $0.code == "T9103I" && $0.fields["user"] == "u-rotator" })
    }

    @Test("an agent renews its identity from the new keys, keeping role, host and names; the old certificate stops being current")
    func agentRenewal() async throws {
        let (auth, clock, _) = try await Self.open()
        let uuid = UUID().uuidString.lowercased()
        let issued = try await auth.issueSystemIdentity(
            role: .node, hostID: "\(uuid).\(auth.clusterName)", publicKey: P256.Signing.PrivateKey().publicKey,
            serverNames: .init(dnsNames: ["luna"], ipAddresses: ["10.0.0.7"]))
        let old = try Certificate(pemEncoded: issued.certificatePEM)
        try await auth.rotate(.host, .setPhase(.initialized, now: clock.now()), by: "admin")
        try await auth.rotate(.host, .setPhase(.updateClients, now: clock.now()), by: "admin")
        let key = P256.Signing.PrivateKey()
        let renewed = try await auth.renewHostIdentity(presented: old, role: .node, publicKeyPEM: key.publicKey.pemRepresentation)
        let fresh = try Certificate(pemEncoded: renewed.certificatePEM)
        #expect(try X509Identity(certificate: fresh).username == "\(uuid).\(auth.clusterName)")
        #expect(try X509Identity(certificate: fresh).systemRole == .node)
        let names = TLSAuthority.ServerNames(of: fresh)
        #expect(names.dnsNames == ["luna"] && names.ipAddresses == ["10.0.0.7"])
        let active = try Certificate(pemEncoded: try await auth.certAuthority(.host).spec.activeKeys.tls[0].cert)
        #expect(active.publicKey.isValidSignature(fresh.signature, for: fresh))
        #expect(renewed.caPEMs.count == 3, "the user CA, and both key sets of the host CA")
        await #expect(throws: TeleportError.self) {
            try await auth.renewHostIdentity(presented: old, role: .admin, publicKeyPEM: key.publicKey.pemRepresentation)
        }
    }

    @Test("a rotation while the store is unavailable: the tick fails and changes nothing; once it answers, the due phase follows")
    func storeUnavailableDuringRotation() async throws {
        let clock = ManualClock()
        let backend = FlakyBackend(clock: clock)
        let auth = try await AuthServer.open(
            backend: backend, audit: NoAudit(), clock: clock, configuredName: "flaky-rotate.cluster", logger: Logger(label: "test"))
        try await auth.rotate(.user, .start(mode: .auto, gracePeriod: 30, now: clock.now()), by: "admin")
        clock.advance(by: 11)
        backend.failingPrefix.withLock { $0 = "/authorities/" }
        await #expect(throws: TeleportError.self) { try await auth.tickRotations() }
        backend.failingPrefix.withLock { $0 = nil }
        #expect(try await auth.certAuthority(.user).rotationPhase == .initialized)
        try await auth.tickRotations()
        #expect(try await auth.certAuthority(.user).rotationPhase == .updateClients)
    }

    @Test("a renewed host's previous certificate stays current a minute, then only the new one")
    func previousCertificateOverlap() async throws {
        let (auth, clock, _) = try await Self.open()
        let hostID = "\(UUID().uuidString.lowercased()).\(auth.clusterName)"
        let issued = try await auth.issueSystemIdentity(role: .node, hostID: hostID, publicKey: P256.Signing.PrivateKey().publicKey)
        let old = try Certificate(pemEncoded: issued.certificatePEM)
        let renewed = try await auth.renewHostIdentity(
            presented: old, role: .node, publicKeyPEM: P256.Signing.PrivateKey().publicKey.pemRepresentation)
        let fresh = try Certificate(pemEncoded: renewed.certificatePEM)
        #expect(try await auth.isCurrentHostIdentity(fresh, hostID: hostID, role: .node))
        #expect(try await auth.isCurrentHostIdentity(old, hostID: hostID, role: .node))
        clock.advance(by: AuthServer.renewalOverlap + 1)
        #expect(try await !auth.isCurrentHostIdentity(old, hostID: hostID, role: .node))
        #expect(try await auth.isCurrentHostIdentity(fresh, hostID: hostID, role: .node))
    }
}
