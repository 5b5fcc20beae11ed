import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import TeleportAPI
import TeleportCrypto
@testable import TeleportTunnel
import Testing
import X509

/// An agent and a proxy over loopback with certificates made here: real mutual TLS, the SSH
/// multiplexer, service channels, and every refusal the issue lists.
@Suite(.timeLimit(.minutes(1))) struct ReverseTunnelTests {
    /// A cluster's CAs and a way to issue identities.
    struct Cluster {
        let name: String
        let hostCA: TLSAuthority
        let userCA: TLSAuthority

        /// What a host's `ca.crt` holds: the host and user CAs.
        let trusted: [String]

        init(_ name: String) throws {
            self.name = name
            hostCA = try TLSAuthority.generate(clusterName: name, type: "host", clock: SystemClock())
            userCA = try TLSAuthority.generate(clusterName: name, type: "user", clock: SystemClock())
            trusted = [try hostCA.certificatePEM, try userCA.certificatePEM]
        }

        func identity(_ authority: TLSAuthority, username: String, roles: [String]) throws -> (cert: String, key: String) {
            let key = P256.Signing.PrivateKey()
            let certificate = try authority.issue(
                publicKey: key.publicKey, identity: X509Identity(username: username, roles: roles, clusterName: name), validity: 3600,
                clock: SystemClock())
            return (try certificate.pemText(), key.pemRepresentation)
        }
    }

    /// A proxy listening on loopback, with the refusals it logged.
    final class Proxy: Sendable {
        let server: ReverseTunnelServer
        let listener: any Channel
        var port: Int { listener.localAddress?.port ?? 0 }

        init(cluster: Cluster, name: String = "proxy-1") async throws {
            let identity = try cluster.identity(cluster.hostCA, username: "\(name).\(cluster.name)", roles: ["Proxy"])
            var configuration = ReverseTunnelServer.Configuration(
                clusterName: cluster.name,
                tlsContext: try ReverseTunnelServer.serverTLSContext(
                    certificatePEM: identity.cert, keyPEM: identity.key, trustedCAPEMs: cluster.trusted))
            let refusals = Seen()
            configuration.onRefused = { _, reason in refusals.value.withLock { $0.append(reason) } }
            server = ReverseTunnelServer(configuration: configuration, logger: Logger(label: "test.proxy"))
            listener = try await server.listen(host: "127.0.0.1", port: 0)
            self.refusalsBox = refusals
        }

        let refusalsBox: Seen
        var refused: [String] { refusalsBox.value.withLock { $0 } }

        func waitForRefusal() async throws -> String {
            for _ in 0..<200 {
                if let first = refused.first { return first }
                try await Task.sleep(for: .milliseconds(20))
            }
            Issue.record("the proxy logged no refusal")
            return ""
        }

        func waitConnected(_ uuid: String) async throws {
            for _ in 0..<200 {
                if server.registry.isConnected(uuid) { return }
                try await Task.sleep(for: .milliseconds(20))
            }
            Issue.record("the tunnel of \(uuid) was not registered")
        }
    }

    /// Echoes bytes; on end of file it closes its output (so the proxy sees EOF back).
    final class Echo: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(data, promise: nil)
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? ChannelEvent, case .inputClosed = event { context.close(mode: .output, promise: nil) }
        }
    }

    /// Collects bytes until end of file.
    final class Collect: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let done: EventLoopPromise<String>
        var text = ""
        init(done: EventLoopPromise<String>) { self.done = done }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            text += String(buffer: unwrapInboundIn(data))
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? ChannelEvent, case .inputClosed = event { done.succeed(text) }
        }
        func channelInactive(context: ChannelHandlerContext) { done.succeed(text) }
    }

    final class Seen: Sendable {
        let value = Mutex<[String]>([])
    }

    func agent(cluster: Cluster, uuid: String, certificate: (cert: String, key: String), port: Int, seen: Seen? = nil)
        throws -> ReverseTunnelAgent
    {
        let echo: ReverseTunnelAgent.ServiceHandler = { channel, originator in
            seen?.value.withLock { $0.append(originator.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "-") }
            return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
        }
        return ReverseTunnelAgent(
            configuration: .init(
                hostUUID: uuid, clusterName: cluster.name, proxyHost: "127.0.0.1", proxyPort: port,
                tlsContext: try TunnelTLS.clientTLSContext(certificatePEM: certificate.cert, keyPEM: certificate.key, trustedCAPEMs: cluster.trusted),
                services: [.nodeSSH: echo]),
            logger: Logger(label: "test.agent"))
    }

    @Test("a channel to node-ssh reaches the agent's service, with the originator, and half-close maps both ways")
    func serviceChannel() async throws {
        let cluster = try Cluster("c1")
        let proxy = try await Proxy(cluster: cluster)
        let seen = Seen()
        let node = try cluster.identity(cluster.hostCA, username: "node-1.c1", roles: ["Node"])
        let tunnel = try await agent(cluster: cluster, uuid: "node-1", certificate: node, port: proxy.port, seen: seen).connect()
        try await proxy.waitConnected("node-1")
        let done = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: String.self)
        let channel = try await proxy.server.openChannel(
            to: "node-1", service: .nodeSSH, originator: try SocketAddress(ipAddress: "10.1.2.3", port: 4567)
        ) { channel in
            try channel.pipeline.syncOperations.addHandler(Collect(done: done))
        }.get()
        try await channel.writeAndFlush(ByteBuffer(string: "hello through the tunnel")).get()
        try await channel.close(mode: .output).get()
        #expect(try await done.futureResult.get() == "hello through the tunnel")
        #expect(seen.value.withLock { $0 } == ["10.1.2.3:4567"])
        try await tunnel.channel.close()
        try await proxy.listener.close()
    }

    @Test("a channel naming an address or an unknown service is refused by the agent", arguments: ["127.0.0.1", "db", "169.254.169.254", ""])
    func addressRefused(listeningHost: String) async throws {
        let cluster = try Cluster("c1")
        let proxy = try await Proxy(cluster: cluster)
        let node = try cluster.identity(cluster.hostCA, username: "node-1.c1", roles: ["Node"])
        let tunnel = try await agent(cluster: cluster, uuid: "node-1", certificate: node, port: proxy.port).connect()
        try await proxy.waitConnected("node-1")
        await #expect(throws: TeleportError.self) {
            _ = try await proxy.server.open(to: "node-1", listeningHost: listeningHost, listeningPort: 22, originator: nil) { _ in }.get()
        }
        // The tunnel survives a refused channel.
        let done = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: String.self)
        let channel = try await proxy.server.openChannel(to: "node-1", service: .nodeSSH, originator: nil) { channel in
            try channel.pipeline.syncOperations.addHandler(Collect(done: done))
        }.get()
        try await channel.writeAndFlush(ByteBuffer(string: "still up")).get()
        try await channel.close(mode: .output).get()
        #expect(try await done.futureResult.get() == "still up")
        try await tunnel.channel.close()
        try await proxy.listener.close()
    }

    @Test("a node certificate issued for another UUID than the SSH user is refused")
    func otherUUID() async throws {
        let cluster = try Cluster("c1")
        let proxy = try await Proxy(cluster: cluster)
        let other = try cluster.identity(cluster.hostCA, username: "node-2.c1", roles: ["Node"])
        await #expect(throws: TeleportError.self) {
            _ = try await agent(cluster: cluster, uuid: "node-1", certificate: other, port: proxy.port).connect()
        }
        let reason = try await proxy.waitForRefusal()
        #expect(reason.contains("\"node-1\" is not the certificate's host UUID node-2"))
        #expect(!proxy.server.registry.isConnected("node-1") && !proxy.server.registry.isConnected("node-2"))
        try await proxy.listener.close()
    }

    @Test("a user certificate cannot open a tunnel")
    func userCertificate() async throws {
        let cluster = try Cluster("c1")
        let proxy = try await Proxy(cluster: cluster)
        let user = try cluster.identity(cluster.userCA, username: "alice", roles: ["access"])
        await #expect(throws: TeleportError.self) {
            _ = try await agent(cluster: cluster, uuid: "alice", certificate: user, port: proxy.port).connect()
        }
        let reason = try await proxy.waitForRefusal()
        #expect(reason.contains("a user certificate (alice) cannot open a tunnel"))
        #expect(proxy.server.registry.connectedHosts.isEmpty)
        try await proxy.listener.close()
    }

    @Test("a proxy certificate cannot open a tunnel (only nodes' can)")
    func proxyCertificate() async throws {
        let cluster = try Cluster("c1")
        let proxy = try await Proxy(cluster: cluster)
        let impostor = try cluster.identity(cluster.hostCA, username: "proxy-2.c1", roles: ["Proxy"])
        await #expect(throws: TeleportError.self) {
            _ = try await agent(cluster: cluster, uuid: "proxy-2", certificate: impostor, port: proxy.port).connect()
        }
        #expect(try await proxy.waitForRefusal().contains("a Proxy certificate cannot open a tunnel"))
        try await proxy.listener.close()
    }

    @Test("a host certificate of another cluster (another CA) is refused at the TLS handshake")
    func otherCluster() async throws {
        let cluster = try Cluster("c1")
        let foreign = try Cluster("c2")
        let proxy = try await Proxy(cluster: cluster)
        let node = try foreign.identity(foreign.hostCA, username: "node-1.c2", roles: ["Node"])
        // The agent trusts c1 (it would reach the proxy), but presents c2's certificate.
        let agent = ReverseTunnelAgent(
            configuration: .init(
                hostUUID: "node-1", clusterName: "c1", proxyHost: "127.0.0.1", proxyPort: proxy.port,
                tlsContext: try TunnelTLS.clientTLSContext(certificatePEM: node.cert, keyPEM: node.key, trustedCAPEMs: cluster.trusted),
                services: [:]),
            logger: Logger(label: "test.agent"))
        await #expect(throws: (any Error).self) { _ = try await agent.connect() }
        #expect(try await proxy.waitForRefusal().contains("TLS handshake failed"))
        #expect(proxy.server.registry.connectedHosts.isEmpty)
        try await proxy.listener.close()
    }

    @Test("an agent refuses a proxy whose certificate is not a Proxy certificate of its cluster")
    func agentChecksProxy() async throws {
        let cluster = try Cluster("c1")
        // A "proxy" that presents a Node certificate.
        let fake = try cluster.identity(cluster.hostCA, username: "node-9.c1", roles: ["Node"])
        let server = ReverseTunnelServer(
            configuration: .init(
                clusterName: "c1",
                tlsContext: try ReverseTunnelServer.serverTLSContext(certificatePEM: fake.cert, keyPEM: fake.key, trustedCAPEMs: cluster.trusted)),
            logger: Logger(label: "test.fake"))
        let listener = try await server.listen(host: "127.0.0.1", port: 0)
        let node = try cluster.identity(cluster.hostCA, username: "node-1.c1", roles: ["Node"])
        let error = await #expect(throws: TeleportError.self) {
            _ = try await agent(cluster: cluster, uuid: "node-1", certificate: node, port: listener.localAddress?.port ?? 0).connect()
        }
        #expect(error?.message.contains("cannot open a tunnel; it needs a Proxy host certificate") == true)
        try await listener.close()
    }

    @Test("the newest tunnel of a host wins; closing the registry entry closes the tunnel")
    func newestWinsAndClose() async throws {
        let cluster = try Cluster("c1")
        let proxy = try await Proxy(cluster: cluster)
        let node = try cluster.identity(cluster.hostCA, username: "node-1.c1", roles: ["Node"])
        let first = try await agent(cluster: cluster, uuid: "node-1", certificate: node, port: proxy.port).connect()
        try await proxy.waitConnected("node-1")
        let second = try await agent(cluster: cluster, uuid: "node-1", certificate: node, port: proxy.port).connect()
        try await first.channel.closeFuture.get()
        #expect(second.channel.isActive)
        #expect(proxy.server.registry.close("node-1"))
        try await second.channel.closeFuture.get()
        #expect(!proxy.server.registry.isConnected("node-1"))
        try await proxy.listener.close()
    }
}
