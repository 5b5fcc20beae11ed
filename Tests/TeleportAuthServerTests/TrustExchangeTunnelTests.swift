import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import TeleportAPI
@testable import TeleportAuthServer
import TeleportBackend
import TeleportCrypto
import TeleportServices
import Testing
import X509

/// Trusted clusters (issue 20), step 2, in process: what each auth service tells its proxies about
/// the tunnel between the clusters (the leaves' host CAs on the root, the enabled roots on the
/// leaf), the `remote_cluster` status the root's proxies report, and who may call those routes.
@Suite("trusted clusters: the auth side of the cluster tunnel (in process)")
struct TrustExchangeTunnelTests {
    /// A root and a leaf that established trust (the leaf's `trusted_cluster` stored as `tctl
    /// create` would store it).
    static func trusted() async throws -> (root: InProcessAuth, leaf: AuthServer) {
        let root = try await InProcessAuth.open(name: "root.example")
        let leaf = try await AuthServer.open(
            backend: MemoryBackend(clock: root.clock), audit: NoAudit(), clock: root.clock, configuredName: "leaf.example", logger: Logger(label: "test"))
        let token = try await root.auth.tokens.create(value: nil, roles: [.trustedCluster], ttlSeconds: 900).token
        let answer = try await root.auth.validateTrust(
            AuthAPI.ValidateTrustRequest(token: token, leafClusterName: "leaf.example", certAuthorities: try await leaf.exchangeableAuthorities()))
        // What the leaf keeps of the answer (its exchange over HTTPS is tested end to end elsewhere).
        for ca in try AuthServer.checkExchanged(answer.certAuthorities, cluster: "root.example", side: "root") {
            try await leaf.trustedAuthorityStore("root.example").upsert(ca)
        }
        return (root, leaf)
    }

    @Test("the root lists each trusted leaf with its host CA; a heartbeat sets online and last_heartbeat, offline keeps it")
    func rootStatus() async throws {
        let (root, leaf) = try await Self.trusted()
        let listed = try await root.auth.leafTunnelAuthorities()
        #expect(listed.map(\.clusterName) == ["leaf.example"])
        let leafHostCA = try await leaf.certAuthority(.host).trustedKeys.tls.map(\.cert)
        #expect(listed.first?.hostCAPEMs == leafHostCA)
        // The root's own host CA is never offered as a leaf's.
        let rootHostCA = try await root.auth.certAuthority(.host).trustedKeys.tls.map(\.cert)
        #expect(listed.first?.hostCAPEMs != rootHostCA)

        #expect(try await root.auth.remoteClusters.get("leaf.example").status.connection == "offline")
        try await root.auth.recordRemoteClusterHeartbeat(leaf: "leaf.example", connection: "online")
        let online = try await root.auth.remoteClusters.get("leaf.example").status
        #expect(online.connection == "online")
        #expect(online.lastHeartbeat == root.clock.now())
        root.clock.advance(by: 5)
        try await root.auth.recordRemoteClusterHeartbeat(leaf: "leaf.example", connection: "offline")
        let offline = try await root.auth.remoteClusters.get("leaf.example").status
        #expect(offline.connection == "offline")
        #expect(offline.lastHeartbeat == online.lastHeartbeat, "going offline keeps when the leaf was last seen")

        await #expect(throws: TeleportError.self) { try await root.auth.recordRemoteClusterHeartbeat(leaf: "leaf.example", connection: "up") }
    }

    @Test("a leaf whose proxy stops reporting is shown offline after a minute; a fresh heartbeat is not")
    func staleHeartbeat() async throws {
        let (root, _) = try await Self.trusted()
        try await root.auth.recordRemoteClusterHeartbeat(leaf: "leaf.example", connection: "online")
        root.clock.advance(by: 30)
        #expect(try await root.auth.markStaleRemoteClustersOffline().isEmpty)
        #expect(try await root.auth.remoteClusters.get("leaf.example").status.connection == "online")
        root.clock.advance(by: 31)
        #expect(try await root.auth.markStaleRemoteClustersOffline() == ["leaf.example"])
        #expect(try await root.auth.remoteClusters.get("leaf.example").status.connection == "offline")
    }

