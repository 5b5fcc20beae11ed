import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import TeleportAPI
import TeleportWire

/// `tsh proxy db NAME --tunnel`: a plain-TCP PostgreSQL port on 127.0.0.1 that adds the user's
/// database certificate. Each client that connects (only the user who started it: other local users
/// are refused by the kernel's socket table, ``LoopbackPeer``) is answered `N` to `SSLRequest`; its
/// start-up message is sent on to the proxy's PostgreSQL port over TLS with the certificate (the
/// proxy's host certificate checked against the cluster's CAs, as `sslmode=verify-ca`), then bytes
/// are relayed both ways. GUI clients and drivers then need no certificate files.
struct DatabaseLocalTunnel: Sendable {
    /// Where the proxy's PostgreSQL listener is.
    let upstreamHost: String
    let upstreamPort: Int
    /// The client TLS towards the proxy: the route certificate, the user's key, the cluster CAs.
    let tls: NIOSSLContext
    /// Whose connections are served.
    let uid: UInt32

    /// The TLS context for the proxy: verify-ca (the proxy's certificate is its host identity's,
    /// whose names need not match the address dialled).
    static func context(certificatePath: String, keyPath: String, caPath: String) throws -> NIOSSLContext {
        do {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem))
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caPath))
            configuration.certificateVerification = .noHostnameVerification
            configuration.minimumTLSVersion = .tlsv12
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

    /// One local client: the peer check, the start-up exchange, then the relay.
    func serve(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
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
                upstream = try await connectUpstream()
            } catch {
                try await refuse((error as? TeleportError)?.message ?? "\(error)")
                return
            }
            try await upstream.executeThenClose { upstreamIn, upstreamOut in
                try await upstreamOut.write(ByteBuffer(bytes: PostgresStartup.startupMessage(parameters ?? []) + bytes))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // The proxy's side ending closes the client's (which ends the loop below); the
                    // client's ending ends the session.
                    group.addTask {
                        for try await buffer in upstreamIn { try await outbound.write(buffer) }
                        outbound.finish()
                    }
                    while let buffer = try await iterator.next() { try await upstreamOut.write(buffer) }
                    group.cancelAll()
                }
            }
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
        let connection = try await databaseConnection(options, name: name, context: context)
        guard connection.protocol == .postgres else {
            throw TeleportError.badParameter(
                "tsh proxy db --tunnel serves PostgreSQL databases for now; \(name) is \(connection.protocol.rawValue): use tsh db connect \(name)")
        }
        let tunnel = DatabaseLocalTunnel(
            upstreamHost: connection.host, upstreamPort: connection.port,
            tls: try DatabaseLocalTunnel.context(certificatePath: connection.certificate, keyPath: connection.key, caPath: connection.ca),
            uid: getuid())
        try await tunnel.run(port: port) { port in
            var words = ["host=localhost", "port=\(port)", "user=\(connection.user)"]
            if !connection.database.isEmpty { words.append("dbname=\(connection.database)") }
            print(
                "Started DB proxy on 127.0.0.1:\(port) for database \(connection.name) (only your user may connect).\n"
                    + "Use the following command to connect to the database:\n  psql \(ShellQuote.word(words.joined(separator: " ")))\n")
        }
        return 0
    }
}
