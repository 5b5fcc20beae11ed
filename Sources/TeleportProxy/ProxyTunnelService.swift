import Foundation
public import Logging
import NIOCore
public import ServiceLifecycle
public import TeleportAPI
public import TeleportAuthClient
public import TeleportTunnel

/// The proxy's reverse-tunnel service: listens on `proxy_service.tunnel_listen_addr` (when set
/// and not served by the web port), and closes the tunnel of a node that was removed from the
/// cluster (`tctl rm node/UUID`) or locked (`tctl lock --node=UUID`); a database service's tunnel
/// stays while its `db_server` records name its host.
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
        // A graceful restart: once every listener of this process stopped accepting, the agents
        // are told this proxy drains (they dial the new process); a young proxy waits a little
        // for a missing tunnel (the agents of the old process are on their way).
        let server = self.server
        let announce = await ListenerSockets.shared.afterStopAccepting { server.announceDraining() }
        defer { ListenerSockets.shared.unregister(announce) }
        await ListenerSockets.shared.untilAccepting()
        server.startedAccepting()
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: checkInterval)
                await closeRemovedAndLocked()
            }
        }
        try? await listener?.close()
    }

    /// Closes the tunnels of agents that are no longer registered (after the grace) or are locked.
    /// An agent is registered by any presence record naming its host: a node's own record, or a
    /// `db_server` or `kube_server` whose `spec.host_id` is the host (a database service behind NAT heartbeats
    /// no node record; counting only nodes closed its tunnel 15 s after it opened).
    func closeRemovedAndLocked() async {
        let connected = server.registry.connectedHosts
        guard !connected.isEmpty, let nodes = try? await auth.nodes(), let databases = try? await auth.databases(),
            let kubes = try? await auth.kubeServers()
        else { return }
        let closing = Self.tunnelsToClose(
            connected: connected.map { ($0, server.registry.connectedSince($0)) }, nodes: nodes,
            agentHosts: Set(databases.map(\.spec.hostID) + kubes.map(\.spec.hostID)), locks: await locks(), now: Date(), grace: registrationGrace)
        for (host, reason) in closing {
            logger.info("closing the reverse tunnel of \(host): \(reason)")
            server.registry.close(host)
        }
    }

    /// The tunnels to close and why (pure): a lock on the host (by UUID or a node's hostname),
    /// or, once `grace` has passed since it connected, no node record and no other agent record
    /// (`agentHosts`) naming the host.
    static func tunnelsToClose(
        connected: [(host: String, since: Date?)], nodes: [ServerNode], agentHosts: Set<String>, locks: [Lock], now: Date, grace: TimeInterval
    ) -> [(host: String, reason: String)] {
        let byName = Dictionary(nodes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        return connected.compactMap { host, since in
            if let lock = locks.first(where: { $0.spec.target.node == host || ($0.spec.target.node != nil && $0.spec.target.node == byName[host]?.spec.hostname) }) {
                return (host, lock.refusal)
            }
            if byName[host] == nil, !agentHosts.contains(host), let since, now.timeIntervalSince(since) > grace {
                return (host, "no node or database service is registered for it (removed with tctl rm?)")
            }
            return nil
        }
    }
}
