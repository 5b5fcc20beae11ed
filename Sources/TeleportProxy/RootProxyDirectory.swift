import Synchronization

/// Leaf side of trusted clusters (issue 20): the proxies of each root cluster (their host UUIDs,
/// as their certificates name them), as the root's proxies last sent them on this proxy's tunnels
/// (with the root's CAs, ``ClusterAuthorityPush``). The tunnel agent to a root asks it for the
/// proxies to hold a tunnel to (``ProxyPool``, as node agents do with their own cluster's proxy
/// records): with several root proxies behind one address, the leaf keeps one tunnel to each.
/// Until a root sent its list the agent keeps the one tunnel it has. At most ``maxProxies`` per root.
public final class RootProxyDirectory: Sendable {
    /// The most proxies kept for one root.
    static let maxProxies = 256

    private let byRoot = Mutex<[String: [String]]>([:])

    /// An empty directory.
    public init() {}

    /// Keeps `proxies` as the proxies of `root` (sorted, without repeats or empty names, bounded).
    func set(root: String, proxies: [String]) {
        let list = Self.normalized(proxies)
        byRoot.withLock { $0[root] = list }
    }

    /// The proxies `root` sent last (empty when none yet).
    public func proxies(of root: String) -> [String] {
        byRoot.withLock { $0[root] ?? [] }
    }

    /// `proxies` sorted, without repeats or empty names, at most ``maxProxies`` (pure).
    static func normalized(_ proxies: [String]) -> [String] {
        Array(Set(proxies.filter { !$0.isEmpty }).sorted().prefix(maxProxies))
    }
}
