import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import TeleportAPI
import TeleportWire

/// `tsh proxy db NAME --tunnel`: a plain-TCP database port on 127.0.0.1 that adds the user's
/// database certificate, so GUI clients and drivers need no certificate files. Only the user who
/// started it is served (other local users are refused by the kernel's socket table,
/// ``LoopbackPeer``).
///
/// - PostgreSQL: the client is answered `N` to `SSLRequest`; its start-up message goes on to the
///   proxy over TLS with the certificate (the proxy's host certificate checked against the
///   cluster's CAs, as `sslmode=verify-ca`): through the web port with ALPN `teleport-postgres`
///   (TLS from the first byte) when the proxy routes TLS, else to `postgres_listen_addr`
///   (`SSLRequest`, `S`, TLS).
/// - MySQL: the tunnel greets the client (without TLS), reads its `HandshakeResponse41`, then
///   opens TLS with ALPN `teleport-mysql` to the web port, reads the proxy's greeting there and
///   sends the client's response on; the proxy's `OK` (or `ERR`) and everything after are relayed.
///
/// Then bytes are relayed both ways.
struct DatabaseLocalTunnel: Sendable {
    /// Where the proxy's listener is (the web port when ``alpn`` is set).
    let upstreamHost: String
    let upstreamPort: Int
    /// The client TLS towards the proxy: the route certificate, the user's key, the cluster CAs
    /// (and the ALPN value when routed by the web port).
    let tls: NIOSSLContext
    /// The database's protocol.
    var `protocol`: DatabaseServer.DatabaseProtocol = .postgres
    /// The ALPN protocol offered to the web port (nil: the protocol's own listener).
    var alpn: String?
    /// Whose connections are served.
    let uid: UInt32

