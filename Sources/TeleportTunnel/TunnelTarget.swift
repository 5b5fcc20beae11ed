public import NIOSSL

/// Where an agent (a tunnelled node, a database service behind NAT) keeps its reverse tunnel: the
/// proxy's tunnel address (found again before each dial), the host identity's TLS, proxy discovery
/// and the backoff settings. ``ReverseTunnelAgent/Configuration`` is made from it per service set.
public struct TunnelTarget: Sendable {
    /// This host's UUID.
    public var hostUUID: String
    /// The cluster name.
    public var clusterName: String
    /// The proxy's tunnel address.
    public var proxyHost: String
    /// The proxy's tunnel port.
    public var proxyPort: Int
    /// The host identity's mTLS context (a node's, a database service's) (``TunnelTLS/clientTLSContext(certificatePEM:keyPEM:trustedCAPEMs:)``).
    public var tlsContext: NIOSSLContext
    /// When set, replaces ``tlsContext`` for each dial (the host identity renewed during a CA rotation).
    public var contextSource: TLSContextSource?
    /// Finds the tunnel address before each dial (proxy discovery); nil uses the fixed one.
    public var resolve: (@Sendable () async throws -> (host: String, port: Int))?
    /// Lists the cluster's proxies (host UUIDs): the agent keeps a tunnel to each; nil keeps one.
    public var discoverProxies: (@Sendable () async throws -> [String])?
    /// Backoff and keepalive settings of the agent.
    public var reconnect = ReconnectMachine.Settings()

    /// Creates the target.
    public init(hostUUID: String, clusterName: String, proxyHost: String, proxyPort: Int, tlsContext: NIOSSLContext) {
        self.hostUUID = hostUUID
        self.clusterName = clusterName
        self.proxyHost = proxyHost
        self.proxyPort = proxyPort
        self.tlsContext = tlsContext
    }
}

extension ReverseTunnelAgent.Configuration {
    /// The agent's configuration for `target`, serving `services`.
    public init(target: TunnelTarget, services: [TunnelService: ReverseTunnelAgent.ServiceHandler]) {
        self.init(
            hostUUID: target.hostUUID, clusterName: target.clusterName, proxyHost: target.proxyHost, proxyPort: target.proxyPort,
            tlsContext: target.tlsContext, services: services)
        self = self.resolving(target.resolve).reconnecting(target.reconnect)
        discoverProxies = target.discoverProxies
        contextSource = target.contextSource
    }
}
