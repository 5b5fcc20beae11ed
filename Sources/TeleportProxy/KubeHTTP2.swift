import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOSSL
import Synchronization
import TeleportAPI
import TeleportSSH

/// Dials the Kubernetes service of one cluster for one checked user: mutual TLS (the service's
/// `Kube` identity checked by ``KubeProxy/dialService(_:on:)``), then the hand-off carrying the
/// user's certificate. An HTTP/1.1 connection from kubectl gets one such connection for its
/// whole life; an HTTP/2 connection one per stream (``KubeHTTP2``).
struct KubeServiceDialer: Sendable {
    let proxy: KubeProxy
    let cluster: KubeServer
    let handoff: DatabaseHandoff
    /// The connection's audit fields (user, route, remote address).
    let fields: [String: JSONValue]

    /// A connection to the service that has been sent the hand-off (bytes from here on).
    func dial(on loop: any EventLoop) async throws -> any Channel {
        let upstream = try await proxy.dialService(cluster, on: loop)
        try await upstream.writeAndFlush(upstream.allocator.buffer(bytes: try handoff.frame()))
        return upstream
    }

    typealias HTTPUpstream = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

    /// A connection to the service for one HTTP request: the hand-off is written and the HTTP/1.1
    /// client codec installed in the same turn of the service channel's loop, so nothing the
    /// service answers can arrive before the codec.
    func dialHTTP(on loop: any EventLoop) async throws -> HTTPUpstream {
        let upstream = try await proxy.dialService(cluster, on: loop)
        let frame = try handoff.frame()
        do {
            return try await upstream.eventLoop.submit {
                upstream.writeAndFlush(upstream.allocator.buffer(bytes: frame), promise: nil)
                try upstream.pipeline.syncOperations.addHTTPClientHandlers()
                return try HTTPUpstream(wrappingChannelSynchronously: upstream)
            }.get()
        } catch {
            upstream.close(promise: nil)
            throw TeleportError.connectionProblem("cannot set up the connection to the Kubernetes service: \(error)")
        }
    }

    /// A `kube.request` failure event from the proxy for a refused stream.
    func auditRefusal(code: Int, message: String) {
        var fields = self.fields
        fields["success"] = false
        fields["error"] = .string(message)
        fields["response_code"] = .int(code)
        proxy.audit?.add(AuditEventType.kubeRequestFailure, fields)
        proxy.logger.info("Kubernetes request refused: \(message)")
    }
}

/// kubectl over HTTP/2 (ALPN `h2` on the proxy's Kubernetes TLS): the proxy ends HTTP/2 and sends
/// each stream as one HTTP/1.1 request (`Connection: close`) on its own connection to the
/// Kubernetes service, so the service sees exactly what an HTTP/1.1 client sends; its answer goes
/// back on the stream as it comes (watches and `logs -f` stream, with HTTP/2 flow control as the
/// back-pressure). Upgrades (exec, attach, port-forward) do not exist in HTTP/2: kubectl opens an
/// HTTP/1.1 connection for them.
///
/// Limits against floods: at most ``maxConcurrentStreams`` streams at once (the SETTINGS the proxy
/// sends; more are refused by NIOHTTP2 and count as glitches, which end the connection), NIOHTTP2's
/// limits on resets (200 in 30 s), control frames and CONTINUATION frames, and at most
/// ``maxConcurrentStreams`` connections to the service per HTTP/2 connection (a stream past that
/// gets 429 at once).
enum KubeHTTP2 {
    static let maxConcurrentStreams = 100
    /// Header lists larger than this are refused (16 KiB, NIOHTTP2's default).
    static let maxHeaderListSize = 16 * 1024

    typealias Stream = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
    typealias Multiplexer = NIOHTTP2Handler.AsyncStreamMultiplexer<Stream>

    /// What each stream of a connection gets.
    enum Outcome: Sendable {
        case relay(KubeServiceDialer)
        case refuse(Int, String)
    }