    /// The TLS context for the proxy: verify-ca (the proxy's certificate is its host identity's,
    /// whose names need not match the address dialled); `alpn` offered when set.
    static func context(certificatePath: String, keyPath: String, caPath: String, alpn: String? = nil) throws -> NIOSSLContext {
        do {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem))
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caPath))
            configuration.certificateVerification = .noHostnameVerification
            configuration.minimumTLSVersion = .tlsv12
            if let alpn { configuration.applicationProtocols = [alpn] }
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TeleportError.badParameter("the database certificate files cannot be loaded (\(error)); run tsh db login again")
        }
    }

    /// Listens on 127.0.0.1:`port` (0: any free port), calls `listening` with the port, then serves
    /// until cancelled.
    func run(port: Int, listening: @Sendable (Int) -> Void) async throws {
        let server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
        } catch {
            throw TeleportError.connectionProblem("cannot listen on 127.0.0.1:\(port): \(error); choose another --port")
        }
        listening(server.channel.localAddress?.port ?? port)
        try await server.executeThenClose { connections in
            try await withThrowingDiscardingTaskGroup { group in
                for try await connection in connections {
                    group.addTask { await serve(connection) }
                }
            }
        }
    }

    /// One local client, by protocol.
    func serve(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        switch `protocol` {
        case .postgres: await servePostgres(client)
        case .mysql: await serveMySQL(client)
        }
    }

    /// One local PostgreSQL client: the peer check, the start-up exchange, then the relay.
    func servePostgres(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let clientPort = client.channel.remoteAddress?.port ?? -1
        let serverPort = client.channel.localAddress?.port ?? -1
        try? await client.executeThenClose { inbound, outbound in
            func refuse(_ message: String) async throws {
                try await outbound.write(ByteBuffer(bytes: PostgresStartup.errorResponse(code: "28000", message: message)))
            }
            var iterator = inbound.makeAsyncIterator()
            var bytes: [UInt8] = []
            var parameters: [PostgresStartup.Parameter]?
            while parameters == nil {
                let (message, consumed) = PostgresStartup.parse(bytes)
                switch message {
                case .needMoreData:
                    guard let next = try await iterator.next() else { return }
                    bytes += next.readableBytesView
                    continue
                case .sslRequest, .gssEncRequest:
                    // The hop to this port is loopback; TLS is added towards the proxy.
                    try await outbound.write(ByteBuffer(bytes: [UInt8(ascii: "N")]))
                case .cancelRequest:
                    return
                case .invalid(let reason):
                    try await refuse(reason)
                    return
                case .startup(let found):
                    parameters = found
                }
                bytes.removeFirst(consumed)
            }
            // Checked once the client has reached its start-up message, so that it shows the refusal.
            guard LoopbackPeer.uid(clientPort: clientPort, serverPort: serverPort) == uid else {
                try await refuse("tsh proxy db serves only the local user who started it (uid \(uid))")
                return
            }
            let upstream: NIOAsyncChannel<ByteBuffer, ByteBuffer>
            do {
                upstream = try await (alpn == nil ? connectUpstream() : connectRouted())
            } catch {
                try await refuse((error as? TeleportError)?.message ?? "\(error)")
                return
            }
            try await upstream.executeThenClose { upstreamIn, upstreamOut in
                try await upstreamOut.write(ByteBuffer(bytes: PostgresStartup.startupMessage(parameters ?? []) + bytes))
                var upstreamIterator = upstreamIn.makeAsyncIterator()
                try await Self.relay(client: &iterator, outbound, upstream: &upstreamIterator, upstreamOut)
            }
        }
    }

    /// Relays until either side ends: the proxy's side ending closes the client's; the client's
    /// ending ends the session.
    static func relay(
        client: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        upstream: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, _ upstreamOut: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) async throws {
        // The iterator moves to the child task (one reader at a time: the box is only a carrier).
        let box = IteratorBox(upstream)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while let buffer = try await box.iterator.next() { try await outbound.write(buffer) }
                outbound.finish()
            }
            while let buffer = try await client.next() { try await upstreamOut.write(buffer) }
            group.cancelAll()
        }
    }

    /// One local MySQL client: the tunnel's greeting (no TLS offered: the hop is loopback), the
    /// client's `HandshakeResponse41`, the peer check, then the proxy's web port (ALPN
    /// `teleport-mysql`): its greeting is read and the client's response sent on (sequence 1 on
    /// both hops, so the proxy's answer passes unchanged), then the relay.
    func serveMySQL(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let clientPort = client.channel.remoteAddress?.port ?? -1
        let serverPort = client.channel.localAddress?.port ?? -1
        try? await client.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var bytes: [UInt8] = []
            func refuse(_ message: String, sequence: UInt8, denied: Bool = false) async throws {
                let payload = denied ? MySQLReply.accessDenied(message) : MySQLReply.unknownError(message)
                try await outbound.write(ByteBuffer(bytes: MySQLPacket(sequence: sequence, payload: payload).bytes))
            }
            var generator = SystemRandomNumberGenerator()
            let greeting = MySQLGreeting(
                serverVersion: "8.0.0-Teleport", connectionID: UInt32.random(in: 1...UInt32.max, using: &generator),
                authData: (0..<20).map { _ in UInt8.random(in: 0x21...0x7E, using: &generator) },
                capabilities: MySQLCapabilities.proxyOffered.subtracting(.ssl))
            try await outbound.write(ByteBuffer(bytes: MySQLPacket(sequence: 0, payload: greeting.payload).bytes))
            let packet: MySQLPacket
            switch try await Self.readPacket(&iterator, &bytes) {
            case .packet(let found, _): packet = found
            case .tooLong(let reason): return try await refuse(reason, sequence: 2)
            case .needMoreData: return
            }
            let next = packet.sequence &+ 1
            switch MySQLHandshakeResponse.parse(packet.payload) {
            case .failure(let error):
                return try await refuse(error.message, sequence: next)
            case .success(.sslRequest):
                return try await refuse(
                    "tsh proxy db serves MySQL without TLS on 127.0.0.1 (the certificate is added towards the proxy): connect with --skip-ssl or --ssl-mode=DISABLED",
                    sequence: next)
            case .success(.response):
                break
            }
            guard LoopbackPeer.uid(clientPort: clientPort, serverPort: serverPort) == uid else {
                return try await refuse("tsh proxy db serves only the local user who started it (uid \(uid))", sequence: next, denied: true)
            }
            let upstream: NIOAsyncChannel<ByteBuffer, ByteBuffer>
            do {
                upstream = try await connectRouted()
            } catch {
                return try await refuse((error as? TeleportError)?.message ?? "\(error)", sequence: next)
            }
            try await upstream.executeThenClose { upstreamIn, upstreamOut in
                var upstreamIterator = upstreamIn.makeAsyncIterator()
                var upstreamBytes: [UInt8] = []
                guard case .packet(let proxyGreeting, _) = try await Self.readPacket(&upstreamIterator, &upstreamBytes) else {
                    return try await refuse("the proxy at \(upstreamHost):\(upstreamPort) sent no MySQL greeting", sequence: next)
                }
                guard proxyGreeting.payload.first != 0xFF else {
                    // The proxy refused before greeting: its ERR, renumbered for the client.
                    try await outbound.write(ByteBuffer(bytes: MySQLPacket(sequence: next, payload: proxyGreeting.payload).bytes))
                    return
                }
                try await upstreamOut.write(ByteBuffer(bytes: MySQLPacket(sequence: packet.sequence, payload: packet.payload).bytes + bytes))
                if !upstreamBytes.isEmpty { try await outbound.write(ByteBuffer(bytes: upstreamBytes)) }
                try await Self.relay(client: &iterator, outbound, upstream: &upstreamIterator, upstreamOut)
            }
        }
    }

    /// Reads one handshake packet (at most ``MySQLServerHandshake/maxPacket`` bytes); what follows
    /// it stays in `bytes`. `.needMoreData` when the stream ended first.
    static func readPacket(
        _ iterator: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, _ bytes: inout [UInt8]
    ) async throws -> MySQLPacket.Parsed {
        while true {
            let parsed = MySQLPacket.parse(bytes, limit: MySQLServerHandshake.maxPacket)
            switch parsed {
            case .packet(_, let consumed):
                bytes.removeFirst(consumed)
                return parsed
            case .tooLong:
                return parsed
            case .needMoreData:
                guard let next = try await iterator.next() else { return .needMoreData }
                bytes += next.readableBytesView
            }
        }
    }

    /// TLS from the first byte to the proxy's web port, offering ``alpn`` (TLS routing).
    func connectRouted() async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        let tls = self.tls
        do {
            return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connect(host: upstreamHost, port: upstreamPort) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil))
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw TeleportError.connectionProblem("cannot reach the proxy's web port at \(upstreamHost):\(upstreamPort): \(error)")
        }
    }

    /// TCP to the proxy's PostgreSQL port, `SSLRequest`, `S`, then TLS in front of the channel.
    func connectUpstream() async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        let address = "\(upstreamHost):\(upstreamPort)"
        let channel: any Channel
        let answer: EventLoopFuture<UInt8>
        do {
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let promise = loop.makePromise(of: UInt8.self)
            answer = promise.futureResult
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(SSLAnswerReader(answer: promise), name: SSLAnswerReader.name)
                    }
                }
                .connect(host: upstreamHost, port: upstreamPort).get()
        } catch {
            throw TeleportError.connectionProblem("cannot reach the proxy's PostgreSQL port at \(address): \(error)")
        }
        do {
            try await channel.writeAndFlush(ByteBuffer(bytes: PostgresStartup.sslRequest))
            guard try await answer.get() == UInt8(ascii: "S") else {
                throw TeleportError.connectionProblem("the proxy at \(address) did not accept TLS for PostgreSQL")
            }
            let tls = self.tls
            return try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.removeHandler(name: SSLAnswerReader.name)
                try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil))
                return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }.get()
        } catch {
            try? await channel.close()
            if let error = error as? TeleportError { throw error }
            throw TeleportError.connectionProblem("the TLS connection to the proxy at \(address) failed: \(error)")
        }
    }
}

