import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import TeleportAPI
@testable import TeleportAuthServer
import TeleportBackend
import TeleportCrypto
import TeleportServices
import Testing

/// Trusted clusters (issue 20): the leaf's side of a root user's access, in process. The leaf
/// checks the root user's certificate against the root's user CA it stored at the exchange, maps
/// the roles with `role_map`, and records a certificate of its own with the mapped roles for the
/// user's key; every refusal is audited.
@Suite("trusted clusters: the leaf admits root users after role mapping (in process)")
struct TrustedClusterRootUserTests {
    struct Setup {
        let root: InProcessAuth
        let leaf: AuthServer
        let audit: RecordedAudit
    }

    static let spec = TrustedCluster.Spec(
        enabled: true, token: nil, webProxyAddr: "root.example.com:3080", roleMap: [.init(remote: "^root-(.*)$", local: ["$1"])])

    /// A root and a leaf that established trust; the leaf maps `root-X` to `X`.
    static func open(roleMap: [TrustedCluster.RoleMapping]? = nil) async throws -> Setup {
        let root = try await InProcessAuth.open(name: "root.example")
        let audit = RecordedAudit()
        let leaf = try await AuthServer.open(
            backend: MemoryBackend(clock: root.clock), audit: audit, clock: root.clock, configuredName: "leaf.example", logger: Logger(label: "test"))
        let token = try await root.auth.tokens.create(value: nil, roles: [.trustedCluster], ttlSeconds: 900).token
        let answer = try await root.auth.validateTrust(
            AuthAPI.ValidateTrustRequest(token: token, leafClusterName: "leaf.example", certAuthorities: try await leaf.exchangeableAuthorities()))
        for ca in try AuthServer.checkExchanged(answer.certAuthorities, cluster: "root.example", side: "root") {
            try await leaf.trustedAuthorityStore("root.example").upsert(ca)
        }
        var spec = Self.spec
        if let roleMap { spec.roleMap = roleMap }
        _ = try await leaf.putTrustedCluster(TrustedCluster(name: "root.example", spec: spec), upsert: false, by: "admin")
        return Setup(root: root, leaf: leaf, audit: audit)
    }

    /// A user certificate as `tsh login` on the root gives it (roles, traits), signed by `signer`.
    static func certificate(
        _ user: String, roles: [String], logins: [String], key: SSHPublicKey, signer: Curve25519.Signing.PrivateKey, clock: ManualClock,
        type: SSHCertificate.CertType = .user, ttl: TimeInterval = 3600
    ) throws -> SSHCertificate {
        var extensions = SSHCertificate.standardUserExtensions
        let roleList: [String: JSONValue] = ["version": "v1", "roles": .array(roles.map { .string($0) })]
        extensions["teleport-roles"] = String(decoding: try ResourceCodec.json(roleList), as: UTF8.self)
        extensions["teleport-traits"] = String(decoding: try ResourceCodec.json(["logins": logins]), as: UTF8.self)
        extensions["teleport-route-to-cluster"] = "root.example"
        let now = clock.now()
        return try SSHCertificate.sign(
            publicKey: key, type: type, serial: 7, keyID: user, validPrincipals: logins, validAfter: now.addingTimeInterval(-60),
            validBefore: now.addingTimeInterval(ttl), extensions: type == .user ? extensions : [:], caKey: signer)
    }

    static func key() -> SSHPublicKey { .ed25519(Curve25519.Signing.PrivateKey().publicKey) }

