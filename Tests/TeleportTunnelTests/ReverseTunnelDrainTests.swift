import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import TeleportAPI
@testable import TeleportTunnel
import Testing

/// A graceful restart of a proxy over loopback: two servers with the same proxy identity stand for
/// the draining process and its successor; the address the agent dials moves from the old to the
/// new one (as the shared listening socket does). The old one's drain notice (a `tcpip-forward`
/// for `draining@teleport`) makes the agent dial the new one while an open channel goes on through
/// the old tunnel, which the agent closes once that channel ends. Real mutual TLS and SSH.
@Suite(.timeLimit(.minutes(3))) struct ReverseTunnelDrainTests {
    typealias Cluster = ReverseTunnelTests.Cluster
    typealias Proxy = ReverseTunnelTests.Proxy
    typealias Echo = ReverseTunnelTests.Echo
    typealias Collect = ReverseTunnelTests.Collect

    /// The address the agent dials: the old process's port until `moved`, then the new one's.
    final class Address: Sendable {
        let ports: (old: Int, new: Int)
        let moved = Mutex(false)
        let dials = Mutex(0)
        init(old: Int, new: Int) { ports = (old, new) }
        func next() -> (host: String, port: Int) {
            dials.withLock { $0 += 1 }
            return ("127.0.0.1", moved.withLock { $0 } ? ports.new : ports.old)
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

    func agent(cluster: Cluster, address: Address, pool: Bool) throws -> ReverseTunnelAgent {
        let node = try cluster.identity(cluster.hostCA, username: "node-1.\(cluster.name)", roles: ["Node"])
        var configuration = ReverseTunnelAgent.Configuration(
            hostUUID: "node-1", clusterName: cluster.name, proxyHost: "unused.invalid", proxyPort: 3080,
            tlsContext: try TunnelTLS.clientTLSContext(certificatePEM: node.cert, keyPEM: node.key, trustedCAPEMs: cluster.trusted),
            services: [.nodeSSH: { channel, _ in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) } }]
        ).resolving { address.next() }
        configuration.reconnect.initialBackoff = .milliseconds(50)
        configuration.reconnect.maxBackoff = .milliseconds(200)
        configuration.reconnect.redialSpread = .milliseconds(100)
        if pool {
            configuration.discoverProxies = { ["proxy-1"] }
            configuration.discoveryInterval = .milliseconds(100)
            configuration.pool.initialBackoff = .milliseconds(50)
            configuration.pool.maxBackoff = .milliseconds(200)
            configuration.pool.redialSpread = .milliseconds(100)
        }
        return ReverseTunnelAgent(configuration: configuration, logger: Logger(label: "test.agent"))
    }

    /// Opens a node-ssh channel from `proxy` and checks that it echoes.
    func openEcho(_ proxy: Proxy) async throws -> (channel: any Channel, done: EventLoopFuture<String>) {
        let done = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: String.self)
        do {
            let channel = try await proxy.server.openChannel(to: "node-1", service: .nodeSSH, originator: nil) { channel in
                try channel.pipeline.syncOperations.addHandler(Collect(done: done))
            }.get()
            return (channel, done.futureResult)
        } catch {
            done.fail(error)
            throw error
        }
    }

    @Test(
        "the draining proxy's notice: the agent dials the new process, the open channel goes on through the old tunnel, which closes when it ends",
        arguments: [true, false])
    func drainNoticeMovesTheTunnel(pool: Bool) async throws {
        let cluster = try Cluster("drain")
        let old = try await Proxy(cluster: cluster, name: "proxy-1")
        let new = try await Proxy(cluster: cluster, name: "proxy-1")
        let address = Address(old: old.port, new: new.port)
        let agent = try agent(cluster: cluster, address: address, pool: pool)
        let running = Task { await agent.run() }
        defer { running.cancel() }
        try await old.waitConnected("node-1")

        // A session open through the old process's tunnel.
        let session = try await openEcho(old)
        // The old process stops accepting (the address now reaches the new one) and tells its agents.
        address.moved.withLock { $0 = true }
        #expect(old.server.announceDraining() == 1)
        #expect(try await eventually { new.server.registry.isConnected("node-1") }, "the agent did not dial the new process")
        // The old tunnel stays for the open channel, which still works.
        #expect(old.server.registry.isConnected("node-1"), "the draining tunnel closed under an open channel")
        try await session.channel.writeAndFlush(ByteBuffer(string: "across the restart")).get()
        try await session.channel.close(mode: .output).get()
        #expect(try await session.done.get() == "across the restart")
        // The channel ended: the agent closes the draining tunnel; the new one stays, no more dials.
        #expect(try await eventually { !old.server.registry.isConnected("node-1") }, "the draining tunnel outlived its channels")
        let dials = address.dials.withLock { $0 }
        try await Task.sleep(for: .milliseconds(600))
        #expect(new.server.registry.isConnected("node-1"))
        #expect(address.dials.withLock { $0 } == dials, "the agent dialled again after the draining tunnel ended")
        let after = try await openEcho(new)
        try await after.channel.writeAndFlush(ByteBuffer(string: "new process")).get()
        try await after.channel.close(mode: .output).get()
        #expect(try await after.done.get() == "new process")

        running.cancel()
        try await old.listener.close()
        try await new.listener.close()
    }

    @Test("a drain notice on a tunnel without channels closes it at once; the agent is on the new process", arguments: [true, false])
    func idleTunnelClosesAtOnce(pool: Bool) async throws {
        let cluster = try Cluster("drain")
        let old = try await Proxy(cluster: cluster, name: "proxy-1")
        let new = try await Proxy(cluster: cluster, name: "proxy-1")
        let address = Address(old: old.port, new: new.port)
        let agent = try agent(cluster: cluster, address: address, pool: pool)
        let running = Task { await agent.run() }
        defer { running.cancel() }
        try await old.waitConnected("node-1")
        address.moved.withLock { $0 = true }
        old.server.announceDraining()
        #expect(try await eventually { !old.server.registry.isConnected("node-1") && new.server.registry.isConnected("node-1") })
        running.cancel()
        try await old.listener.close()
        try await new.listener.close()
    }

    @Test("a retired agent (its own process stops accepting) dials no more; its tunnel closes once its channel ends")
    func retiredAgent() async throws {
        let cluster = try Cluster("drain")
        let proxy = try await Proxy(cluster: cluster, name: "proxy-1")
        let address = Address(old: proxy.port, new: proxy.port)
        let agent = try agent(cluster: cluster, address: address, pool: true)
        let running = Task { await agent.run() }
        defer { running.cancel() }
        try await proxy.waitConnected("node-1")
        let session = try await openEcho(proxy)
        agent.retire()
        try await Task.sleep(for: .milliseconds(300))
        #expect(proxy.server.registry.isConnected("node-1"), "the retired agent closed a tunnel that carries a channel")
        try await session.channel.writeAndFlush(ByteBuffer(string: "still served")).get()
        try await session.channel.close(mode: .output).get()
        #expect(try await session.done.get() == "still served")
        #expect(try await eventually { !proxy.server.registry.isConnected("node-1") }, "the retired agent kept its idle tunnel")
        let dials = address.dials.withLock { $0 }
        try await Task.sleep(for: .milliseconds(600))
        #expect(address.dials.withLock { $0 } == dials, "a retired agent dialled again")
        #expect(!proxy.server.registry.isConnected("node-1"))
        running.cancel()
        try await proxy.listener.close()
    }

    @Test("a young proxy waits for a missing tunnel (woken when it registers); an old one, or after the wait, fails at once")
    func youngProxyWaitsForTheTunnel() async throws {
        let cluster = try Cluster("drain")
        let proxy = try await Proxy(cluster: cluster, name: "proxy-1")
        // Not marked as accepting: no wait.
        let started = ContinuousClock.now
        await #expect(throws: TeleportError.self) { _ = try await openEcho(proxy) }
        #expect(ContinuousClock.now - started < .seconds(5))
        proxy.server.startedAccepting()
        // The channel is asked for first; the agent connects a moment later.
        let address = Address(old: proxy.port, new: proxy.port)
        let agent = try agent(cluster: cluster, address: address, pool: false)
        async let session = openEcho(proxy)
        try await Task.sleep(for: .milliseconds(300))
        let running = Task { await agent.run() }
        defer { running.cancel() }
        let opened = try await session
        try await opened.channel.writeAndFlush(ByteBuffer(string: "waited")).get()
        try await opened.channel.close(mode: .output).get()
        #expect(try await opened.done.get() == "waited")
        running.cancel()
        try await proxy.listener.close()
    }

    @Test("a young proxy's wait is bounded: no tunnel in time is the usual one-line error")
    func youngProxyWaitIsBounded() async throws {
        let cluster = try Cluster("drain")
        let identity = try cluster.identity(cluster.hostCA, username: "proxy-1.drain", roles: ["Proxy"])
        var configuration = ReverseTunnelServer.Configuration(
            clusterName: cluster.name,
            tlsContext: try ReverseTunnelServer.serverTLSContext(certificatePEM: identity.cert, keyPEM: identity.key, trustedCAPEMs: cluster.trusted))
        configuration.tunnelWait = .seconds(1)
        let server = ReverseTunnelServer(configuration: configuration, logger: Logger(label: "test.proxy"))
        server.startedAccepting()
        let started = ContinuousClock.now
        let error = await #expect(throws: TeleportError.self) {
            _ = try await server.openChannel(to: "node-9", service: .nodeSSH, originator: nil) { _ in }.get()
        }
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(900) && waited < .seconds(30), "waited \(waited)")
        #expect(error?.message.contains("has none to this proxy now") == true)
    }

    @Test("a newer tunnel of the host takes new channels; the superseded one stays for its open channel and closes after it")
    func supersededTunnelKeepsItsChannel() async throws {
        let cluster = try Cluster("drain")
        let proxy = try await Proxy(cluster: cluster, name: "proxy-1")
        let address = Address(old: proxy.port, new: proxy.port)
        // Two single-tunnel dials of one host (a node restarted gracefully: its old and new process).
        let first = try await agent(cluster: cluster, address: address, pool: false).connect()
        try await proxy.waitConnected("node-1")
        let session = try await openEcho(proxy)
        let before = try #require(proxy.server.registry.entry("node-1")?.channel)
        let second = try await agent(cluster: cluster, address: address, pool: false).connect()
        #expect(try await eventually { proxy.server.registry.entry("node-1").map { $0.channel !== before } ?? false })
        #expect(before.isActive, "the proxy closed the superseded tunnel under an open channel")
        #expect(first.channel.isActive, "the superseded tunnel closed under an open channel")
        try await session.channel.writeAndFlush(ByteBuffer(string: "old session")).get()
        try await session.channel.close(mode: .output).get()
        #expect(try await session.done.get() == "old session")
        try await first.channel.closeFuture.get()
        #expect(second.channel.isActive)
        #expect(proxy.server.registry.isConnected("node-1"))
        try await second.channel.close()
        try await proxy.listener.close()
    }

    @Test("closing a host's tunnels (a lock, a removed node) also ends a superseded one that still carries a channel")
    func closeEndsSupersededTunnels() async throws {
        let cluster = try Cluster("drain")
        let proxy = try await Proxy(cluster: cluster, name: "proxy-1")
        let address = Address(old: proxy.port, new: proxy.port)
        let first = try await agent(cluster: cluster, address: address, pool: false).connect()
        try await proxy.waitConnected("node-1")
        let session = try await openEcho(proxy)
        let before = try #require(proxy.server.registry.entry("node-1")?.channel)
        let second = try await agent(cluster: cluster, address: address, pool: false).connect()
        #expect(try await eventually { proxy.server.registry.entry("node-1").map { $0.channel !== before } ?? false })
        #expect(first.channel.isActive)
        #expect(proxy.server.registry.close("node-1"))
        try await first.channel.closeFuture.get()
        try await second.channel.closeFuture.get()
        _ = try? await session.done.get()
        try await proxy.listener.close()
    }
}
