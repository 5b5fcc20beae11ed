import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import TeleportAPI
import TeleportCrypto
import Testing

@testable import TeleportProxy

/// A registered `.terminate` route on loopback: the router terminates TLS with the route's
/// context and hands the channel to the route's closure (here an echo), with the ClientHello
/// and everything after it delivered in order.
@Suite("ALPN router terminate route")
struct ALPNRouterTerminateTests {
    final class Echo: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(data, promise: nil)
        }
    }

    final class Collect: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let done: EventLoopPromise<String>
        var text = ""
        init(done: EventLoopPromise<String>) { self.done = done }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            text += String(buffer: unwrapInboundIn(data))
            if text.hasSuffix("\n") { done.succeed(text) }
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { done.fail(error) }
    }

    @Test(.timeLimit(.minutes(1)))
    func terminateRouteGetsTheChannelAfterTLS() async throws {
        let pair = try TLSAuthority.selfSignedServer(
            commonName: "router.test", names: .init(ipAddresses: ["127.0.0.1"]), clock: SystemClock())
        var serverTLS = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(pair.certificatePEM.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(pair.keyPEM.utf8), format: .pem)))
        serverTLS.applicationProtocols = ["teleport-test"]
        let context = try NIOSSLContext(configuration: serverTLS)
        let taken = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
        let router = ALPNRouterChannel(
            base: ProxyWebServerNoBase(), webContext: context,
            routes: [
                "teleport-test": .terminate(context) { channel in
                    taken.succeed(())
                    return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
                }
            ], deadline: .seconds(10), httpsAddress: "127.0.0.1:0", sshPort: 3023)
        let logger = Logger(label: "test")
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in router.setup(channel: channel, logger: logger).map { _ in } }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let port = try #require(server.localAddress?.port)

        var clientTLS = TLSConfiguration.makeClientConfiguration()
        clientTLS.certificateVerification = .none
        clientTLS.applicationProtocols = ["teleport-test", "http/1.1"]
        let clientContext = try NIOSSLContext(configuration: clientTLS)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let done = loop.makePromise(of: String.self)
        let client = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: clientContext, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(Collect(done: done))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        defer { client.close(promise: nil) }
        try await client.writeAndFlush(client.allocator.buffer(string: "ping through the router\n")).get()
        #expect(try await done.futureResult.get() == "ping through the router\n")
        try await taken.futureResult.get()
    }
}