    @Test("a root user's certificate is mapped: the leaf records its own certificate for the key with the mapped roles only, audited")
    func mapped() async throws {
        let setup = try await Self.open()
        let key = Self.key()
        let rootSigner = try await setup.root.auth.userIssuingMaterial().sshSigningKey
        let rootCert = try Self.certificate("alice", roles: ["root-access", "root-nothing", "auditor"], logins: ["alice"], key: key, signer: rootSigner, clock: setup.root.clock)
        let admission = try await setup.leaf.admitRootUser(.init(cluster: "root.example", certificate: rootCert.authorizedKeyLine(), record: true))
        // root-access → access; root-nothing → nothing (no such role here); auditor is not mapped at all.
        #expect(admission.user == "alice")
        #expect(admission.roles == ["access"])
        #expect(admission.rootRoles == ["root-access", "root-nothing", "auditor"])
        #expect(admission.logins == ["alice"])

        let recorded = try SSHCertificate(
            authorizedKeyLine: try await setup.leaf.userCertificate(fingerprintHex: key.fingerprintHex).certificate)
        let leafCAKeys = try await setup.leaf.userCAKeyLines().map { try SSHPublicKey(authorizedKeyLine: $0) }
        #expect(leafCAKeys.contains(recorded.signatureKey), "signed by the leaf's own user CA")
        #expect(recorded.signatureKey != rootCert.signatureKey)
        #expect(recorded.keyID == "alice")
        #expect(recorded.publicKey == key)
        #expect(AuthServer.certificateRoles(recorded.extensions) == ["access"], "the mapped roles, never the root's names")
        #expect(recorded.extensions[SSHCertificate.userClusterExtension] == "root.example")
        #expect(recorded.extensions["teleport-route-to-cluster"] == "leaf.example")
        #expect(recorded.validBefore <= rootCert.validBefore, "never longer than the root's certificate")
        #expect(recorded.validPrincipals == ["alice"])
        let issued = try #require(setup.audit.named("cert.create").last)
        #expect(issued.code == "TC000I")
        #expect(issued.fields["user"] == "alice")
        #expect(issued.fields["user_cluster"] == "root.example")
        #expect(issued.fields["roles"] == .array(["access"]))

        // Mapping only (a listing) records nothing new.
        let other = Self.key()
        let listing = try Self.certificate("alice", roles: ["root-editor"], logins: ["alice"], key: other, signer: rootSigner, clock: setup.root.clock)
        #expect(try await setup.leaf.admitRootUser(.init(cluster: "root.example", certificate: listing.authorizedKeyLine(), record: false)).roles == ["editor"])
        await #expect(throws: TeleportError.self) { try await setup.leaf.userCertificate(fingerprintHex: other.fingerprintHex) }
    }

