import Foundation
import TeleportAPI
@testable import TeleportProxy
import Testing

/// Trusted clusters (issue 20), step 2: the pure decisions of the proxies' cluster-tunnel
/// services: which root tunnels a leaf's proxy starts and stops, and which heartbeats a root's
/// proxy sends about the leaves' tunnels.
@Suite("trusted clusters: the proxies' tunnel decisions (pure)")
struct TrustedClusterTunnelPlanTests {
    static let root = AuthAPI.RootTunnelTarget(clusterName: "root.example", webProxyAddr: "root:3080", tunnelAddr: nil, hostCAPEMs: ["CA1"])
    static let other = AuthAPI.RootTunnelTarget(clusterName: "other.example", webProxyAddr: "other:3080", tunnelAddr: "other:3024", hostCAPEMs: ["CA2"])

    @Test("a new trust starts, a gone one stops, a changed one (CA rotated, address moved) restarts, an unchanged one is kept")
    func plan() {
        var rotated = Self.root
        rotated.hostCAPEMs = ["CA1", "CA1-new"]
        let cases: [(wanted: [AuthAPI.RootTunnelTarget], running: Set<AuthAPI.RootTunnelTarget>, start: [String], stop: [String])] = [
            ([Self.root], [], ["root.example"], []),
            ([Self.root], [Self.root], [], []),
            ([], [Self.root], [], ["root.example"]),  // disabled or removed
            ([rotated], [Self.root], ["root.example"], ["root.example"]),
            ([Self.root, Self.other], [Self.other], ["root.example"], []),
            ([], [], [], []),
        ]
        for (wanted, running, start, stop) in cases {
            let planned = TrustedClusterAgentService.plan(wanted: wanted, running: running)
            #expect(planned.start.map(\.clusterName) == start, "\(wanted.map(\.clusterName)) over \(running.map(\.clusterName))")
            #expect(planned.stop.map(\.clusterName) == stop, "\(wanted.map(\.clusterName)) over \(running.map(\.clusterName))")
        }
    }

    @Test("a held tunnel is reported online at once and then every interval; a closed one offline once")
    func heartbeats() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        func run(_ connected: Set<String>, _ reported: [String: Date]) -> [String] {
            ClusterTunnelService.heartbeats(connected: connected, reported: reported, now: now, every: 10).map { "\($0.leaf) \($0.connection)" }
        }
        #expect(run(["a"], [:]) == ["a online"])
        #expect(run(["a"], ["a": now.addingTimeInterval(-3)]) == [])
        #expect(run(["a"], ["a": now.addingTimeInterval(-10)]) == ["a online"])
        #expect(run([], ["a": now.addingTimeInterval(-3)]) == ["a offline"])
        #expect(run(["b"], ["a": now]) == ["b online", "a offline"])
        #expect(run([], [:]) == [])
    }

    @Test("tsh clusters lists the root first (online), then the leaves by name with their tunnel status")
    func clusterEntries() {
        var b = RemoteCluster(name: "b.example")
        b.status = .init(connection: "online", lastHeartbeat: Date(timeIntervalSince1970: 1_800_000_000))
        let a = RemoteCluster(name: "a.example")
        let entries = ClustersRoute.entries(root: "root.example", leaves: [b, a])
        #expect(entries.map(\.name) == ["root.example", "a.example", "b.example"])
        #expect(entries.map(\.status) == ["online", "offline", "online"])
        #expect(entries.map(\.type) == ["root", "leaf", "leaf"])
        #expect(entries[2].lastConnected == Date(timeIntervalSince1970: 1_800_000_000))
        #expect(ClustersRoute.entries(root: "root.example", leaves: []).map(\.name) == ["root.example"])
    }
}
