public import Foundation

extension AuthAPI {
    /// Root side, `GET /v1/remoteclusters/tunnelauthorities` (Proxy only): a leaf cluster whose
    /// proxy may keep a reverse tunnel to this cluster's proxies, with the host CA it gave at the
    /// trust exchange (the only CA its proxy's certificate is checked against).
    public struct LeafTunnelAuthority: Codable, Sendable, Equatable {
        /// The leaf's cluster name.
        public var clusterName: String
        /// The leaf's host CA certificates (PEM).
        public var hostCAPEMs: [String]

        enum CodingKeys: String, CodingKey {
            case clusterName = "cluster_name"
            case hostCAPEMs = "host_ca_pems"
        }

        /// Creates an entry.
        public init(clusterName: String, hostCAPEMs: [String]) {
            self.clusterName = clusterName
            self.hostCAPEMs = hostCAPEMs
        }
    }

    /// Root side, `POST /v1/remoteclusters/NAME/heartbeat` (Proxy only): whether the proxy holds
    /// the leaf's tunnel now.
    public struct RemoteClusterHeartbeat: Codable, Sendable, Equatable {
        /// `online` (the proxy holds the leaf's tunnel) or `offline` (it just closed).
        public var connection: String

        /// Creates a heartbeat.
        public init(connection: String) {
            self.connection = connection
        }
    }

    /// Leaf side, `GET /v1/trustedclusters/tunnels` (Proxy only): an enabled trust whose root the
    /// leaf's proxy keeps a reverse tunnel to.
    public struct RootTunnelTarget: Codable, Sendable, Equatable, Hashable {
        /// The root's cluster name (the root proxy's certificate must name it).
        public var clusterName: String
        /// The root proxy's web address (pinged for the tunnel address when ``tunnelAddr`` is absent).
        public var webProxyAddr: String
        /// The root proxy's tunnel address, when the trusted cluster names one.
        public var tunnelAddr: String?
        /// The root's host CA certificates (PEM), stored at the exchange: the root proxy's
        /// certificate is checked against them only.
        public var hostCAPEMs: [String]

        enum CodingKeys: String, CodingKey {
            case clusterName = "cluster_name"
            case webProxyAddr = "web_proxy_addr"
            case tunnelAddr = "tunnel_addr"
            case hostCAPEMs = "host_ca_pems"
        }

        /// Creates a target.
        public init(clusterName: String, webProxyAddr: String, tunnelAddr: String?, hostCAPEMs: [String]) {
            self.clusterName = clusterName
            self.webProxyAddr = webProxyAddr
            self.tunnelAddr = tunnelAddr
            self.hostCAPEMs = hostCAPEMs
        }
    }
}
