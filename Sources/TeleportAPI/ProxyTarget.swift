/// A node a client asks the proxy to reach: `HOST[:PORT][@CLUSTER]`, as sent in the
/// `proxy:...` subsystem, in the TLS tunnel of `tsh proxy ssh`, and (with the port apart) in a
/// `direct-tcpip` request.
///
/// The cluster is never ignored: until trusted clusters exist, a proxy serves only its own cluster
/// and refuses any other name (``check(servedCluster:)``), so that a target meant for another
/// cluster is never quietly connected to a node of this one.
public struct ProxyTarget: Sendable, Equatable {
    /// The node's name, UUID or address.
    public var host: String
    /// The port, when the client gave one (not 0).
    public var port: Int?
    /// The cluster named after `@`, if any.
    public var cluster: String?

    /// Creates a target.
    public init(host: String, port: Int?, cluster: String?) {
        self.host = host
        self.port = port
        self.cluster = cluster
    }

    /// Parses `HOST[:PORT][@CLUSTER]` (IPv6 hosts in brackets; a port of 0 means none).
    public static func parse(_ text: String) throws -> ProxyTarget {
        var rest = text
        var cluster: String?
        if let at = rest.lastIndex(of: "@") {
            cluster = String(rest[rest.index(after: at)...])
            rest = String(rest[..<at])
            guard cluster?.isEmpty == false else {
                throw TeleportError.badParameter("\"\(TerminalText.escape(text))\" ends with @ but names no cluster; write HOST:PORT@CLUSTER or leave @ out")
            }
        }
        guard !rest.isEmpty else {
            throw TeleportError.badParameter("\"\(TerminalText.escape(text))\" names no host; write HOST:PORT[@CLUSTER]")
        }
        if let parsed = try? HostPort.parse(rest, defaultPort: 0, key: "proxy target") {
            return ProxyTarget(host: parsed.host, port: parsed.port == 0 ? nil : parsed.port, cluster: cluster)
        }
        return ProxyTarget(host: rest, port: nil, cluster: cluster)
    }

    /// A `direct-tcpip` target: the host may carry `@CLUSTER`; the port comes apart.
    public static func direct(host: String, port: Int) throws -> ProxyTarget {
        var name = host
        var cluster: String?
        if let at = host.lastIndex(of: "@") {
            name = String(host[..<at])
            cluster = String(host[host.index(after: at)...])
            guard cluster?.isEmpty == false else {
                throw TeleportError.badParameter("\"\(TerminalText.escape(host))\" ends with @ but names no cluster; leave @ out")
            }
        }
        guard !name.isEmpty else { throw TeleportError.badParameter("the forwarding request names no host") }
        return ProxyTarget(host: name, port: port == 0 ? nil : port, cluster: cluster)
    }

    /// Refuses a target for a cluster other than `servedCluster`, naming it (where leaf clusters
    /// are not routed: direct-tcpip and the TLS line of `tsh proxy ssh`; the proxy's `proxy:`
    /// subsystem routes to leaves).
    public func check(servedCluster: String) throws {
        guard let cluster, cluster.lowercased() != servedCluster.lowercased() else { return }
        throw TeleportError.notFound(
            "cluster \"\(TerminalText.escape(cluster))\" is not known to this proxy here: it serves only cluster \"\(servedCluster)\" "
                + "on this path (a leaf cluster's nodes are reached through the proxy's SSH port: -s proxy:%h:%p@\(TerminalText.escape(cluster)), "
                + "or tsh ssh/tsh proxy ssh --cluster); leave @\(TerminalText.escape(cluster)) out or use \(servedCluster)")
    }
}
