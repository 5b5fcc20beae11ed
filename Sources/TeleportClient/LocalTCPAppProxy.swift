import NIOCore
import NIOPosix
import NIOSSL
import TeleportAPI
import TeleportSSH

/// `tsh proxy app NAME [--port N]` for a TCP app (`tcp://HOST:PORT`): a listener on 127.0.0.1 whose
/// every connection is carried as raw bytes to the proxy's web port over TLS with the app
/// certificate (server name = the app's public address), and from there through the
/// application service to the target. ``GlueHandler`` relays both ways with backpressure; either
/// side closing closes the other.
struct LocalTCPAppProxy: Sendable {
    /// The proxy's web address.
    let proxyHost: String
    let proxyPort: Int
    /// The app's public address (the TLS server name).
    let publicAddr: String
    let tls: NIOSSLContext

    /// Binds 127.0.0.1:`port` (0: any free port), calls `ready` with the bound port, and serves
    /// until cancelled.
    func run(port: Int, ready: @Sendable (Int) -> Void) async throws {
        let server: NIOAsyncChannel<LocalConnection, Never>
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .bind(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let (local, remote) = GlueHandler.matchedPair()
                        // The local side reads nothing until the proxy's side is connected.
                        try channel.pipeline.syncOperations.addHandler(local)
                        return LocalConnection(channel: channel, remote: remote)
                    }
                }
        } catch {
            throw TeleportError.connectionProblem("cannot listen on 127.0.0.1:\(port): \(error) (choose another --port)")
        }
        ready(server.channel.localAddress?.port ?? port)
        try await server.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                for try await connection in inbound {
                    group.addTask { await relay(connection) }
                }
            }
        }
    }

    /// One accepted local connection and the glue for its proxy side.
    struct LocalConnection: Sendable {
        let channel: any Channel
        let remote: GlueHandler
    }

    func relay(_ connection: LocalConnection) async {
        let tls = self.tls
        let serverName = publicAddr
        let remote = connection.remote
        do {
            let upstream = try await ClientBootstrap(group: connection.channel.eventLoop)
                .connectTimeout(.seconds(10))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                        try channel.pipeline.syncOperations.addHandler(remote)
                    }
                }
                .connect(host: proxyHost, port: proxyPort).get()
            try? await connection.channel.closeFuture.get()
            try? await upstream.closeFuture.get()
        } catch {
            StandardStreams.err("cannot reach the proxy at \(proxyHost):\(proxyPort): \(error)\n")
            try? await connection.channel.close()
        }
    }
}
