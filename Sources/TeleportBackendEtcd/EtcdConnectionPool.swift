import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import TeleportAPI

/// Keep-alive connections to etcd's gateway for unary calls (watches keep their own connection):
/// a call takes an idle connection of its peer (or opens one), sends its request, and gives the
/// connection back when the reply ended and the server did not say `Connection: close`. At most
/// `maxIdle` idle connections per peer; one idle longer than `idleTimeout` is closed. A reused
/// connection that fails before any byte of the reply arrived (the server closed it while idle) is
/// dropped and the call is sent once more on a new connection.
final class EtcdConnectionPool: Sendable {
    private struct Idle {
        var connection: EtcdKeepAliveConnection
        var since: ContinuousClock.Instant
    }

    private struct State {
        var idle: [String: [Idle]] = [:]
        var closed = false
    }

    private let state = Mutex(State())
    /// Connections opened so far (a figure for tests and benchmarks).
    let opened = Atomic<Int>(0)
    let maxIdle: Int
    let idleTimeout: Duration

    init(maxIdle: Int = 16, idleTimeout: Duration = .seconds(30)) {
        self.maxIdle = maxIdle
        self.idleTimeout = idleTimeout
    }

    /// The most recently used idle connection to `peer` that is still open and fresh, if any.
    func take(_ peer: String) -> EtcdKeepAliveConnection? {
        let now = ContinuousClock.now
        var stale: [EtcdKeepAliveConnection] = []
        let found = state.withLock { state -> EtcdKeepAliveConnection? in
            while let last = state.idle[peer]?.popLast() {
                if now - last.since < idleTimeout, last.connection.isActive { return last.connection }
                stale.append(last.connection)
            }
            return nil
        }
        for connection in stale { connection.close() }
        return found
    }

    /// Keeps `connection` for the next call to `peer` (or closes it: the pool is full or closed).
    func giveBack(_ connection: EtcdKeepAliveConnection, _ peer: String) {
        let kept = state.withLock { state -> Bool in
            guard !state.closed, connection.isActive, state.idle[peer, default: []].count < maxIdle else { return false }
            state.idle[peer, default: []].append(Idle(connection: connection, since: .now))
            return true
        }
        if !kept { connection.close() }
    }

    /// Closes every idle connection; later ones given back are closed too.
    func closeAll() {
        let all = state.withLock { state -> [EtcdKeepAliveConnection] in
            state.closed = true
            let all = state.idle.values.flatMap { $0.map(\.connection) }
            state.idle = [:]
            return all
        }
        for connection in all { connection.close() }
    }
}

/// Why a kept-alive exchange failed: the connection went (`receivedAny`: part of the reply had
/// arrived, so the request was surely processed), or the reply was too large.
enum EtcdExchangeFailure: Error {
    case lost(receivedAny: Bool, reason: String)
    case tooLarge(limit: Int)
}

/// One reply read whole.
struct EtcdCollectedReply: Sendable {
    var status: Int
    var body: Data
    var keepAlive: Bool
}

/// One HTTP/1.1 connection that carries one request at a time and stays open between them.
final class EtcdKeepAliveConnection: Sendable {
    let channel: any Channel
    private let collector: NIOLoopBound<EtcdReplyCollector>

    private init(channel: any Channel, collector: NIOLoopBound<EtcdReplyCollector>) {
        self.channel = channel
        self.collector = collector
    }

    var isActive: Bool { channel.isActive }

    /// Connects (TLS when `sslContext` is given) with the HTTP client handlers and a collector.
    static func open(host: String, port: Int, sslContext: NIOSSLContext?, serverName: String?) async throws -> EtcdKeepAliveConnection {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(EtcdReplyCollector())
                }
            }
            .connect(host: host, port: port).get()
        let collector = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: EtcdReplyCollector.self), eventLoop: channel.eventLoop)
        }.get()
        return EtcdKeepAliveConnection(channel: channel, collector: collector)
    }

    /// Sends one request and reads its reply (at most `limit` bytes of body).
    func exchange(_ head: HTTPRequestHead, body: Data, limit: Int) async throws -> EtcdCollectedReply {
        let promise = channel.eventLoop.makePromise(of: EtcdCollectedReply.self)
        let channel = self.channel
        let collector = self.collector
        channel.eventLoop.execute {
            guard collector.value.start(promise, limit: limit) else { return }
            channel.write(NIOAny(HTTPClientRequestPart.head(head)), promise: nil)
            channel.write(NIOAny(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            channel.writeAndFlush(NIOAny(HTTPClientRequestPart.end(nil)), promise: nil)
        }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    func close() { channel.close(promise: nil) }
}

/// Collects one reply per request on the channel's event loop; fails the waiting request when the
/// connection closes or errs.
final class EtcdReplyCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private var promise: EventLoopPromise<EtcdCollectedReply>?
    private var status = 0
    private var body = Data()
    private var keepAlive = true
    private var receivedAny = false
    private var limit = 0
    private var active = true

    /// Starts waiting for a reply; false (and `promise` failed) when the connection is gone.
    func start(_ promise: EventLoopPromise<EtcdCollectedReply>, limit: Int) -> Bool {
        guard active, self.promise == nil else {
            promise.fail(EtcdExchangeFailure.lost(receivedAny: false, reason: active ? "a request is already in flight" : "the connection was closed"))
            return false
        }
        self.promise = promise
        self.limit = limit
        status = 0
        body = Data()
        keepAlive = true
        receivedAny = false
        return true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        receivedAny = true
        switch part {
        case .head(let head):
            status = Int(head.status.code)
            keepAlive = head.isKeepAlive
        case .body(let buffer):
            body.append(contentsOf: buffer.readableBytesView)
            if body.count > limit {
                fail(EtcdExchangeFailure.tooLarge(limit: limit))
                context.close(promise: nil)
            }
        case .end:
            let reply = EtcdCollectedReply(status: status, body: body, keepAlive: keepAlive)
            body = Data()
            let waiting = promise
            promise = nil
            waiting?.succeed(reply)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        fail(EtcdExchangeFailure.lost(receivedAny: receivedAny, reason: "etcd closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(EtcdExchangeFailure.lost(receivedAny: receivedAny, reason: "\(error)"))
        context.close(promise: nil)
    }

    private func fail(_ error: EtcdExchangeFailure) {
        let waiting = promise
        promise = nil
        waiting?.fail(error)
    }
}
