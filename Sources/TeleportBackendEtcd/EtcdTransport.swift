import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TeleportAPI
import Synchronization
import TeleportHTTP

/// A small HTTP/1.1 client for etcd's v3 JSON gateway: unary calls on keep-alive connections
/// (``EtcdConnectionPool``), a watch on a connection of its own for the stream, HTTPS with an
/// optional client certificate or plain HTTP, every reply capped at `maxMessageBytes`.
struct EtcdTransport: Sendable {
    struct Endpoint: Sendable, CustomStringConvertible {
        var host: String
        var port: Int
        var tls: Bool
        var description: String { "\(tls ? "https" : "http")://\(host):\(port)" }
    }

    let endpoints: [Endpoint]
    let sslContext: NIOSSLContext?
    let maxMessageBytes: Int
    let timeout: TimeAmount
    /// Idle keep-alive connections for unary calls.
    let pool = EtcdConnectionPool()

    typealias Channel = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

    /// Parses `https://host:port` peers; a one-line error names the bad one.
    static func endpoints(_ peers: [String]) throws -> [Endpoint] {
        guard !peers.isEmpty else {
            throw TeleportError.badParameter("teleport.storage.peers is empty; list the etcd peers, e.g. [\"https://127.0.0.1:2379\"]")
        }
        return try peers.map { peer in
            guard let url = URL(string: peer), let scheme = url.scheme, scheme == "https" || scheme == "http",
                let host = url.host, !host.isEmpty
            else {
                throw TeleportError.badParameter("teleport.storage.peers: \"\(peer)\" is not an http(s)://host:port URL")
            }
            return Endpoint(host: host, port: url.port ?? 2379, tls: scheme == "https")
        }
    }

    /// POSTs `body` (JSON) to `path` on the first peer that answers; returns the reply body.
    func call(_ path: String, _ body: Data, token: String?) async throws -> Data {
        var lastError: (any Error)?
        for endpoint in endpoints {
            do {
                return try await withDeadline(endpoint) {
                    try await self.pooledExchange(endpoint, path, body, token: token)
                }
            } catch let error as TeleportError where error.code != .connectionProblem {
                throw error
            } catch {
                lastError = error
            }
        }
        if let error = lastError as? TeleportError { throw error }
        throw TeleportError.connectionProblem("etcd is unreachable at \(endpoints.map(\.description).joined(separator: ", "))")
    }

    /// POSTs `body` to `path` and hands each line of the streamed reply to `onLine` until the server
    /// ends the stream (a watch); the first peer that connects serves it.
    func stream(_ path: String, _ body: Data, token: String?, onLine: @escaping @Sendable (Data) async throws -> Void) async throws {
        var lastError: (any Error)?
        for endpoint in endpoints {
            do {
                _ = try await exchange(endpoint, path, body, token: token, onLine: onLine)
                return
            } catch let error as TeleportError where error.code != .connectionProblem {
                throw error
            } catch {
                lastError = error
            }
        }
        throw lastError ?? TeleportError.connectionProblem("etcd is unreachable")
    }