/// Carries an inbound iterator (read by one task at a time) into a child task.
final class IteratorBox: @unchecked Sendable {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) { self.iterator = iterator }
}

/// Reads the one-byte answer to `SSLRequest` (`S` or `N`) before TLS is put in front of the channel.
final class SSLAnswerReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    static let name = "ssl-answer"
    let answer: EventLoopPromise<UInt8>

    init(answer: EventLoopPromise<UInt8>) {
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        // The answer is one byte and nothing may follow it before the handshake.
        guard buffer.readableBytes == 1, let byte = buffer.readInteger(as: UInt8.self) else {
            answer.fail(TeleportError.connectionProblem("the proxy answered SSLRequest with \(buffer.readableBytes) bytes"))
            context.close(promise: nil)
            return
        }
        answer.succeed(byte)
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.fail(TeleportError.connectionProblem("the proxy closed the connection during the SSL exchange"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
        context.close(promise: nil)
    }
}

extension TSHCommands {
    /// `tsh proxy db NAME --tunnel [--port N] [--db-user --db-name]`: logs in to the database when
    /// needed (as `tsh db connect` does), then serves ``DatabaseLocalTunnel`` until interrupted.
    public static func proxyDatabase(
        _ options: ClientOptions, name: String, port: Int, dbUser: String?, dbName: String?, context: ClientContext,
        print: @escaping @Sendable (String) -> Void
    ) async throws -> Int32 {
        try await ensureDatabaseLogin(options, name: name, dbUser: dbUser, dbName: dbName, context: context)
        let connection = try await databaseConnection(options, name: name, context: context, tlsRouting: true)
        var tunnel = DatabaseLocalTunnel(
            upstreamHost: connection.host, upstreamPort: connection.port,
            tls: try DatabaseLocalTunnel.context(
                certificatePath: connection.certificate, keyPath: connection.key, caPath: connection.ca, alpn: connection.alpn),
            uid: getuid())
        tunnel.protocol = connection.protocol
        tunnel.alpn = connection.alpn
        guard connection.protocol == .postgres || connection.alpn != nil else {
            throw TeleportError.badParameter("tsh proxy db --tunnel for MySQL goes through the proxy's web port, which did not offer it")
        }
        try await tunnel.run(port: port) { port in
            let command: String
            switch connection.protocol {
            case .postgres:
                var words = ["host=localhost", "port=\(port)", "user=\(connection.user)"]
                if !connection.database.isEmpty { words.append("dbname=\(connection.database)") }
                command = "psql \(ShellQuote.word(words.joined(separator: " ")))"
            case .mysql:
                var words = ["mysql", "--host=127.0.0.1", "--port=\(port)", "--protocol=TCP", "--user=\(connection.user)"]
                if !connection.database.isEmpty { words.append("--database=\(connection.database)") }
                command = words.map(ShellQuote.word).joined(separator: " ")
            }
            print(
                "Started DB proxy on 127.0.0.1:\(port) for database \(connection.name) (only your user may connect).\n"
                    + "Use the following command to connect to the database:\n  \(command)\n")
        }
        return 0
    }
}
