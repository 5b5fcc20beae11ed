/// The services an agent offers on its reverse tunnel. A tunnel channel names one of these,
/// never an address: the agent refuses anything else, so a tunnel cannot be used to reach
/// arbitrary hosts from the agent's network.
public enum TunnelService: String, Sendable, CaseIterable {
    /// The node's SSH server.
    case nodeSSH = "node-ssh"
    /// A database agent (later parts).
    case database = "db"
    /// An application agent (later parts).
    case app = "app"
    /// A Kubernetes agent (later parts).
    case kube = "kube"
    /// A leaf cluster's proxy, on its tunnel to a root cluster (trusted clusters, issue 20): the
    /// root's proxy asks it, for a root user, for the nodes the user may see or for a byte stream
    /// to one of them (``ClusterWire`` in TeleportProxy).
    case clusterProxy = "cluster-proxy"
}

/// Names used on the tunnel's SSH connection.
enum TunnelWire {
    /// The global request host of a keepalive (a `tcpip-forward` the proxy answers, never binds).
    static let keepaliveHost = "keepalive@teleport"
    /// The global request host of a drain notice: the proxy (server) sends a `tcpip-forward` for
    /// `draining@teleport`, port 0, to each agent when it stops accepting for a graceful restart;
    /// the agent answers success (nothing is bound), stops counting the tunnel as held, keeps it
    /// for its open channels and dials again (reaching the proxy's new process).
    static let drainingHost = "draining@teleport"
    /// The SSH service name the agent authenticates for.
    static let password = "teleport-tunnel"
}