    /// The connection's HTTP/2 settings.
    static var configuration: NIOHTTP2Handler.Configuration {
        var configuration = NIOHTTP2Handler.Configuration()
        configuration.connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: maxHeaderListSize),
        ]
        return configuration
    }

    /// Adds the HTTP/2 handler and its stream multiplexer at the end of the pipeline (on the loop).
    static func install(on pipeline: ChannelPipeline.SynchronousOperations) throws -> Multiplexer {
        try pipeline.configureAsyncHTTP2Pipeline(mode: .server, configuration: configuration) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                return try Stream(wrappingChannelSynchronously: stream)
            }
        }
    }

    /// Serves every stream of the connection until it ends.
    static func serve(_ multiplexer: Multiplexer, outcome: Outcome, logger: Logger) async {
        let inFlight = InFlight()
        do {
            try await withThrowingDiscardingTaskGroup { group in
                for try await stream in multiplexer.inbound {
                    group.addTask {
                        switch outcome {
                        case .refuse(let code, let message):
                            await answer(stream, code: code, message: message)
                        case .relay(let dialer):
                            let (_, admitted) = inFlight.count.add(1, ordering: .relaxed)
                            defer { inFlight.count.subtract(1, ordering: .relaxed) }
                            guard admitted <= maxConcurrentStreams else {
                                dialer.auditRefusal(code: 429, message: "too many requests in flight on one connection")
                                await answer(stream, code: 429, message: "too many requests in flight on one connection (at most \(maxConcurrentStreams))")
                                return
                            }
                            await relay(stream, dialer: dialer, dials: inFlight.dials, logger: logger)
                        }
                    }
                }
            }
        } catch {
            logger.debug("Kubernetes HTTP/2 connection ended: \(error)")
        }
    }

    /// At most this many connections to the service are being set up at once for one HTTP/2
    /// connection (each is a TLS handshake, maybe through a reverse tunnel); more streams wait, and
    /// a stream reset while it waited costs nothing.
    static let maxConcurrentDials = 8

    /// The streams of one connection that have a connection to the service, and its dial slots.
    final class InFlight: Sendable {
        let count = Atomic<Int>(0)
        let dials = DialSlots(KubeHTTP2.maxConcurrentDials)
    }

    /// A counting semaphore for dials.
    actor DialSlots {
        private var free: Int
        private var waiting: [CheckedContinuation<Void, Never>] = []

        init(_ count: Int) { free = count }

        func acquire() async {
            if free > 0 {
                free -= 1
                return
            }
            await withCheckedContinuation { waiting.append($0) }
        }

        func release() {
            if waiting.isEmpty {
                free += 1
            } else {
                waiting.removeFirst().resume()
            }
        }
    }

    /// Thrown at the end of every `executeThenClose` body here, so that NIOAsyncChannel closes the
    /// channel on its error path: its normal path asserts (in debug builds) that `closeFuture` did
    /// not fail, and an SSH channel of a reverse tunnel fails it (`tcpShutdown`) when the tunnel
    /// drops, which stopped the process.
    struct Ended: Error {}

    /// Answers a stream with a Kubernetes `Status` and ends it.
    static func answer(_ stream: Stream, code: Int, message: String) async {
        try? await stream.executeThenClose { inbound, outbound in
            try await respond(outbound, code: code, message: message)
            throw Ended()
        }
    }

    static func respond(_ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, code: Int, message: String) async throws {
        let body = KubeFrontGate.statusJSON(code: code, message: message)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: "\(body.count)")
        try await outbound.write(.head(HTTPResponseHead(version: .http2, status: .init(statusCode: code), headers: headers)))
        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
        try await outbound.write(.end(nil))
    }

    /// Headers about one HTTP/1.1 connection, which HTTP/2 does not carry either way.
    static let connectionHeaders = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]

    /// The request's head as the service gets it: HTTP/1.1, closed after the answer.
    static func upstreamHead(_ head: HTTPRequestHead) -> HTTPRequestHead {
        var head = head
        head.version = .http1_1
        for name in connectionHeaders {
            head.headers.remove(name: name)
        }
        head.headers.add(name: "Connection", value: "close")
        return head
    }

    /// The service's answer head as the stream gets it (no connection-specific headers).
    static func streamHead(_ head: HTTPResponseHead) -> HTTPResponseHead {
        var head = head
        head.version = .http2
        for name in connectionHeaders {
            head.headers.remove(name: name)
        }
        return head
    }

    /// One stream: its request to the service and the answer back, both streaming. It ends when
    /// the answer has ended, or the stream was reset or closed (the service connection is closed).
    static func relay(_ stream: Stream, dialer: KubeServiceDialer, dials: DialSlots, logger: Logger) async {
        let (closed, closedContinuation) = AsyncStream<Void>.makeStream()
        stream.channel.closeFuture.whenComplete { _ in closedContinuation.finish() }
        do {
            try await stream.executeThenClose { inbound, outbound in
                var requests = inbound.makeAsyncIterator()
                guard case .head(let head)? = try await requests.next() else { throw Ended() }
                let upstream: KubeServiceDialer.HTTPUpstream
                await dials.acquire()
                // A stream reset while it waited for a slot is not dialled for.
                guard stream.channel.isActive else {
                    await dials.release()
                    throw Ended()
                }
                do {
                    upstream = try await dialer.dialHTTP(on: stream.channel.eventLoop)
                    await dials.release()
                } catch {
                    await dials.release()
                    let message =
                        "cannot reach Kubernetes cluster \(dialer.cluster.name)'s Kubernetes service: \((error as? TeleportError)?.message ?? "\(error)")"
                    dialer.auditRefusal(code: 502, message: message)
                    try await respond(outbound, code: 502, message: message)
                    throw Ended()
                }
                try await upstream.executeThenClose { responses, upstreamWriter in
                    try await upstreamWriter.write(.head(upstreamHead(head)))
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        // The answer, as it comes.
                        group.addTask {
                            for try await part in responses {
                                switch part {
                                case .head(let head): try await outbound.write(.head(streamHead(head)))
                                case .body(let buffer): try await outbound.write(.body(.byteBuffer(buffer)))
                                case .end(let trailers):
                                    try await outbound.write(.end(trailers))
                                    return
                                }
                            }
                            throw TeleportError.connectionProblem("the Kubernetes service closed the connection before the answer ended")
                        }
                        // The stream closed under us (a reset, the connection gone).
                        group.addTask {
                            for await _ in closed {}
                            throw TeleportError.connectionProblem("the stream was closed")
                        }
                        // The request body, here. A stream that ends without its end was reset; a
                        // service that stopped reading (it answered early, e.g. 413) gets no more.
                        body: while let part = try await requests.next() {
                            switch part {
                            case .body(let buffer):
                                if (try? await upstreamWriter.write(.body(.byteBuffer(buffer)))) == nil { break body }
                            case .end(let trailers):
                                _ = try? await upstreamWriter.write(.end(trailers))
                                break body
                            case .head: throw TeleportError.badParameter("a second request head on one stream")
                            }
                            if Task.isCancelled { throw CancellationError() }
                        }
                        // Whichever comes first: the answer's end, or the stream's.
                        try await group.next()
                        group.cancelAll()
                    }
                    throw Ended()
                }
            }
        } catch is Ended {
        } catch {
            logger.debug("Kubernetes HTTP/2 stream ended: \(error)")
        }
        closedContinuation.finish()
    }
}
