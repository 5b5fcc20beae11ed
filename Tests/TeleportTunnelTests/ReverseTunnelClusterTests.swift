import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSH
import NIOSSL
import Synchronization
import TeleportAPI
import TeleportCrypto
@testable import TeleportTunnel
import Testing

/// Trusted clusters (issue 20), step 2: a leaf cluster's proxy keeps a reverse tunnel to the root
/// cluster's proxy. Over loopback with certificates made here: the root accepts the leaf proxy's
/// host certificate only when the leaf's host CA (stored at the trust exchange) issued it, and
/// keeps the tunnel by cluster name, apart from its own agents; every way a leaf could abuse the
/// now wider trust roots is refused.
@Suite(.timeLimit(.minutes(1))) struct ReverseTunnelClusterTests {
    typealias Cluster = ReverseTunnelTests.Cluster

    /// A root proxy that records refusals and cluster events.
    static func rootProxy(root: Cluster, leaves: [Cluster]) async throws -> (ReverseTunnelServer, any Channel, ClusterTunnelTrust, Recorder) {
        let identity = try root.identity(root.hostCA, username: "rp-1.\(root.name)", roles: ["Proxy"])
        let trust = ClusterTunnelTrust(localCAPEMs: root.trusted)
        trust.setLeaves(Dictionary(uniqueKeysWithValues: try leaves.map { ($0.name, [try $0.hostCA.certificatePEM]) }))
        var configuration = ReverseTunnelServer.Configuration(
            clusterName: root.name,
            tlsContext: try ReverseTunnelServer.serverTLSContext(certificatePEM: identity.cert, keyPEM: identity.key, trustedCAPEMs: trust.trustedRootPEMs))
        configuration.clusterTrust = trust
        let recorder = Recorder()
        configuration.onRefused = { _, reason in recorder.refusals.withLock { $0.append(reason) } }
        configuration.onClusterConnected = { name in recorder.events.withLock { $0.append("up \(name)") } }
        configuration.onClusterDisconnected = { name in recorder.events.withLock { $0.append("down \(name)") } }
        let server = ReverseTunnelServer(configuration: configuration, logger: Logger(label: "test.root"))
        return (server, try await server.listen(host: "127.0.0.1", port: 0), trust, recorder)
    }

    final class Recorder: Sendable {
        let refusals = Mutex<[String]>([])
        let events = Mutex<[String]>([])

        func waitForRefusal() async throws -> String {
            for _ in 0..<500 {
                if let first = refusals.withLock({ $0.first }) { return first }
                try await Task.sleep(for: .milliseconds(20))
            }
            Issue.record("the proxy logged no refusal")
            return ""
        }
    }

    /// The leaf proxy's agent: its own host certificate, the root's host CA as the only trust
    /// root, the root's name as the cluster the proxy's certificate must name.
    static func leafAgent(root: Cluster, uuid: String, certificate: (cert: String, key: String), port: Int) throws -> ReverseTunnelAgent {
        ReverseTunnelAgent(
            configuration: .init(
                hostUUID: uuid, clusterName: root.name, proxyHost: "127.0.0.1", proxyPort: port,
                tlsContext: try TunnelTLS.clientTLSContext(
                    certificatePEM: certificate.cert, keyPEM: certificate.key, trustedCAPEMs: [try root.hostCA.certificatePEM]),
                services: [:]),
            logger: Logger(label: "test.leaf"))
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<500 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("condition not met in 10 s")
    }

    @Test("a leaf's proxy opens a cluster tunnel: kept by cluster name, apart from the agents; closing it is reported")
    func leafProxyTunnel() async throws {
        let root = try Cluster("root.example")
        let leaf = try Cluster("leaf.example")
        let (server, listener, _, recorder) = try await Self.rootProxy(root: root, leaves: [leaf])
        let leafProxy = try leaf.identity(leaf.hostCA, username: "lp-1.leaf.example", roles: ["Proxy"])
        let tunnel = try await Self.leafAgent(root: root, uuid: "lp-1", certificate: leafProxy, port: listener.localAddress?.port ?? 0).connect()
        try await Self.waitUntil { server.clusters.isConnected("leaf.example") }
        #expect(server.registry.connectedHosts.isEmpty, "a leaf never sits with the root's own agents")
        #expect(tunnel.proxyID == "rp-1")
        try await tunnel.channel.close()
        try await Self.waitUntil { !server.clusters.isConnected("leaf.example") }
        try await Self.waitUntil { recorder.events.withLock { $0 } == ["up leaf.example", "down leaf.example"] }
        #expect(recorder.refusals.withLock { $0 }.isEmpty)
        try await listener.close()
    }

    @Test("trust is one-way: the leaf cannot open any channel to the root through its tunnel (a session, a root node's address, a service)")
    func leafCannotReachRoot() async throws {
        let root = try Cluster("root.example")
        let leaf = try Cluster("leaf.example")
        let (server, listener, _, _) = try await Self.rootProxy(root: root, leaves: [leaf])
        let leafProxy = try leaf.identity(leaf.hostCA, username: "lp-1.leaf.example", roles: ["Proxy"])
        let tunnel = try await Self.leafAgent(root: root, uuid: "lp-1", certificate: leafProxy, port: listener.localAddress?.port ?? 0).connect()
        try await Self.waitUntil { server.clusters.isConnected("leaf.example") }
        let from = try SocketAddress(ipAddress: "10.9.9.9", port: 4242)
        let types: [SSHChannelType] = [
            .session, .directTCPIP(.init(targetHost: "127.0.0.1", targetPort: 22, originatorAddress: from)),
            .forwardedTCPIP(.init(listeningHost: "node-ssh", listeningPort: 0, originatorAddress: from)),
        ]
        for type in types {
            let loop = tunnel.channel.eventLoop
            let handler = tunnel.handler
            let opened: EventLoopFuture<any Channel> = loop.flatSubmit {
                let promise = loop.makePromise(of: (any Channel).self)
                handler.value.createChannel(promise, channelType: type) { child, _ in child.eventLoop.makeSucceededVoidFuture() }
                return promise.futureResult
            }
            await #expect(throws: (any Error).self, "\(type) was opened") { _ = try await opened.get() }
        }
        // The refusals do not end the tunnel.
        #expect(server.clusters.isConnected("leaf.example") && tunnel.channel.isActive)
        try await tunnel.channel.close()
        try await listener.close()
    }

    @Test("a leaf's CA cannot vouch for a host of the root: a root-named node certificate it issued is refused")
    func leafForgesRootNode() async throws {
        let root = try Cluster("root.example")
        let leaf = try Cluster("leaf.example")
        let (server, listener, _, recorder) = try await Self.rootProxy(root: root, leaves: [leaf])
        // Signed by the leaf's host CA, but naming the root cluster and role Node.
        let forged = try Cluster.forged(by: leaf, claiming: "root.example", username: "node-1.root.example", roles: ["Node"])
        let agent = ReverseTunnelAgent(
            configuration: .init(
                hostUUID: "node-1", clusterName: root.name, proxyHost: "127.0.0.1", proxyPort: listener.localAddress?.port ?? 0,
                tlsContext: try TunnelTLS.clientTLSContext(certificatePEM: forged.cert, keyPEM: forged.key, trustedCAPEMs: root.trusted),
                services: [:]),
            logger: Logger(label: "test.forger"))
        await #expect(throws: (any Error).self) { _ = try await agent.connect() }
        #expect(try await recorder.waitForRefusal().contains("names cluster root.example but was not issued by its host CA"))
        #expect(server.registry.connectedHosts.isEmpty && server.clusters.connectedHosts.isEmpty)
        try await listener.close()
    }

    @Test("a leaf's node (not its proxy) cannot open a cluster tunnel")
    func leafNodeRefused() async throws {
        let root = try Cluster("root.example")
        let leaf = try Cluster("leaf.example")
        let (server, listener, _, recorder) = try await Self.rootProxy(root: root, leaves: [leaf])
        let node = try leaf.identity(leaf.hostCA, username: "n-1.leaf.example", roles: ["Node"])
        await #expect(throws: (any Error).self) {
            _ = try await Self.leafAgent(root: root, uuid: "n-1", certificate: node, port: listener.localAddress?.port ?? 0).connect()
        }
        #expect(try await recorder.waitForRefusal().contains("a Node certificate of leaf cluster leaf.example cannot open a cluster tunnel"))
        #expect(server.clusters.connectedHosts.isEmpty)
        try await listener.close()
    }

    @Test("a leaf claimed by a certificate from another leaf's CA is refused")
    func crossLeafForgery() async throws {
        let root = try Cluster("root.example")
        let leaf = try Cluster("leaf.example")
        let other = try Cluster("other.example")
        let (server, listener, _, recorder) = try await Self.rootProxy(root: root, leaves: [leaf, other])
        let forged = try Cluster.forged(by: other, claiming: "leaf.example", username: "lp-1.leaf.example", roles: ["Proxy"])
        await #expect(throws: (any Error).self) {
            _ = try await Self.leafAgent(root: root, uuid: "lp-1", certificate: forged, port: listener.localAddress?.port ?? 0).connect()
        }
        #expect(try await recorder.waitForRefusal().contains("names leaf cluster leaf.example but was not issued by that leaf's host CA"))
        #expect(server.clusters.connectedHosts.isEmpty)
        try await listener.close()
    }

    @Test("once the leaf is no longer trusted (tctl rm rc), its proxy is refused even with the old TLS roots")
    func removedLeafRefused() async throws {
        let root = try Cluster("root.example")
        let leaf = try Cluster("leaf.example")
        let (server, listener, trust, recorder) = try await Self.rootProxy(root: root, leaves: [leaf])
        #expect(trust.setLeaves([:]))
        #expect(!trust.setLeaves([:]), "no change, no rebuild")
        let leafProxy = try leaf.identity(leaf.hostCA, username: "lp-1.leaf.example", roles: ["Proxy"])
        await #expect(throws: (any Error).self) {
            _ = try await Self.leafAgent(root: root, uuid: "lp-1", certificate: leafProxy, port: listener.localAddress?.port ?? 0).connect()
        }
        #expect(try await recorder.waitForRefusal().contains("neither root.example nor a leaf cluster that trusts it"))
        #expect(server.clusters.connectedHosts.isEmpty)
        try await listener.close()
    }

    @Test("the root's own nodes still open tunnels while leaves are trusted")
    func rootNodeStillWorks() async throws {
        let root = try Cluster("root.example")
        let leaf = try Cluster("leaf.example")
        let (server, listener, _, _) = try await Self.rootProxy(root: root, leaves: [leaf])
        let node = try root.identity(root.hostCA, username: "node-1.root.example", roles: ["Node"])
        let agent = ReverseTunnelAgent(
            configuration: .init(
                hostUUID: "node-1", clusterName: root.name, proxyHost: "127.0.0.1", proxyPort: listener.localAddress?.port ?? 0,
                tlsContext: try TunnelTLS.clientTLSContext(certificatePEM: node.cert, keyPEM: node.key, trustedCAPEMs: root.trusted),
                services: [:]),
            logger: Logger(label: "test.node"))
        let tunnel = try await agent.connect()
        try await Self.waitUntil { server.registry.isConnected("node-1") }
        #expect(server.clusters.connectedHosts.isEmpty)
        try await tunnel.channel.close()
        try await listener.close()
    }

    @Test("the trust roots are the root's CAs then each leaf's host CA; leaves are replaced as a whole")
    func trustRoots() throws {
        let root = try Cluster("root.example")
        let leaf = try Cluster("leaf.example")
        let trust = ClusterTunnelTrust(localCAPEMs: root.trusted)
        #expect(trust.trustedRootPEMs == root.trusted)
        #expect(trust.setLeaves(["leaf.example": [try leaf.hostCA.certificatePEM]]))
        #expect(trust.trustedRootPEMs == root.trusted + [try leaf.hostCA.certificatePEM])
        #expect(trust.leafNames == ["leaf.example"])
        #expect(trust.setLeaves([:]))
        #expect(trust.leafNames.isEmpty)
    }
}

extension ReverseTunnelTests.Cluster {
    /// A certificate signed by `signer`'s host CA that names another cluster (what a compromised
    /// or malicious leaf could mint).
    static func forged(by signer: ReverseTunnelTests.Cluster, claiming cluster: String, username: String, roles: [String]) throws -> (cert: String, key: String) {
        let key = P256.Signing.PrivateKey()
        let certificate = try signer.hostCA.issue(
            publicKey: key.publicKey, identity: X509Identity(username: username, roles: roles, clusterName: cluster), validity: 3600, clock: SystemClock())
        return (try certificate.pemText(), key.pemRepresentation)
    }
}
