import Foundation
public import Logging
public import ServiceLifecycle
public import TeleportAPI
public import TeleportAuthClient
public import TeleportTunnel

/// Leaf side of trusted clusters (issue 20) on each proxy: keeps a reverse tunnel to the proxy of
/// every root cluster this cluster trusts (enabled `trusted_cluster`s), so that the root reaches
/// the leaf with no inbound connection to it. The tunnel is the agent machinery of nodes behind
/// NAT (``ReverseTunnelAgent``: backoff, keepalives, redial) with the leaf proxy's host identity;
/// the root proxy's certificate is checked against the root's host CA stored at the trust
/// exchange, and must be a `Proxy` of the root cluster. A trust that is disabled
/// (`enabled: false`) or removed stops its agent, which closes the tunnel; enabling it again
/// starts a new one. The list is read from the auth service every ``interval``. With several
/// root proxies behind the one address, the agent keeps a tunnel to each (``ProxyPool``, told the
/// root's proxies by ``RootProxyDirectory``).
public struct TrustedClusterAgentService: Service, CustomStringConvertible {
    let auth: AuthClient
    let hostUUID: String
    let identity: @Sendable () -> ClientIdentity
    let keepalive: Duration?
    let logger: Logger
    /// How often the trusts are read again.
    public var interval: Duration = .seconds(3)
    /// What this proxy serves a root on its tunnel (root users reaching this cluster's nodes);
    /// nil serves nothing.
    public var leafService: LeafClusterService?

    public var description: String { "TrustedClusterAgentService" }

    /// Creates the service for the proxy `hostUUID`; `identity` gives its current host identity
    /// (renewed by CA rotations), `keepalive` overrides the agents' keepalive interval (tests).
    public init(
        auth: AuthClient, hostUUID: String, identity: @escaping @Sendable () -> ClientIdentity, keepalive: Duration?, logger: Logger
    ) {
        self.auth = auth
        self.hostUUID = hostUUID
        self.identity = identity
        self.keepalive = keepalive
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var running: [AuthAPI.RootTunnelTarget: Task<Void, Never>] = [:]
            while !Task.isCancelled {
                do {
                    let wanted = try await auth.rootTunnelTargets()
                    let (start, stop) = Self.plan(wanted: wanted, running: Set(running.keys))
                    for target in stop {
                        logger.info(
                            "closing the reverse tunnel to root cluster \(target.clusterName): the trust was disabled, removed or changed",
                            metadata: ["tp.cluster": "\(target.clusterName)"])
                        running.removeValue(forKey: target)?.cancel()
                    }
                    for target in start {
                        do {
                            let agent = try makeAgent(target)
                            logger.info(
                                "keeping a reverse tunnel to root cluster \(target.clusterName)",
                                metadata: ["tp.cluster": "\(target.clusterName)", "tp.proxy": "\(target.tunnelAddr ?? target.webProxyAddr)"])
                            running[target] = Task { await agent.run() }
                        } catch {
                            logger.warning(
                                "cannot start the reverse tunnel to root cluster \(target.clusterName)",
                                metadata: ["tp.error": "\((error as? TeleportError)?.message ?? "\(error)")"])
                        }
                    }
                } catch {
                    // The auth service may be briefly away: keep the tunnels as they are.
                    logger.debug("cannot read the trusted clusters; keeping the tunnels", metadata: ["tp.error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
            // Shutting down: each agent closes its tunnel.
            for task in running.values { task.cancel() }
            for task in running.values { await task.value }
        }
    }

    /// Which agents to start and stop (pure): a target not running starts; a running one no longer
    /// wanted (disabled, removed, or changed: its address or the root's CA) stops.
    static func plan(wanted: [AuthAPI.RootTunnelTarget], running: Set<AuthAPI.RootTunnelTarget>) -> (
        start: [AuthAPI.RootTunnelTarget], stop: [AuthAPI.RootTunnelTarget]
    ) {
        let wantedSet = Set(wanted)
        let start = wanted.filter { !running.contains($0) }
        let stop = running.filter { !wantedSet.contains($0) }.sorted { $0.clusterName < $1.clusterName }
        return (start, stop)
    }

    /// The agent of one root: the leaf proxy's identity, the root's host CA as the only trust
    /// root, the root's name as the cluster its proxy's certificate must name; the tunnel address
    /// is `tunnel_addr` or, when absent, found through the root proxy's ping before each dial.
    func makeAgent(_ target: AuthAPI.RootTunnelTarget) throws -> ReverseTunnelAgent {
        let current = identity()
        var services: [TunnelService: ReverseTunnelAgent.ServiceHandler] = [:]
        if let leafService { services[.clusterProxy] = leafService.handler(root: target.clusterName) }
        let web = try HostPort.parse(target.webProxyAddr, defaultPort: 3080, key: "trusted_cluster \(target.clusterName): spec.web_proxy_addr")
        let fixed = try target.tunnelAddr.map { try HostPort.parse($0, defaultPort: 3024, key: "trusted_cluster \(target.clusterName): spec.tunnel_addr") }
        var configuration = ReverseTunnelAgent.Configuration(
            hostUUID: hostUUID, clusterName: target.clusterName, proxyHost: fixed?.host ?? web.host, proxyPort: fixed?.port ?? 3024,
            tlsContext: try TunnelTLS.clientTLSContext(certificatePEM: current.certificatePEM, keyPEM: current.keyPEM, trustedCAPEMs: target.hostCAPEMs),
            services: services)
        if fixed == nil {
            let root = target.clusterName
            let address = target.webProxyAddr
            // The ping's answer is kept a while: with several root proxies behind a round-robin
            // balancer, a ping before every dial would send each dial to the same proxy.
            let kept = ResolvedTunnelAddress()
            configuration.resolveTarget = {
                if let known = kept.current() { return known }
                let answer = try await ProxyPing.fetch(address: address)
                guard answer.clusterName == root else {
                    throw TeleportError.badParameter(
                        "the proxy at \(address) serves cluster \(answer.clusterName), not \(root); check the trusted_cluster's web_proxy_addr")
                }
                let found = try answer.tunnelAddress(pinged: (web.host, web.port))
                kept.keep(found)
                return found
            }
        }
        if let keepalive { configuration.reconnect.keepaliveInterval = keepalive }
        if let directory = leafService?.rootProxies {
            // One tunnel to each of the root's proxies (the list its proxies send on the tunnel;
            // until then the one tunnel the address reached): the agent pool of node agents.
            let root = target.clusterName
            configuration.discoverProxies = { directory.proxies(of: root) }
        }
        var agentLogger = logger
        agentLogger[metadataKey: "tp.cluster"] = "\(target.clusterName)"
        return ReverseTunnelAgent(configuration: configuration, logger: agentLogger)
    }
}