    @Test("roles that map to nothing are refused and audited, and nothing is recorded")
    func unmapped() async throws {
        let setup = try await Self.open()
        let key = Self.key()
        let rootSigner = try await setup.root.auth.userIssuingMaterial().sshSigningKey
        let cert = try Self.certificate("bob", roles: ["auditor", "root-nosuch"], logins: ["bob"], key: key, signer: rootSigner, clock: setup.root.clock)
        let error = await #expect(throws: TeleportError.self) {
            try await setup.leaf.admitRootUser(.init(cluster: "root.example", certificate: cert.authorizedKeyLine(), record: true))
        }
        #expect(error?.code == .accessDenied)
        #expect(error?.message.contains("root user bob of root.example has no roles in cluster leaf.example") == true)
        let denied = try #require(setup.audit.named("trusted_cluster.user.denied").last)
        #expect(denied.code == "T7010W")
        #expect(denied.fields["user"] == "bob")
        #expect(denied.fields["user_cluster"] == "root.example")
        #expect(denied.fields["root_roles"] == .array(["auditor", "root-nosuch"]))
        await #expect(throws: TeleportError.self) { try await setup.leaf.userCertificate(fingerprintHex: key.fingerprintHex) }
        #expect(setup.audit.named("cert.create").isEmpty)
    }

    @Test("a change of role_map applies to the next request without a new exchange")
    func roleMapChange() async throws {
        let setup = try await Self.open(roleMap: [.init(remote: "ops", local: ["access"])])
        let rootSigner = try await setup.root.auth.userIssuingMaterial().sshSigningKey
        let cert = try Self.certificate("carol", roles: ["ops"], logins: ["carol"], key: Self.key(), signer: rootSigner, clock: setup.root.clock)
        let request = AuthAPI.RootUserRequest(cluster: "root.example", certificate: cert.authorizedKeyLine(), record: true)
        #expect(try await setup.leaf.admitRootUser(request).roles == ["access"])
        var spec = Self.spec
        spec.roleMap = [.init(remote: "ops", local: ["auditor"])]
        _ = try await setup.leaf.putTrustedCluster(TrustedCluster(name: "root.example", spec: spec), upsert: true, by: "admin")
        #expect(try await setup.leaf.admitRootUser(request).roles == ["auditor"])
        spec.roleMap = []
        _ = try await setup.leaf.putTrustedCluster(TrustedCluster(name: "root.example", spec: spec), upsert: true, by: "admin")
        await #expect(throws: TeleportError.self) { try await setup.leaf.admitRootUser(request) }
    }

    @Test("refused: a disabled or unknown trust, a third cluster's certificate, the leaf's own, a host certificate, an expired one, a locked user")
    func refusals() async throws {
        let setup = try await Self.open(roleMap: [.init(remote: "*", local: ["access"])])
        let clock = setup.root.clock
        let rootSigner = try await setup.root.auth.userIssuingMaterial().sshSigningKey
        func admit(_ cert: SSHCertificate, cluster: String = "root.example") async -> TeleportError? {
            await #expect(throws: TeleportError.self) {
                try await setup.leaf.admitRootUser(.init(cluster: cluster, certificate: cert.authorizedKeyLine(), record: true))
            }
        }
        let good = try Self.certificate("dave", roles: ["access"], logins: ["dave"], key: Self.key(), signer: rootSigner, clock: clock)

        // A third cluster's user CA (its certificate relayed through the root's proxy).
        let third = try Self.certificate("dave", roles: ["access"], logins: ["dave"], key: Self.key(), signer: Curve25519.Signing.PrivateKey(), clock: clock)
        #expect(await admit(third)?.message.contains("not a trusted user CA") == true)
        // The leaf's own user CA is not the root's.
        let own = try Self.certificate(
            "dave", roles: ["access"], logins: ["dave"], key: Self.key(), signer: try await setup.leaf.userIssuingMaterial().sshSigningKey, clock: clock)
        #expect(await admit(own)?.message.contains("not a trusted user CA") == true)
        // The root's host CA signs hosts, never users.
        let hostCA = try await setup.root.auth.certAuthority(.host)
        let hostPEM = try #require(hostCA.spec.activeKeys.ssh.first?.privateKey)
        guard case .ed25519(let hostSigner) = try OpenSSHPrivateKey(pemRepresentation: hostPEM).key else {
            Issue.record("the host CA is not Ed25519")
            return
        }
        #expect(await admit(try Self.certificate("dave", roles: ["access"], logins: ["dave"], key: Self.key(), signer: hostSigner, clock: clock)) != nil)
        // A host certificate of the root's user CA is not a user certificate.
        #expect(await admit(try Self.certificate("dave", roles: ["access"], logins: ["dave"], key: Self.key(), signer: rootSigner, clock: clock, type: .host))?
            .message.contains("host certificate") == true)
        // Expired.
        let short = try Self.certificate("dave", roles: ["access"], logins: ["dave"], key: Self.key(), signer: rootSigner, clock: clock, ttl: 60)
        clock.advance(by: 120)
        #expect(await admit(short)?.message.contains("expired") == true)
        // A cluster the leaf does not trust.
        #expect(await admit(good, cluster: "other.example")?.message.contains("does not trust a root cluster named") == true)
        // A lock on the user in the leaf.
        try await setup.leaf.stores.locks.create(Lock(name: "stop-dave", target: .init(user: "dave"), message: "incident"))
        #expect(await admit(good)?.message.contains("incident") == true)
        // A disabled trust.
        var spec = Self.spec
        spec.enabled = false
        _ = try await setup.leaf.putTrustedCluster(TrustedCluster(name: "root.example", spec: spec), upsert: true, by: "admin")
        #expect(await admit(good)?.message.contains("is disabled") == true)
        #expect(setup.audit.named("trusted_cluster.user.denied").count == 8)
        #expect(setup.audit.named("cert.create").isEmpty)
    }

    @Test("only the cluster's proxies may pass root users' certificates on")
    func onlyProxies() async throws {
        let setup = try await Self.open()
        let rootSigner = try await setup.root.auth.userIssuingMaterial().sshSigningKey
        let cert = try Self.certificate("erin", roles: ["root-access"], logins: ["erin"], key: Self.key(), signer: rootSigner, clock: setup.root.clock)
        let body = AuthAPI.RootUserRequest(cluster: "root.example", certificate: cert.authorizedKeyLine(), record: true)
        let leaf = InProcessAuth(auth: setup.leaf, clock: setup.root.clock)
        for presenting in [try await leaf.user("erin", roles: ["access"]), try await leaf.host(.node, uuid: UUID().uuidString.lowercased())] {
            try await leaf.routes(presenting: presenting) { client in
                let reply = try await client.send(.post, "/v1/trustedclusters/rootusers", json: body)
                #expect(reply.status == .forbidden)
            }
        }
        try await leaf.routes(presenting: try await leaf.host(.proxy, uuid: UUID().uuidString.lowercased())) { client in
            let reply = try await client.send(.post, "/v1/trustedclusters/rootusers", json: body)
            #expect(reply.status == .ok)
            let admission = try ResourceCodec.jsonDecoder().decode(AuthAPI.RootUserAdmission.self, from: Data(reply.body.readableBytesView))
            #expect(admission.roles == ["access"])
        }
    }
}
