import Foundation
import TeleportAPI
import Testing

@testable import TeleportProxy

/// Which reverse tunnels the proxy closes: locked hosts at once, unregistered ones after the
/// grace; a database service (no node record, its `db_server` records name its host) keeps its
/// tunnel.
@Suite("proxy tunnel service: tunnels to close")
struct ProxyTunnelServiceTests {
    static let now = Date(timeIntervalSince1970: 1_000_000)
    static let old = now.addingTimeInterval(-60)
    static let fresh = now.addingTimeInterval(-5)

    static func close(_ connected: [(String, Date?)], nodes: [ServerNode] = [], agents: Set<String> = [], locks: [Lock] = []) -> [String] {
        ProxyTunnelService.tunnelsToClose(
            connected: connected.map { (host: $0.0, since: $0.1) }, nodes: nodes, agentHosts: agents, locks: locks, now: now, grace: 15
        ).map(\.host)
    }

    @Test func aDatabaseServiceBehindNATKeepsItsTunnel() {
        #expect(Self.close([("db-host", Self.old)], agents: ["db-host"]).isEmpty)
        // The regression: only node records counted, so a database agent's tunnel closed after the grace.
        #expect(Self.close([("db-host", Self.old)]) == ["db-host"])
    }

    @Test func nodesGraceAndLocks() {
        let node = ServerNode(uuid: "node-1", hostname: "web1", addr: "")
        #expect(Self.close([("node-1", Self.old), ("new", Self.fresh), ("unknown-since", nil)], nodes: [node]).isEmpty)
        #expect(Self.close([("gone", Self.old)], nodes: [node]) == ["gone"])
        let byHostname = Lock(name: "l1", target: .init(node: "web1"))
        #expect(Self.close([("node-1", Self.fresh)], nodes: [node], locks: [byHostname]) == ["node-1"])
        let byUUID = Lock(name: "l2", target: .init(node: "db-host"))
        #expect(Self.close([("db-host", Self.fresh)], agents: ["db-host"], locks: [byUUID]) == ["db-host"])
    }
}
