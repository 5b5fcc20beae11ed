import Logging
import NIOCore
import Synchronization
@testable import TeleportTunnel
import Testing

/// The agent's multi-proxy loop over loopback: two proxies behind one "address" that alternates
/// between them (round-robin DNS, as the agent sees it), real mutual TLS and SSH. The agent holds a
/// tunnel to each; duplicate dials are closed before login (the proxy's newest-wins registry keeps
/// the first tunnel); a proxy dropped from the cluster's list loses its tunnel.
@Suite(.timeLimit(.minutes(3))) struct ReverseTunnelAgentPoolTests {
    typealias Cluster = ReverseTunnelTests.Cluster
    typealias Proxy = ReverseTunnelTests.Proxy

    /// What the fake cluster answers: the listed proxies, and how many dials each port got.
    final class Fake: Sendable {
        let listed = Mutex<[String]>([])
        let dials = Mutex(0)
        let ports: [Int]
        init(ports: [Int]) { self.ports = ports }

        func next() -> (host: String, port: Int) {
            let index = dials.withLock { count -> Int in
                defer { count += 1 }
                return count
            }
            return ("127.0.0.1", ports[index % ports.count])
        }
    }

    func eventually(_ condition: () -> Bool) async throws -> Bool {
        // Wide: the whole suite runs in parallel on two cores.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    @Test("a tunnel to each listed proxy through one alternating address; duplicates never displace a tunnel; a delisted proxy loses its tunnel")
    func tunnelToEachProxy() async throws {
        let cluster = try Cluster("pool")
        let first = try await Proxy(cluster: cluster, name: "proxy-1")
        let second = try await Proxy(cluster: cluster, name: "proxy-2")
        let fake = Fake(ports: [first.port, first.port, first.port, second.port])
        fake.listed.withLock { $0 = ["proxy-1", "proxy-2"] }
        let node = try cluster.identity(cluster.hostCA, username: "node-1.pool", roles: ["Node"])
        var configuration = ReverseTunnelAgent.Configuration(
            hostUUID: "node-1", clusterName: "pool", proxyHost: "balancer.invalid", proxyPort: 3080,
            tlsContext: try TunnelTLS.clientTLSContext(certificatePEM: node.cert, keyPEM: node.key, trustedCAPEMs: cluster.trusted),
            services: [.nodeSSH: { channel, _ in channel.eventLoop.makeSucceededVoidFuture() }]
        ).resolving { fake.next() }
        configuration.discoverProxies = { fake.listed.withLock { $0 } }
        configuration.discoveryInterval = .milliseconds(100)
        configuration.pool.initialBackoff = .milliseconds(20)
        configuration.pool.maxBackoff = .milliseconds(100)
        let agent = ReverseTunnelAgent(configuration: configuration, logger: Logger(label: "test.agent"))
        let running = Task { await agent.run() }
        defer { running.cancel() }

        // Three dials land on proxy-1 (two duplicates) before one reaches proxy-2.
        let both = try await eventually { first.server.registry.isConnected("node-1") && second.server.registry.isConnected("node-1") }
        #expect(both, "proxy-1: \(first.server.registry.isConnected("node-1")), proxy-2: \(second.server.registry.isConnected("node-1"))")
        let since = first.server.registry.connectedSince("node-1")
        #expect(fake.dials.withLock { $0 } >= 4)
        // Holding both, the agent dials no more, and proxy-1 still has its first tunnel.
        let settled = fake.dials.withLock { $0 }
        try await Task.sleep(for: .milliseconds(500))
        #expect(fake.dials.withLock { $0 } == settled, "the agent kept dialling while it held every proxy")
        #expect(first.server.registry.connectedSince("node-1") == since, "a duplicate dial replaced the tunnel")

        // proxy-2's record disappears: its tunnel is closed; proxy-1's stays.
        fake.listed.withLock { $0 = ["proxy-1"] }
        #expect(try await eventually { !second.server.registry.isConnected("node-1") }, "the delisted proxy kept its tunnel")
        #expect(first.server.registry.isConnected("node-1"))

        // proxy-1's tunnel ends (the proxy closes it): the agent dials again and gets it back.
        first.server.registry.close("node-1")
        #expect(try await eventually { first.server.registry.isConnected("node-1") }, "the lost tunnel was not redialled")

        running.cancel()
        try await first.listener.close()
        try await second.listener.close()
    }
}
