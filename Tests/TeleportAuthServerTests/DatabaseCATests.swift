import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SwiftASN1
import Synchronization
import TeleportAPI
import TeleportAuthServer
import TeleportBackend
import TeleportCrypto
import TeleportEvents
import Testing
import X509

/// Keeps every audit event, for assertions.
final class RecordedAudit: AuditEmitter {
    let events = Mutex<[AuditEvent]>([])
    func emit(_ event: AuditEvent) async throws { events.withLock { $0.append(event) } }
    func named(_ name: String) -> [AuditEvent] { events.withLock { $0.filter { $0.event == name } } }
}

/// The database CA (issue 16): created once, added to an existing cluster on start, never trusted
/// by the cluster's own mutual TLS; `POST /v1/certs/db` for the administrator only, with proof of
/// possession, audited.
@Suite("database CA and POST /v1/certs/db (in process)")
struct DatabaseCATests {
    static func open(_ backend: MemoryBackend, _ clock: ManualClock, _ audit: RecordedAudit) async throws -> AuthServer {
        try await AuthServer.open(
            backend: backend, audit: audit, clock: clock, configuredName: "db.cluster", logger: Logger(label: "test"))
    }

    static func signRequest(
        usage: AuthAPI.SignDatabaseRequest.Usage, hosts: [String] = [], user: String? = nil, key: P256.Signing.PrivateKey,
        proofKey: P256.Signing.PrivateKey? = nil, proofUser: String? = nil, now: Date
    ) throws -> AuthAPI.SignDatabaseRequest {
        AuthAPI.SignDatabaseRequest(
            usage: usage, hosts: hosts, user: user, publicKeyPEM: key.publicKey.pemRepresentation, ttlSeconds: 2190 * 3600,
            keyProof: try DatabaseCertProof.sign(usage: usage, hosts: hosts, user: proofUser ?? user, key: proofKey ?? key, now: now))
    }

    @Test("the db CA is X.509 only, created once at first start, and created on the start of a cluster that lacks it")
    func createdOnceAndOnUpgrade() async throws {
        let clock = ManualClock()
        let backend = MemoryBackend(clock: clock)
        let audit = RecordedAudit()
        let first = try await Self.open(backend, clock, audit)
        let db = try await first.certAuthority(.db)
        #expect(db.spec.activeKeys.ssh.isEmpty)
        #expect(db.spec.activeKeys.tls.count == 1)
        #expect(db.spec.activeKeys.tls.first?.key != nil)
        let userCA = try await first.certAuthority(.user)
        #expect(audit.named("cert_authority.create").compactMap { $0.fields["cert_type"] } == ["user", "host", "db", "jwt"])

        // A second start keeps it.
        let again = try await Self.open(backend, clock, audit)
        #expect(try await again.certAuthority(.db) == db)
        #expect(audit.named("cert_authority.create").count == 4)

        // A cluster from before the db CA (its backend has no /authorities/db): the start adds it
        // and leaves the other CAs alone.
        try await backend.delete("/authorities/db")
        await #expect(throws: TeleportError.self) { try await again.certAuthority(.db) }
        let upgraded = try await Self.open(backend, clock, audit)
        let added = try await upgraded.certAuthority(.db)
        #expect(added.spec.activeKeys.tls.first?.cert != db.spec.activeKeys.tls.first?.cert)
        #expect(try await upgraded.certAuthority(.user) == userCA)
        #expect(audit.named("cert_authority.create").last?.fields["cert_type"] == "db")
    }