    /// One unary call on a kept-alive connection; a reused connection that failed before any of
    /// the reply arrived is replaced once.
    private func pooledExchange(_ endpoint: Endpoint, _ path: String, _ body: Data, token: String?) async throws -> Data {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "Host", value: "\(endpoint.host):\(endpoint.port)")
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: "\(body.count)")
        if let token { head.headers.add(name: "Authorization", value: token) }
        let peer = endpoint.description
        for attempt in 0..<2 {
            let connection: EtcdKeepAliveConnection
            var reused = false
            if attempt == 0, let idle = pool.take(peer) {
                connection = idle
                reused = true
            } else {
                connection = try await openKeepAlive(endpoint)
            }
            let reply: EtcdCollectedReply
            do {
                reply = try await connection.exchange(head, body: body, limit: maxMessageBytes)
            } catch EtcdExchangeFailure.lost(let receivedAny, let reason) {
                connection.close()
                if reused && !receivedAny { continue }
                throw TeleportError.connectionProblem("the connection to etcd at \(endpoint) failed: \(reason)")
            } catch EtcdExchangeFailure.tooLarge(let limit) {
                connection.close()
                throw TeleportError.limitExceeded(
                    "a reply from etcd at \(endpoint) exceeds \(limit) bytes; raise etcd_max_client_msg_size_bytes (and etcd's --max-request-bytes)")
            } catch {
                connection.close()
                throw error
            }
            if reply.keepAlive { pool.giveBack(connection, peer) } else { connection.close() }
            guard reply.status == 200 else { throw Self.failure(status: reply.status, body: reply.body, endpoint: endpoint) }
            return reply.body
        }
        throw TeleportError.connectionProblem("the connection to etcd at \(endpoint) failed twice")
    }

    private func openKeepAlive(_ endpoint: Endpoint) async throws -> EtcdKeepAliveConnection {
        let sslContext = endpoint.tls ? self.sslContext : nil
        if endpoint.tls && sslContext == nil {
            throw TeleportError.badParameter("etcd peer \(endpoint) uses https but no TLS settings were loaded")
        }
        let serverName: String? = endpoint.host.contains(":") || endpoint.host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : endpoint.host
        do {
            let connection = try await EtcdKeepAliveConnection.open(host: endpoint.host, port: endpoint.port, sslContext: sslContext, serverName: serverName)
            pool.opened.add(1, ordering: .relaxed)
            return connection
        } catch {
            throw TeleportError.connectionProblem("cannot reach etcd at \(endpoint): \(error)", cause: error)
        }
    }

    private func withDeadline<T: Sendable>(_ endpoint: Endpoint, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await TeleportAPI.withDeadline(.nanoseconds(timeout.nanoseconds), timeoutMessage: { "etcd at \(endpoint) did not answer in time" }, body)
    }

    private func connect(_ endpoint: Endpoint) async throws -> Channel {
        let sslContext = endpoint.tls ? self.sslContext : nil
        if endpoint.tls && sslContext == nil {
            throw TeleportError.badParameter("etcd peer \(endpoint) uses https but no TLS settings were loaded")
        }
        let serverName: String? = endpoint.host.contains(":") || endpoint.host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : endpoint.host
        do {
            return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .connect(host: endpoint.host, port: endpoint.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try Channel(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw TeleportError.connectionProblem("cannot reach etcd at \(endpoint): \(error)", cause: error)
        }
    }

    /// One request; the reply body is returned whole (when `onLine` is a no-op) or split into lines.
    private func exchange(
        _ endpoint: Endpoint, _ path: String, _ body: Data, token: String?, onLine: (@Sendable (Data) async throws -> Void)?
    ) async throws -> Data {
        let channel = try await connect(endpoint)
        let limit = maxMessageBytes
        do {
            return try await channel.executeThenClose { inbound, outbound in
                var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
                head.headers.add(name: "Host", value: "\(endpoint.host):\(endpoint.port)")
                head.headers.add(name: "Content-Type", value: "application/json")
                head.headers.add(name: "Content-Length", value: "\(body.count)")
                head.headers.add(name: "Connection", value: "close")
                if let token { head.headers.add(name: "Authorization", value: token) }
                let reply = try await HTTP1Exchange.perform(
                    inbound: inbound, outbound: outbound, head: head, body: body, maxBodyBytes: limit, describe: "etcd at \(endpoint)",
                    limitHint: "; raise etcd_max_client_msg_size_bytes (and etcd's --max-request-bytes)"
                ) { status, collected in
                    // A watch: hand over each complete line as it arrives.
                    guard status == 200, let onLine else { return }
                    while let newline = collected.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = collected[collected.startIndex..<newline]
                        collected = Data(collected[collected.index(after: newline)...])
                        try await onLine(Data(line))
                    }
                }
                guard reply.status == 200 else { throw Self.failure(status: reply.status, body: reply.body, endpoint: endpoint) }
                if let onLine, !reply.body.isEmpty { try await onLine(reply.body) }
                return reply.body
            }
        } catch let error as TeleportError {
            throw error
        } catch let error as CancellationError {
            throw error
        } catch {
            throw TeleportError.connectionProblem("the connection to etcd at \(endpoint) failed: \(error)", cause: error)
        }
    }

    private struct ErrorReply: Decodable {
        var error: String?
        var message: String?
    }

    static func failure(status: Int, body: Data, endpoint: Endpoint) -> TeleportError {
        let reply = try? JSONDecoder().decode(ErrorReply.self, from: body)
        let text = reply?.message ?? reply?.error ?? String(decoding: body.prefix(200), as: UTF8.self)
        if status == 401 || text.contains("permission denied") || text.contains("authentication") || text.contains("invalid auth token") {
            return TeleportError.accessDenied("etcd at \(endpoint) refused the request: \(text); check username/password_file or the client certificate")
        }
        if text.contains("too many operations in txn request") {
            return TeleportError.limitExceeded(
                "etcd at \(endpoint) refused a transaction with more operations than it allows (\(text)); raise etcd's --max-txn-ops (default 128) or write fewer resources at once")
        }
        return TeleportError.connectionProblem("etcd at \(endpoint) answered \(status): \(text)")
    }
}
