import HummingbirdCore
import Logging
import NIOCore
import NIOEmbedded
import Testing
import TeleportWire

@testable import TeleportProxy

/// The web port's first handler, in process on an `EmbeddedChannel`: it holds bytes until the
/// ClientHello parses, decides once, holds reads until it leaves, then hands the bytes on.
@Suite("ClientHelloSniffer")
struct ClientHelloSnifferTests {
    /// A ClientHello (`openssl s_client -alpn teleport-auth,http/1.1 -servername proxy.example.com`).
    static let hello = ProxyHellos.alpnAndSNI

    static func make(deadline: TimeAmount = .seconds(10)) throws -> (EmbeddedChannel, ClientHelloSniffer, EventLoopFuture<ClientHelloSniffer.Outcome>) {
        let channel = EmbeddedChannel()
        let promise = channel.eventLoop.makePromise(of: ClientHelloSniffer.Outcome.self)
        let sniffer = ClientHelloSniffer(outcome: promise, deadline: deadline)
        try channel.pipeline.syncOperations.addHandler(sniffer)
        return (channel, sniffer, promise.futureResult)
    }

    @Test func decidesOnceTheHelloIsCompleteAndHandsTheBytesOn() throws {
        let (channel, sniffer, outcome) = try Self.make()
        var decided: ClientHelloSniffer.Outcome?
        outcome.whenSuccess { decided = $0 }
        // The ClientHello in three TCP reads: nothing passes on, no decision before the last.
        for piece in [Self.hello[0..<3], Self.hello[3..<100], Self.hello[100...]] {
            #expect(decided == nil)
            try channel.writeInbound(channel.allocator.buffer(bytes: Array(piece)))
            #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        }
        #expect(decided == .hello(sni: "proxy.example.com", alpn: ["teleport-auth", "http/1.1"]))
        // Bytes after the decision are held too; all come out, in order, once the sniffer leaves.
        try channel.writeInbound(channel.allocator.buffer(bytes: [1, 2, 3]))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        try channel.pipeline.syncOperations.removeHandler(sniffer).wait()
        let passed = try #require(try channel.readInbound(as: ByteBuffer.self))
        #expect(Array(passed.readableBytesView) == Self.hello + [1, 2, 3])
        _ = try channel.finish()
    }

    @Test func noClientHelloInTimeClosesTheConnection() throws {
        let (channel, _, outcome) = try Self.make(deadline: .seconds(10))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var failure: (any Error)?
        outcome.whenFailure { failure = $0 }
        try channel.writeInbound(channel.allocator.buffer(bytes: Array(Self.hello.prefix(40))))
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(failure == nil && channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(failure != nil)
        #expect(!channel.isActive)
    }

    @Test func aMalformedHelloClosesAtOnce() throws {
        let (channel, _, outcome) = try Self.make()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var failure: (any Error)?
        outcome.whenFailure { failure = $0 }
        try channel.writeInbound(channel.allocator.buffer(bytes: [0x16, 0x03, 0x01, 0xff, 0xff]))
        #expect(failure != nil)
        #expect(!channel.isActive)
    }

    @Test func aClientClosingMidHelloFailsTheDecision() throws {
        let (channel, _, outcome) = try Self.make()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var failure: (any Error)?
        outcome.whenFailure { failure = $0 }
        try channel.writeInbound(channel.allocator.buffer(bytes: Array(Self.hello.prefix(100))))
        channel.pipeline.fireChannelInactive()
        #expect(failure != nil)
        _ = try? channel.finish()
    }

    /// The web port allows half-closure: a client that half-closes mid-ClientHello is closed at
    /// once (not at the deadline), and so is an undecided client when the server shuts down.
    @Test(arguments: [true, false])
    func halfClosureAndShutdownCloseUndecidedClients(halfClose: Bool) throws {
        let (channel, _, outcome) = try Self.make()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var failure: (any Error)?
        outcome.whenFailure { failure = $0 }
        try channel.writeInbound(channel.allocator.buffer(bytes: Array(Self.hello.prefix(60))))
        channel.pipeline.fireUserInboundEventTriggered(halfClose ? ChannelEvent.inputClosed as Any : ChannelShouldQuiesceEvent() as Any)
        #expect(failure != nil)
        #expect(!channel.isActive)
    }

    @Test(arguments: [
        ("SSH-2.0-OpenSSH_9.2p1\r\n", PlaintextProbe.Kind.ssh), ("GET / HTTP/1.1\r\n\r\n", .http), ("\r\n\r\nxyz-garbage-line", .unknown),
    ])
    func plaintextIsNamed(text: String, kind: PlaintextProbe.Kind) throws {
        let (channel, _, outcome) = try Self.make()
        var decided: ClientHelloSniffer.Outcome?
        outcome.whenSuccess { decided = $0 }
        try channel.writeInbound(channel.allocator.buffer(string: text))
        #expect(decided == .plaintext(kind))
        _ = try? channel.finish()
    }

    /// The first protocol the client offers that has a route wins; unknown ones fall to the web.
    @Test func routeChoice() throws {
        let routes: [String: ALPNRoute] = [
            "teleport-auth": .passthrough(host: "127.0.0.1", port: 3025), "teleport-reversetunnel": .passthrough(host: "x", port: 1),
        ]
        typealias Router = ALPNRouterChannel<ProxyWebServerNoBase>
        #expect(Router.route(alpn: ["teleport-auth", "http/1.1"], routes: routes)?.0 == "teleport-auth")
        #expect(Router.route(alpn: ["http/1.1", "teleport-reversetunnel"], routes: routes)?.0 == "teleport-reversetunnel")
        #expect(Router.route(alpn: ["xyz"], routes: routes) == nil)
        #expect(Router.route(alpn: [], routes: routes) == nil)
        #expect(Router.route(alpn: ["teleport-proxy-ssh", "http/1.1", "h2"], routes: routes) == nil)
    }

    /// Server-name prefixes route what no ALPN route took: the longest prefix wins, any case; ALPN first.
    @Test func serverNameRouteChoice() throws {
        let routes: [String: ALPNRoute] = ["teleport-auth": .passthrough(host: "127.0.0.1", port: 3025)]
        let names: [String: ALPNRoute] = [
            "kube-teleport-proxy-alpn.": .passthrough(host: "k", port: 1), "kube-teleport-proxy-alpn.leaf.": .passthrough(host: "l", port: 2),
        ]
        typealias Router = ALPNRouterChannel<ProxyWebServerNoBase>
        func chosen(_ alpn: [String], _ sni: String?) -> String? {
            Router.route(alpn: alpn, sni: sni, routes: routes, serverNameRoutes: names)?.0
        }
        #expect(chosen(["h2"], "kube-teleport-proxy-alpn.teleport.example.com") == "sni:kube-teleport-proxy-alpn.")
        #expect(chosen([], "KUBE-teleport-proxy-alpn.leaf.example.com") == "sni:kube-teleport-proxy-alpn.leaf.")
        #expect(chosen(["teleport-auth"], "kube-teleport-proxy-alpn.x") == "teleport-auth")
        #expect(chosen(["http/1.1"], "proxy.example.com") == nil)
        #expect(chosen(["http/1.1"], nil) == nil)
        #expect(chosen([], "") == nil)
    }
}

/// A stand-in base channel for the router's generic parameter.
struct ProxyWebServerNoBase: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let channel: any Channel
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeSucceededFuture(Value(channel: channel))
    }

    func handle(value: Value, logger: Logger) async {}
}
