import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization
import TeleportAPI

/// One HTTPS connection of an ``HTTPSTransport``: requests go one at a time, each reply is read by
/// ``ReplyCollector`` on the channel's event loop (no task per request). A connection whose reply
/// allowed it is kept in the transport's ``HTTPSConnectionPool`` for the next request.
final class HTTPSConnection: Sendable {
    let channel: any Channel
    let collector: ReplyCollector
    let recorder: FirstErrorRecorder
    let opened: ContinuousClock.Instant
    /// When it was last put back (read and written under the pool's lock).
    let idleSince = Mutex<ContinuousClock.Instant>(.now)

    init(channel: any Channel, collector: ReplyCollector, recorder: FirstErrorRecorder) {
        self.channel = channel
        self.collector = collector
        self.recorder = recorder
        self.opened = .now
    }

    /// Sends one request and waits for its whole reply (the body capped at `maxBodyBytes`). On any
    /// error, and when the caller is cancelled, the connection is closed.
    func exchange(head: HTTPRequestHead, body: Data?) async throws -> ReplyCollector.Reply {
        let promise = channel.eventLoop.makePromise(of: ReplyCollector.Reply.self)
        let channel = self.channel
        let collector = self.collector
        channel.eventLoop.execute {
            guard channel.isActive else {
                promise.fail(ReplyCollector.ClosedBeforeReply())
                return
            }
            collector.expect(promise)
            channel.write(NIOAny(HTTPClientRequestPart.head(head)), promise: nil)
            if let body { channel.write(NIOAny(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil) }
            channel.writeAndFlush(NIOAny(HTTPClientRequestPart.end(nil))).whenFailure { error in
                collector.failWaiting(ReplyCollector.ClosedBeforeReply(underlying: error))
            }
        }
        return try await withTaskCancellationHandler {
            do {
                return try await promise.futureResult.get()
            } catch {
                channel.close(promise: nil)
                throw error
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    func close() { channel.close(promise: nil) }
}

/// Reads one reply at a time from the HTTP client codec: the status, the body (capped) and whether
/// the server keeps the connection open; fails the waiting request when the connection ends or errs.
final class ReplyCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    struct Reply: Sendable {
        var status: Int
        var body: Data
        /// The server keeps the connection for another request.
        var keepAlive: Bool
    }

    /// The connection ended or failed before any reply began (a kept connection the server had
    /// closed, or a server that went away): `underlying` is the error seen, if any.
    struct ClosedBeforeReply: Error {
        var underlying: (any Error)?
    }

    private let maxBodyBytes: Int
    private let describe: String
    // Event-loop confined.
    private var promise: EventLoopPromise<Reply>?
    private var status = 0
    private var keepAlive = true
    private var began = false
    private var body = Data()

    init(maxBodyBytes: Int, describe: String) {
        self.maxBodyBytes = maxBodyBytes
        self.describe = describe
    }

    /// The next reply completes `promise` (call on the event loop).
    func expect(_ promise: EventLoopPromise<Reply>) {
        self.promise = promise
        status = 0
        keepAlive = true
        began = false
        body = Data()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            began = true
            status = Int(head.status.code)
            keepAlive = head.isKeepAlive
        case .body(let buffer):
            body.append(contentsOf: buffer.readableBytesView)
            if body.count > maxBodyBytes {
                fail(TeleportError.limitExceeded("a reply from \(describe) exceeds \(maxBodyBytes) bytes"))
                context.close(promise: nil)
            }
        case .end:
            let reply = Reply(status: status, body: body, keepAlive: keepAlive)
            body = Data()
            let waiting = promise
            promise = nil
            waiting?.succeed(reply)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(began ? error : ClosedBeforeReply(underlying: error))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if began {
            fail(TeleportError.connectionProblem("\(describe) closed the connection mid-reply"))
        } else {
            fail(ClosedBeforeReply())
        }
        context.fireChannelInactive()
    }

    /// Fails the waiting request, if any (call on the event loop: a write that failed).
    func failWaiting(_ error: any Error) { fail(error) }

    private func fail(_ error: any Error) {
        let waiting = promise
        promise = nil
        waiting?.fail(error)
    }
}

/// Idle HTTPS connections of a transport and its copies, by server and TLS identity: a request
/// takes one (or dials), and puts it back when the server keeps it. A connection is dropped after
/// ``idleLimit`` unused (well inside the auth service's 10 s idle timeout, so the server does not
/// close one as it is reused) or ``ageLimit`` after it opened (the server learns who the caller is
/// once per connection: a removed host or a rotated certificate shows on the next connection).
final class HTTPSConnectionPool: Sendable {
    static let idleLimit: Duration = .seconds(4)
    static let ageLimit: Duration = .seconds(30)
    /// Idle connections kept per server and identity; more are closed.
    static let maxIdle = 4

    struct Key: Hashable, @unchecked Sendable {
        var host: String
        var port: Int
        /// The TLS context (the identity presented): a reloaded identity does not reuse the old ones.
        var context: NIOSSLContext

        static func == (lhs: Key, rhs: Key) -> Bool { lhs.host == rhs.host && lhs.port == rhs.port && lhs.context === rhs.context }
        func hash(into hasher: inout Hasher) {
            hasher.combine(host)
            hasher.combine(port)
            hasher.combine(ObjectIdentifier(context))
        }
    }

    private let idle = Mutex<[Key: [HTTPSConnection]]>([:])

    /// A kept connection still open and within its limits, if any (stale ones are closed).
    func take(_ key: Key) -> HTTPSConnection? {
        let now = ContinuousClock.now
        var stale: [HTTPSConnection] = []
        let found = idle.withLock { entries -> HTTPSConnection? in
            // Other keys' stale connections go too (a reloaded identity leaves its old ones behind).
            for (other, list) in entries where other != key {
                let (keep, drop) = Self.split(list, now: now)
                stale += drop
                entries[other] = keep.isEmpty ? nil : keep
            }
            var list = entries[key] ?? []
            while let last = list.popLast() {
                if Self.usable(last, now: now) {
                    entries[key] = list.isEmpty ? nil : list
                    return last
                }
                stale.append(last)
            }
            entries[key] = nil
            return nil
        }
        for connection in stale { connection.close() }
        return found
    }

    /// Keeps `connection` for the next request, or closes it when enough are kept.
    func put(_ connection: HTTPSConnection, _ key: Key) {
        let kept = idle.withLock { entries -> Bool in
            guard (entries[key]?.count ?? 0) < Self.maxIdle, ContinuousClock.now - connection.opened < Self.ageLimit else { return false }
            connection.idleSince.withLock { $0 = .now }
            entries[key, default: []].append(connection)
            return true
        }
        if !kept { connection.close() }
    }

    /// How many connections are kept (for tests).
    var count: Int { idle.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    private static func usable(_ connection: HTTPSConnection, now: ContinuousClock.Instant) -> Bool {
        connection.channel.isActive && now - connection.idleSince.withLock({ $0 }) < idleLimit && now - connection.opened < ageLimit
    }

    private static func split(_ list: [HTTPSConnection], now: ContinuousClock.Instant) -> (keep: [HTTPSConnection], drop: [HTTPSConnection]) {
        var keep: [HTTPSConnection] = []
        var drop: [HTTPSConnection] = []
        for connection in list {
            if usable(connection, now: now) { keep.append(connection) } else { drop.append(connection) }
        }
        return (keep, drop)
    }
}
