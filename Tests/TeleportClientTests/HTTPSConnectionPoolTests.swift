import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOSSL
import TeleportAPI
import Testing

@testable import TeleportAuthClient

/// The auth client's kept connections: the reply reader and the pool's rules.
@Suite("auth client: kept HTTPS connections")
struct HTTPSConnectionPoolTests {
    func connection(maxBody: Int = 1 << 20) throws -> (HTTPSConnection, EmbeddedChannel) {
        let collector = ReplyCollector(maxBodyBytes: maxBody, describe: "the auth service at test:3025")
        let channel = EmbeddedChannel(handler: collector)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 3025)).wait()
        return (HTTPSConnection(channel: channel, collector: collector, recorder: FirstErrorRecorder()), channel)
    }

    func expect(_ connection: HTTPSConnection, _ channel: EmbeddedChannel) -> EventLoopFuture<ReplyCollector.Reply> {
        let promise = channel.eventLoop.makePromise(of: ReplyCollector.Reply.self)
        connection.collector.expect(promise)
        return promise.futureResult
    }

    @Test("replies are read one after another on one connection; keep-alive follows the server's answer")
    func repliesInTurn() throws {
        let (connection, channel) = try connection()
        let first = expect(connection, channel)
        try channel.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        try channel.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "{\"a\":")))
        try channel.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "1}")))
        try channel.writeInbound(HTTPClientResponsePart.end(nil))
        let reply = try first.wait()
        #expect(reply.status == 200 && reply.body == Data("{\"a\":1}".utf8) && reply.keepAlive)

        let second = expect(connection, channel)
        var head = HTTPResponseHead(version: .http1_1, status: .notFound)
        head.headers.add(name: "Connection", value: "close")
        try channel.writeInbound(HTTPClientResponsePart.head(head))
        try channel.writeInbound(HTTPClientResponsePart.end(nil))
        let closing = try second.wait()
        #expect(closing.status == 404 && closing.body.isEmpty && !closing.keepAlive, "the second reply starts empty and says close")
    }

    @Test("a connection that ends before a reply began is told apart from one cut mid-reply; a body over the cap fails")
    func endings() throws {
        let (idle, idleChannel) = try connection()
        let waiting = expect(idle, idleChannel)
        idleChannel.pipeline.fireChannelInactive()
        #expect(throws: ReplyCollector.ClosedBeforeReply.self) { try waiting.wait() }

        let (cut, cutChannel) = try connection()
        let midway = expect(cut, cutChannel)
        try cutChannel.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        cutChannel.pipeline.fireChannelInactive()
        do {
            _ = try midway.wait()
            Issue.record("a reply cut midway must fail")
        } catch let error as TeleportError {
            #expect(error.code == .connectionProblem && error.message.contains("mid-reply"), "\(error)")
        }

        let (big, bigChannel) = try connection(maxBody: 8)
        let large = expect(big, bigChannel)
        try bigChannel.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        try bigChannel.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "0123456789")))
        do {
            _ = try large.wait()
            Issue.record("a body over the cap must fail")
        } catch let error as TeleportError {
            #expect(error.code == .limitExceeded, "\(error)")
        }
        #expect(!bigChannel.isActive, "the connection is closed")
    }

    @Test("the pool gives back an open connection of the same server and identity only, and keeps at most four")
    func poolRules() throws {
        let pool = HTTPSConnectionPool()
        let context = try NIOSSLContext(configuration: .makeClientConfiguration())
        let other = try NIOSSLContext(configuration: .makeClientConfiguration())
        let key = HTTPSConnectionPool.Key(host: "127.0.0.1", port: 3025, context: context)
        #expect(pool.take(key) == nil)

        let (first, _) = try connection()
        pool.put(first, key)
        #expect(pool.take(HTTPSConnectionPool.Key(host: "127.0.0.1", port: 3025, context: other)) == nil, "another identity")
        #expect(pool.take(HTTPSConnectionPool.Key(host: "127.0.0.1", port: 3026, context: context)) == nil, "another server")
        #expect(pool.take(key) === first)
        #expect(pool.take(key) == nil, "taken once")

        let (closed, closedChannel) = try connection()
        pool.put(closed, key)
        try closedChannel.close().wait()
        #expect(pool.take(key) == nil, "a connection the server closed is not given out")

        var channels: [EmbeddedChannel] = []
        for _ in 0..<6 {
            let (extra, channel) = try connection()
            channels.append(channel)
            pool.put(extra, key)
        }
        #expect(pool.count == HTTPSConnectionPool.maxIdle)
        #expect(channels.filter(\.isActive).count == HTTPSConnectionPool.maxIdle, "the extra ones are closed")
    }
}
