import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import TeleportAPI
import TeleportAuthServer
import TeleportBackend
import TeleportCrypto
import TeleportServices
import Testing
import X509

/// The root side of a trust exchange (issue 20), in process: the token's type, single use and
/// expiry, the leaf's CAs, the seal, the audit, and who may call the route.
@Suite("trusted clusters: the root's side of the CA exchange (in process)")
struct TrustExchangeAuthTests {
    struct Pair {
        let root: AuthServer
        let leaf: AuthServer
        let clock: ManualClock
        let audit: RecordedAudit
    }

    static func open() async throws -> Pair {
        let clock = ManualClock()
        let audit = RecordedAudit()
        let root = try await AuthServer.open(
            backend: MemoryBackend(clock: clock), audit: audit, clock: clock, configuredName: "root.example", logger: Logger(label: "test"))
        let leaf = try await AuthServer.open(
            backend: MemoryBackend(clock: clock), audit: NoAudit(), clock: clock, configuredName: "leaf.example", logger: Logger(label: "test"))
        return Pair(root: root, leaf: leaf, clock: clock, audit: audit)
    }

    static func request(_ pair: Pair, token: String) async throws -> AuthAPI.ValidateTrustRequest {
        AuthAPI.ValidateTrustRequest(token: token, leafClusterName: "leaf.example", certAuthorities: try await pair.leaf.exchangeableAuthorities())
    }

    @Test("a trusted_cluster token admits one leaf: CAs stored by cluster, remote_cluster written, answer sealed, audited")
    func exchange() async throws {
        let pair = try await Self.open()
        let token = try await pair.root.tokens.create(value: nil, roles: [.trustedCluster], ttlSeconds: 900).token
        let answer = try await pair.root.validateTrust(try await Self.request(pair, token: token))
        #expect(answer.clusterName == "root.example")
        #expect(answer.certAuthorities.map(\.spec.type).sorted { $0.rawValue < $1.rawValue } == [.host, .user])
        #expect(answer.certAuthorities.allSatisfy { $0.spec.activeKeys.ssh.allSatisfy { $0.privateKey == nil } && $0.spec.activeKeys.tls.allSatisfy { $0.key == nil } })
        #expect(TrustExchangeSeal.verify(answer.seal, token: token, rootCluster: "root.example", leafCluster: "leaf.example", certAuthorities: answer.certAuthorities))
        #expect(!TrustExchangeSeal.verify(answer.seal, token: token + "0", rootCluster: "root.example", leafCluster: "leaf.example", certAuthorities: answer.certAuthorities))
        #expect(!TrustExchangeSeal.verify(answer.seal, token: token, rootCluster: "evil.example", leafCluster: "leaf.example", certAuthorities: answer.certAuthorities))
        // A CA swapped by someone in between breaks the seal.
        var swapped = answer.certAuthorities
        swapped[0].spec.activeKeys.ssh[0].publicKey = try await pair.leaf.certAuthority(.user).spec.activeKeys.ssh[0].publicKey
        #expect(!TrustExchangeSeal.verify(answer.seal, token: token, rootCluster: "root.example", leafCluster: "leaf.example", certAuthorities: swapped))

        let leafUserCA = try #require(try await pair.root.trustedAuthority(cluster: "leaf.example", type: .user))
        #expect(leafUserCA.spec.clusterName == "leaf.example")
        #expect(leafUserCA.spec.activeKeys.ssh.map(\.publicKey) == (try await pair.leaf.certAuthority(.user)).spec.activeKeys.ssh.map(\.publicKey))
        #expect(try await pair.root.trustedAuthority(cluster: "leaf.example", type: .host) != nil)
        // The root's own CAs are untouched: the leaf's never mix into them.
        #expect(try await pair.root.certAuthority(.user).spec.clusterName == "root.example")
        #expect(try await pair.root.remoteClusters.get("leaf.example").status.connection == "offline")
        let listing = try await pair.root.authorityListing()
        #expect(listing.trusted.map { "\($0.clusterName)/\($0.type)" } == ["leaf.example/host", "leaf.example/user"])
        #expect(pair.audit.named("trusted_cluster.create").contains { $0.code == "T7000I" })

        // Single use: the same token again is refused, and audited.
        try await pair.root.removeRemoteCluster("leaf.example", by: "admin")
        #expect(try await pair.root.trustedAuthority(cluster: "leaf.example", type: .user) == nil)
        await #expect(throws: TeleportError.self) { try await pair.root.validateTrust(try await Self.request(pair, token: token)) }
        #expect(pair.audit.named("trusted_cluster.create").contains { $0.code == "T7000W" })
        #expect(pair.audit.named("trusted_cluster.delete").count == 1)
    }

