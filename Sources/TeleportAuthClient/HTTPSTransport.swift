import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TeleportAPI
import TeleportHTTP
import Synchronization

/// A minimal HTTPS/1.1 client with mutual TLS, the server's certificate checked against the
/// cluster's CA certificates and the fixed name ``AuthAPI/serverName``. With ``keepsConnections``
/// (the auth API's client) a connection serves several requests in turn (``HTTPSConnectionPool``):
/// a session, a login or a batch of calls pays one TLS handshake, not one per call. Otherwise one
/// connection per request.
struct HTTPSTransport: Sendable, CustomStringConvertible {
    let host: String
    let port: Int
    /// Other auth servers (`auth_servers: [a, b, ...]` after the first), tried when one cannot be
    /// connected to.
    var fallbacks: [(host: String, port: Int)] = []
    /// Which server answered last (0: `host`, then `fallbacks`), shared by copies of this transport.
    let preferred = PreferredEndpoint()
    /// The TLS context, shared by copies and replaced by ``reload(identity:)``.
    let context: ContextBox
    var sslContext: NIOSSLContext { context.current }
    let serverName: String
    let timeout: TimeAmount
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` of the process: the dial goes through ``OutboundDial``.
    var proxies: ProxyEnvironment
    /// Header fields added to every request (``AuthClient/actingFor(webSession:)``).
    var extraHeaders: [(name: String, value: String)] = []
    /// Keep connections for later requests (shared by copies of this transport).
    var keepsConnections = false
    let pool = HTTPSConnectionPool()

    var description: String { "HTTPSTransport(\(host):\(port))" }

    /// The largest reply body read (a session recording is the biggest thing the auth API sends).
    static let maxReplyBytes = 1 << 30

    struct Reply: Sendable {
        var status: Int
        var body: Data
    }

    /// `verifyServer: false` is only for fetching public CA certificates before a pin check.
    init(
        host: String, port: Int, identity: ClientIdentity?, trustedCAPEMs: [String], serverName: String, timeout: TimeAmount,
        verifyServer: Bool = true, alpnProtocols: [String] = [AuthClient.alpnProtocol]
    ) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        // Through the proxy's web port, `teleport-auth` routes the connection to the auth service
        // untouched (the auth service itself ignores it); `http/1.1` asks the proxy's own HTTPS.
        tls.applicationProtocols = alpnProtocols
        if !verifyServer { tls.certificateVerification = .none }
        context = ContextBox(base: tls, current: try Self.makeContext(tls, identity: identity, trustedCAPEMs: trustedCAPEMs))
        self.host = host
        self.port = port
        self.serverName = serverName
        self.timeout = timeout
        self.proxies = try OutboundDial.processProxies()
    }

    static func makeContext(_ base: TLSConfiguration, identity: ClientIdentity?, trustedCAPEMs: [String]) throws -> NIOSSLContext {
        var tls = base
        do {
            let roots = try trustedCAPEMs.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) }
            tls.trustRoots = .certificates(roots)
            if let identity {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(identity.certificatePEM.utf8)).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.keyPEM.utf8), format: .pem))
            }
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw TeleportError.badParameter("the client identity cannot be loaded: \(error)")
        }
    }

    /// Replaces the identity and the trusted CAs for the next connections.
    func reload(identity: ClientIdentity) throws {
        let fresh = try Self.makeContext(context.base, identity: identity, trustedCAPEMs: identity.trustedCAPEMs)
        context.set(fresh)
    }

    /// The current TLS context of a transport and its copies.
    final class ContextBox: Sendable {
        let base: TLSConfiguration
        private let state: Mutex<NIOSSLContext>
        init(base: TLSConfiguration, current: NIOSSLContext) {
            self.base = base
            self.state = Mutex(current)
        }
        var current: NIOSSLContext { state.withLock { $0 } }
        func set(_ context: NIOSSLContext) { state.withLock { $0 = context } }
    }

    func request(method: HTTPMethod, path: String, body: Data?) async throws -> Reply {
        // Several auth servers (`auth_servers: [a, b]`): the one that answered last is tried first;
        // one that cannot be connected to is skipped. Only a failed connect moves on: a request
        // that was sent is never sent again.
        let order = preferred.order(count: fallbacks.count + 1)
        var failure: TeleportError?
        for index in order {
            let (host, port) = index == 0 ? (self.host, self.port) : fallbacks[index - 1]
            let address = HostPort.join(host, port)
            let key = HTTPSConnectionPool.Key(host: host, port: port, context: sslContext)
            do {
                if keepsConnections, let kept = pool.take(key) {
                    do {
                        let reply = try await exchange(kept, key: key, address: address, method: method, path: path, body: body)
                        preferred.set(index)
                        return reply
                    } catch where Self.closedBeforeReply(error) {
                        // The kept connection ended before any reply began (the server closed it
                        // as it went idle, or went away): send the request again on a new one.
                    }
                }
                let connection = try await connect(host: host, port: port)
                preferred.set(index)
                return try await exchange(connection, key: key, address: address, method: method, path: path, body: body)
            } catch let error as TeleportError where error.code == .connectionProblem && !fallbacks.isEmpty && error.cause is ConnectFailure {
                failure = error
            }
        }
        throw failure ?? TeleportError.connectionProblem("no auth server to dial")
    }

    /// Marks a failure to connect (nothing was sent): the next auth server may be tried.
    struct ConnectFailure: Error {
        let underlying: any Error
    }

    static func closedBeforeReply(_ error: any Error) -> Bool {
        error is ReplyCollector.ClosedBeforeReply || (error as? TeleportError)?.cause is ReplyCollector.ClosedBeforeReply
    }

    private func connect(host: String, port: Int) async throws -> HTTPSConnection {
        let address = HostPort.join(host, port)
        let sslContext = self.sslContext
        let serverName = self.serverName
        do {
            return try await OutboundDial.connect(host: host, port: port, proxies: proxies) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let recorder = FirstErrorRecorder()
                    let collector = ReplyCollector(maxBodyBytes: Self.maxReplyBytes, describe: "the auth service at \(address)")
                    let handler = try NIOSSLClientHandler(context: sslContext, serverHostname: serverName)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    try channel.pipeline.syncOperations.addHandler(recorder)
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(collector)
                    return HTTPSConnection(channel: channel, collector: collector, recorder: recorder)
                }
            }
        } catch let error as TeleportError {
            throw TeleportError(error.code, error.message, cause: ConnectFailure(underlying: error))
        } catch {
            throw TeleportError.connectionProblem(
                "cannot reach the auth service at \(address): \(Self.describe(error)); is teleport running there? "
                    + "(check --auth-server / auth_servers)", cause: ConnectFailure(underlying: error))
        }
    }

    private func exchange(
        _ connection: HTTPSConnection, key: HTTPSConnectionPool.Key, address: String, method: HTTPMethod, path: String, body: Data?
    ) async throws -> Reply {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: serverName)
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: "\(body?.count ?? 0)")
        if !keepsConnections { head.headers.add(name: "Connection", value: "close") }
        for field in extraHeaders { head.headers.add(name: field.name, value: field.value) }
        let request = head
        do {
            let reply = try await withDeadline(.nanoseconds(timeout.nanoseconds), timeoutMessage: { "the auth service at \(address) did not answer in time" }) {
                try await connection.exchange(head: request, body: body)
            }
            if keepsConnections && reply.keepAlive { pool.put(connection, key) } else { connection.close() }
            return Reply(status: reply.status, body: reply.body)
        } catch let error as TeleportError {
            connection.close()
            throw error
        } catch let error as ReplyCollector.ClosedBeforeReply {
            connection.close()
            if let cause = connection.recorder.error ?? error.underlying {
                throw TeleportError.connectionProblem(
                    "the TLS connection to the auth service at \(address) failed: \(Self.describe(cause))", cause: error)
            }
            throw TeleportError.connectionProblem("the auth service at \(address) closed the connection before it answered", cause: error)
        } catch {
            connection.close()
            let cause = connection.recorder.error ?? error
            throw TeleportError.connectionProblem(
                "the TLS connection to the auth service at \(address) failed: \(Self.describe(cause))", cause: cause)
        }
    }

    var serverNameForErrors: String { serverName }

    static func describe(_ error: any Error) -> String {
        if let ssl = error as? NIOSSLError {
            switch ssl {
            case .handshakeFailed(let reason):
                let text = "\(reason)"
                if text.contains("CERTIFICATE_VERIFY_FAILED") {
                    return "the server's certificate is not signed by this cluster's CA (wrong cluster or an impostor)"
                }
                if text.contains("CERTIFICATE_REQUIRED") || text.contains("ALERT") {
                    return "the server refused our certificate (\(text)); is it from this cluster?"
                }
                return "TLS handshake failed: \(text)"
            default: return "\(ssl)"
            }
        }
        if let connect = error as? NIOConnectionError, let first = connect.connectionErrors.first {
            return describe(first.error)
        }
        if let io = error as? IOError {
            if io.errnoCode == ECONNREFUSED { return "connection refused" }
            return "\(io)"
        }
        if error is ChannelError { return "connection failed (\(error))" }
        return "\(error)"
    }
}

extension AuthClient {
    /// The ALPN protocol every connection to the auth API offers (the join's too): the proxy's
    /// web port passes connections offering it through to the auth service, TLS untouched, so
    /// agents behind NAT reach auth at the proxy's address.
    public static let alpnProtocol = "teleport-auth"
}

/// The index of the endpoint that answered last, shared by every copy of a transport.
final class PreferredEndpoint: Sendable {
    private let index = Mutex(0)

    /// Every index from the preferred one on, wrapping around.
    func order(count: Int) -> [Int] {
        let first = index.withLock { $0 } % max(count, 1)
        return (0..<count).map { (first + $0) % count }
    }

    func set(_ value: Int) { index.withLock { $0 = value } }
}