    @Test("a heartbeat after tctl rm rc/NAME does not bring the leaf back; its CA is no longer listed")
    func heartbeatAfterRemoval() async throws {
        let (root, _) = try await Self.trusted()
        try await root.auth.removeRemoteCluster("leaf.example", by: "admin")
        await #expect(throws: TeleportError.self) { try await root.auth.recordRemoteClusterHeartbeat(leaf: "leaf.example", connection: "online") }
        await #expect(throws: TeleportError.self) { try await root.auth.remoteClusters.get("leaf.example") }
        #expect(try await root.auth.leafTunnelAuthorities().isEmpty)
    }

    @Test("the leaf lists an enabled trust with the root's host CA; a disabled or removed one is not listed")
    func leafTargets() async throws {
        let (root, leaf) = try await Self.trusted()
        let spec = TrustedCluster.Spec(
            enabled: true, token: nil, webProxyAddr: "root.example.com:3080", tunnelAddr: "root.example.com:3024",
            roleMap: [.init(remote: "access", local: ["access"])])
        #expect(try await leaf.rootTunnelTargets().isEmpty, "no trust yet")
        _ = try await leaf.putTrustedCluster(TrustedCluster(name: "root.example", spec: spec), upsert: false, by: "admin")
        let targets = try await leaf.rootTunnelTargets()
        #expect(targets.map(\.clusterName) == ["root.example"])
        #expect(targets.first?.tunnelAddr == "root.example.com:3024")
        #expect(targets.first?.webProxyAddr == "root.example.com:3080")
        #expect(targets.first?.hostCAPEMs == (try await root.auth.certAuthority(.host).trustedKeys.tls.map(\.cert)))

        var disabled = spec
        disabled.enabled = false
        _ = try await leaf.putTrustedCluster(TrustedCluster(name: "root.example", spec: disabled), upsert: true, by: "admin")
        #expect(try await leaf.rootTunnelTargets().isEmpty)
        _ = try await leaf.putTrustedCluster(TrustedCluster(name: "root.example", spec: spec), upsert: true, by: "admin")
        #expect(try await leaf.rootTunnelTargets().count == 1)
        try await leaf.removeTrustedCluster("root.example", by: "admin")
        #expect(try await leaf.rootTunnelTargets().isEmpty)
    }

    @Test("only the cluster's proxies may read the tunnel CAs and targets or report a leaf's tunnel")
    func onlyProxies() async throws {
        let (root, _) = try await Self.trusted()
        let heartbeat = AuthAPI.RemoteClusterHeartbeat(connection: "online")
        for presenting in [try await root.user("alice", roles: ["access"]), try await root.host(.node, uuid: UUID().uuidString.lowercased())] {
            try await root.routes(presenting: presenting) { client in
                let authorities = try await client.execute(uri: "/v1/remoteclusters/tunnelauthorities", method: .get)
                #expect(authorities.status == .forbidden)
                let targets = try await client.execute(uri: "/v1/trustedclusters/tunnels", method: .get)
                #expect(targets.status == .forbidden)
                let statuses = try await client.execute(uri: "/v1/remoteclusters/statuses", method: .get)
                #expect(statuses.status == .forbidden)
                let reported = try await client.send(.post, "/v1/remoteclusters/leaf.example/heartbeat", json: heartbeat)
                #expect(reported.status == .forbidden)
            }
        }
        #expect(try await root.auth.remoteClusters.get("leaf.example").status.connection == "offline")
        try await root.routes(presenting: try await root.host(.proxy, uuid: UUID().uuidString.lowercased())) { client in
            let listed = try await client.execute(uri: "/v1/remoteclusters/tunnelauthorities", method: .get)
            #expect(listed.status == .ok)
            let leaves = try ResourceCodec.jsonDecoder().decode([AuthAPI.LeafTunnelAuthority].self, from: Data(listed.body.readableBytesView))
            #expect(leaves.map(\.clusterName) == ["leaf.example"])
            let reported = try await client.send(.post, "/v1/remoteclusters/leaf.example/heartbeat", json: heartbeat)
            #expect(reported.status == .ok)
            let unknown = try await client.send(.post, "/v1/remoteclusters/nosuch.example/heartbeat", json: heartbeat)
            #expect(unknown.status == .notFound)
            let statuses = try await client.execute(uri: "/v1/remoteclusters/statuses", method: .get)
            #expect(statuses.status == .ok)
            #expect(String(buffer: statuses.body).contains("leaf.example"))
        }
        #expect(try await root.auth.remoteClusters.get("leaf.example").status.connection == "online")
    }
}