    @Test("a node token, an expired token and an unknown token are refused and audited; a malformed request does not spend the token")
    func badTokens() async throws {
        let pair = try await Self.open()
        let node = try await pair.root.tokens.create(value: nil, roles: [.node], ttlSeconds: 900).token
        do {
            _ = try await pair.root.validateTrust(try await Self.request(pair, token: node))
            Issue.record("a node token established trust")
        } catch let error as TeleportError {
            #expect(error.code == .accessDenied)
            #expect(error.message.contains("does not allow joining as Trusted_cluster"))
        }
        await #expect(throws: TeleportError.self) { try await pair.root.validateTrust(try await Self.request(pair, token: "0123456789abcdef0123456789abcdef")) }

        let token = try await pair.root.tokens.create(value: nil, roles: [.trustedCluster], ttlSeconds: 900).token
        // The leaf's CAs claiming another cluster: refused, and the token survives.
        var wrong = try await Self.request(pair, token: token)
        wrong.certAuthorities[0].spec.clusterName = "root.example"
        await #expect(throws: TeleportError.self) { try await pair.root.validateTrust(wrong) }
        var missing = try await Self.request(pair, token: token)
        missing.certAuthorities.removeLast()
        await #expect(throws: TeleportError.self) { try await pair.root.validateTrust(missing) }
        var misnamed = try await Self.request(pair, token: token)
        misnamed.rootClusterName = "main"
        await #expect(throws: TeleportError.self) { try await pair.root.validateTrust(misnamed) }
        var itself = try await Self.request(pair, token: token)
        itself.leafClusterName = "root.example"
        await #expect(throws: TeleportError.self) { try await pair.root.validateTrust(itself) }

        #expect(try await pair.root.tokens.validate(token, for: .trustedCluster) == [.trustedCluster])
        // Expired.
        pair.clock.advance(by: 901)
        await #expect(throws: TeleportError.self) { try await pair.root.validateTrust(try await Self.request(pair, token: token)) }
        #expect(pair.audit.named("trusted_cluster.create").filter { $0.code == "T7000W" }.count == 7)
        #expect(pair.audit.named("trusted_cluster.create").allSatisfy { event in
            !event.fields.values.contains { "\($0)".contains(token) || "\($0)".contains(node) }
        })
        #expect(try await pair.root.remoteClusters.list().isEmpty)
    }

    @Test("a trusted_cluster token never joins a host")
    func trustTokenDoesNotJoin() async throws {
        let pair = try await Self.open()
        let token = try await pair.root.tokens.create(value: nil, roles: [.trustedCluster], ttlSeconds: 900).token
        let join = AuthAPI.JoinRequest(
            token: token, role: .node, hostUUID: UUID().uuidString.lowercased(), nodeName: "n1", addresses: [],
            tlsPublicKeyPEM: P256.Signing.PrivateKey().publicKey.pemRepresentation, sshHostPublicKey: nil)
        await #expect(throws: TeleportError.self) { try await pair.root.join(join, remoteAddress: "127.0.0.1") }
        var asTrust = join
        asTrust.role = .trustedCluster
        await #expect(throws: TeleportError.self) { try await pair.root.join(asTrust, remoteAddress: "127.0.0.1") }
    }

    @Test("only the cluster's proxies may call POST /v1/trustedclusters/validate")
    func onlyProxies() async throws {
        let cluster = try await InProcessAuth.open(name: "root.example")
        let token = try await cluster.auth.tokens.create(value: nil, roles: [.trustedCluster], ttlSeconds: 900).token
        let leaf = try await AuthServer.open(
            backend: MemoryBackend(clock: cluster.clock), audit: NoAudit(), clock: cluster.clock, configuredName: "leaf.example",
            logger: Logger(label: "test"))
        let body = AuthAPI.ValidateTrustRequest(token: token, leafClusterName: "leaf.example", certAuthorities: try await leaf.exchangeableAuthorities())
        let user = try await cluster.user("alice", roles: ["access"])
        try await cluster.routes(presenting: user) { client in
            let reply = try await client.send(.post, "/v1/trustedclusters/validate", json: body)
            #expect(reply.status == .forbidden)
        }
        let node = try await cluster.host(.node, uuid: UUID().uuidString.lowercased())
        try await cluster.routes(presenting: node) { client in
            let reply = try await client.send(.post, "/v1/trustedclusters/validate", json: body)
            #expect(reply.status == .forbidden)
        }
        let proxy = try await cluster.host(.proxy, uuid: UUID().uuidString.lowercased())
        try await cluster.routes(presenting: proxy) { client in
            let reply = try await client.send(.post, "/v1/trustedclusters/validate", json: body)
            #expect(reply.status == .ok)
        }
    }
}