    @Test("a certificate signed by the db CA does not authenticate to the auth API, even with the Admin identity")
    func dbCANotTrustedByClusterTLS() async throws {
        let cluster = try await InProcessAuth.open(name: "db.cluster")
        let dbCA = try await cluster.auth.tlsAuthority(.db)
        let forged = try dbCA.issue(
            publicKey: P256.Signing.PrivateKey().publicKey,
            identity: X509Identity(username: "admin", roles: [SystemRole.admin.rawValue], clusterName: cluster.auth.clusterName),
            validity: 3600, clock: cluster.clock)
        try await cluster.routes(presenting: forged) { client in
            let ping = try await client.execute(uri: "/v1/ping", method: .get)
            #expect(ping.status == .unauthorized || ping.status == .forbidden, "\(ping.status)")
            let status = try await client.execute(uri: "/v1/status", method: .get)
            #expect(status.status == .unauthorized || status.status == .forbidden, "\(status.status)")
        }
        // The same identity from the host CA works (the refusal is the CA's, not the identity's).
        try await cluster.routes(presenting: try await cluster.host(.admin, uuid: "admin")) { client in
            let ping = try await client.execute(uri: "/v1/ping", method: .get)
            #expect(ping.status == .ok)
        }
        // The TLS roots and the CA list handed out with identities leave the db CA out.
        let dbCert = try Certificate(pemEncoded: try #require(try await cluster.auth.certAuthority(.db).spec.activeKeys.tls.first?.cert))
        let trusted = try await cluster.auth.trustedTLSCertificates()
        #expect(trusted.count == 2)
        #expect(!trusted.contains(dbCert))
        let issued = try await cluster.auth.issueSystemIdentity(
            role: .node, hostID: "\(UUID().uuidString.lowercased()).db.cluster", publicKey: P256.Signing.PrivateKey().publicKey)
        let handedOut = try issued.caPEMs.map { try Certificate(pemEncoded: $0) }
        #expect(handedOut.count == 2)
        #expect(!handedOut.contains(dbCert))
    }

    @Test("the administrator gets a server certificate (CN and SANs from the hosts) and a client certificate (CN = db user); both audited")
    func adminSignsServerAndClient() async throws {
        let clock = ManualClock()
        let audit = RecordedAudit()
        let auth = try await Self.open(MemoryBackend(clock: clock), clock, audit)
        let cluster = InProcessAuth(auth: auth, clock: clock)
        let dbCA = try await auth.tlsAuthority(.db)
        let serverKey = P256.Signing.PrivateKey()
        let clientKey = P256.Signing.PrivateKey()
        try await cluster.routes(presenting: try await cluster.host(.admin, uuid: "admin")) { client in
            let server = try await client.send(
                .post, "/v1/certs/db",
                json: try Self.signRequest(usage: .server, hosts: ["db.example.com", "127.0.0.1"], key: serverKey, now: clock.now()))
            #expect(server.status == .ok, "\(String(buffer: server.body))")
            let serverReply = try ResourceCodec.jsonDecoder().decode(AuthAPI.SignDatabaseResponse.self, from: Data(server.body.readableBytesView))
            let serverCert = try Certificate(pemEncoded: serverReply.certificatePEM)
            #expect(dbCA.signed(serverCert))
            #expect(serverCert.publicKey == Certificate.PublicKey(serverKey.publicKey))
            #expect(serverCert.subject.description == "CN=db.example.com")
            let sans = try #require(try serverCert.extensions.subjectAlternativeNames)
            #expect(sans.contains(.dnsName("db.example.com")))
            #expect(sans.contains(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))))
            #expect(serverCert.notValidAfter.timeIntervalSince(clock.now()) > 2189 * 3600)
            #expect(serverReply.caPEMs == [try dbCA.certificatePEM])

            let alice = try await client.send(
                .post, "/v1/certs/db", json: try Self.signRequest(usage: .client, user: "alice", key: clientKey, now: clock.now()))
            #expect(alice.status == .ok, "\(String(buffer: alice.body))")
            let aliceCert = try Certificate(
                pemEncoded: try ResourceCodec.jsonDecoder().decode(AuthAPI.SignDatabaseResponse.self, from: Data(alice.body.readableBytesView))
                    .certificatePEM)
            #expect(dbCA.signed(aliceCert))
            #expect(aliceCert.subject.description == "CN=alice")
            #expect(try aliceCert.extensions.subjectAlternativeNames == nil)
        }
        let created = audit.named("cert.create")
        #expect(created.map { $0.fields["cert_type"] } == ["db_server", "db_client"])
        #expect(created.map { $0.fields["identity"] } == ["db.example.com,127.0.0.1", "alice"])
        #expect(created.allSatisfy { $0.fields["success"] == true && $0.code == AuditEventType.certCreate.1 })
    }

    @Test("users (even editors) and nodes may not sign database certificates; nothing is issued")
    func nonAdminRefused() async throws {
        let clock = ManualClock()
        let audit = RecordedAudit()
        let auth = try await Self.open(MemoryBackend(clock: clock), clock, audit)
        let cluster = InProcessAuth(auth: auth, clock: clock)
        let callers = [
            try await cluster.user("bob", roles: ["editor", "access"]),
            try await cluster.host(.node, uuid: UUID().uuidString.lowercased()),
            try await cluster.host(.proxy, uuid: UUID().uuidString.lowercased()),
        ]
        for caller in callers {
            try await cluster.routes(presenting: caller) { client in
                let refused = try await client.send(
                    .post, "/v1/certs/db",
                    json: try Self.signRequest(usage: .client, user: "postgres", key: P256.Signing.PrivateKey(), now: clock.now()))
                #expect(refused.status == .forbidden, "\(refused.status)")
                #expect(!String(buffer: refused.body).contains("BEGIN CERTIFICATE"))
            }
        }
        #expect(audit.named("cert.create").isEmpty)
    }

    @Test("a request without a valid proof of possession, or with bad names, is refused and audited as a failure")
    func proofAndNamesChecked() async throws {
        let clock = ManualClock()
        let audit = RecordedAudit()
        let auth = try await Self.open(MemoryBackend(clock: clock), clock, audit)
        let cluster = InProcessAuth(auth: auth, clock: clock)
        let key = P256.Signing.PrivateKey()
        try await cluster.routes(presenting: try await cluster.host(.admin, uuid: "admin")) { client in
            // Someone else's public key, signed with another key.
            let foreign = try await client.send(
                .post, "/v1/certs/db",
                json: try Self.signRequest(usage: .client, user: "alice", key: key, proofKey: P256.Signing.PrivateKey(), now: clock.now()))
            #expect(foreign.status == .forbidden)
            #expect(String(buffer: foreign.body).contains("not signed with the private key of its public_key"))
            // A proof made for another database user.
            let renamed = try await client.send(
                .post, "/v1/certs/db", json: try Self.signRequest(usage: .client, user: "postgres", key: key, proofUser: "alice", now: clock.now()))
            #expect(renamed.status == .forbidden)
            // A stale proof.
            let stale = try await client.send(
                .post, "/v1/certs/db",
                json: try Self.signRequest(usage: .client, user: "alice", key: key, now: clock.now().addingTimeInterval(-3600)))
            #expect(stale.status == .forbidden)
            #expect(String(buffer: stale.body).contains("check the client's clock"))
            // No proof at all.
            var unproven = try Self.signRequest(usage: .client, user: "alice", key: key, now: clock.now())
            unproven.keyProof = nil
            #expect(try await client.send(.post, "/v1/certs/db", json: unproven).status == .badRequest)
            // Names that are neither DNS names nor addresses, and a db user that would change the subject.
            let badHost = try await client.send(
                .post, "/v1/certs/db", json: try Self.signRequest(usage: .server, hosts: ["db example"], key: key, now: clock.now()))
            #expect(badHost.status == .badRequest)
            #expect(String(buffer: badHost.body).contains("neither a DNS name nor an IP address"))
            let badUser = try await client.send(
                .post, "/v1/certs/db", json: try Self.signRequest(usage: .client, user: "alice/CN=postgres", key: key, now: clock.now()))
            #expect(badUser.status == .badRequest)
            #expect(try await client.send(.post, "/v1/certs/db", json: try Self.signRequest(usage: .server, key: key, now: clock.now())).status == .badRequest)
        }
        let failures = audit.named("cert.create")
        #expect(failures.count == 7)
        #expect(failures.allSatisfy { $0.fields["success"] == false && $0.code == AuditEventType.certCreateFailure.1 && $0.fields["error"] != nil })
    }
}
