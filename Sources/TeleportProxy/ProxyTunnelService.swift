import Foundation
public import Logging
import NIOCore
public import ServiceLifecycle
public import TeleportAPI
public import TeleportAuthClient
public import TeleportTunnel

/// The proxy's reverse-tunnel service: listens on `proxy_service.tunnel_listen_addr` (when set
/// and not served by the web port), and closes the tunnel of a node that was removed from the
/// cluster (`tctl rm node/UUID`) or locked (`tctl lock --node=UUID`).
public struct ProxyTunnelService: Service, CustomStringConvertible {
    let server: ReverseTunnelServer
    let listen: (host: String, port: Int)?
    let auth: AuthClient
    let locks: @Sendable () async -> [Lock]
    let logger: Logger
    /// How often removed and locked nodes are looked for.
    var checkInterval: Duration = .seconds(3)
    /// How long a new tunnel may live before its node registered (its first heartbeat).
    var registrationGrace: TimeInterval = 15

    public var description: String { "ProxyTunnelService(\(listen.map { HostPort.join($0.host, $0.port) } ?? "web port"))" }

    /// Creates the service; `listen` nil serves only tunnels the web port's router hands over.
    public init(
        server: ReverseTunnelServer, listen: (host: String, port: Int)?, auth: AuthClient, locks: @escaping @Sendable () async -> [Lock],
        logger: Logger
    ) {
        self.server = server
        self.listen = listen
        self.auth = auth
        self.locks = locks
        self.logger = logger
    }

    public func run() async throws {
        var listener: (any Channel)?
        if let listen {
            do {
                listener = try await server.listen(host: listen.host, port: listen.port)
            } catch {
                throw ListenError.describe(
                    error, errno: (error as? IOError)?.errnoCode, address: HostPort.join(listen.host, listen.port), key: "proxy_service.tunnel_listen_addr")
            }
            logger.info("reverse tunnel service is listening", metadata: ["tp.listen": "\(HostPort.join(listen.host, listen.port))"])
        }
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: checkInterval)
                await closeRemovedAndLocked()
            }
        }
        try? await listener?.close()
    }

    /// Closes the tunnels of nodes that are no longer registered (after the grace) or are locked.
    func closeRemovedAndLocked() async {
        let connected = server.registry.connectedHosts
        guard !connected.isEmpty, let nodes = try? await auth.nodes() else { return }
        let locks = await locks()
        let byName = Dictionary(nodes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for host in connected {
            if let lock = locks.first(where: { $0.spec.target.node == host || ($0.spec.target.node != nil && $0.spec.target.node == byName[host]?.spec.hostname) }) {
                logger.info("closing the reverse tunnel of node \(host): \(lock.refusal)")
                server.registry.close(host)
            } else if byName[host] == nil, let since = server.registry.connectedSince(host), Date().timeIntervalSince(since) > registrationGrace {
                logger.info("closing the reverse tunnel of node \(host): the node is not registered (removed with tctl rm?)")
                server.registry.close(host)
            }
        }
    }
}
