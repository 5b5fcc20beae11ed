import Foundation
import TeleportAPI
@testable import TeleportProxy
import Testing

/// Trusted clusters (issue 20): which `direct-tcpip` hosts (`ssh -J PROXY`) the root's proxy sends
/// through a leaf's tunnel (pure).
@Suite("trusted clusters: ssh -J hosts NODE.LEAF (pure)")
struct TrustedClusterJumpTargetTests {
    @Test("NODE.LEAF goes to the leaf (longest name, any case); the root's own name, unknown suffixes, bare names and @CLUSTER stay")
    func jumpTargets() {
        let leaves = ["leaf.example", "b.leaf.example", "other.example", "root.example"]
        let cases: [(host: String, port: Int?, cluster: String?, want: ProxyTarget)] = [
            ("testnode.leaf.example", 3022, nil, ProxyTarget(host: "testnode", port: 3022, cluster: "leaf.example")),
            ("TestNode.LEAF.Example", 3022, nil, ProxyTarget(host: "TestNode", port: 3022, cluster: "leaf.example")),
            ("web.b.leaf.example", nil, nil, ProxyTarget(host: "web", port: nil, cluster: "b.leaf.example")),
            ("db.other.example", 22, nil, ProxyTarget(host: "db", port: 22, cluster: "other.example")),
            // The root's own name (a local node), an unknown suffix, a bare name: unchanged.
            ("testnode.root.example", 3022, nil, ProxyTarget(host: "testnode.root.example", port: 3022, cluster: nil)),
            ("testnode.nosuch.example", 3022, nil, ProxyTarget(host: "testnode.nosuch.example", port: 3022, cluster: nil)),
            ("testnode", 3022, nil, ProxyTarget(host: "testnode", port: 3022, cluster: nil)),
            // The leaf's name alone names no node; a suffix must follow a dot.
            ("leaf.example", 3022, nil, ProxyTarget(host: "leaf.example", port: 3022, cluster: nil)),
            ("xleaf.example", 3022, nil, ProxyTarget(host: "xleaf.example", port: 3022, cluster: nil)),
            // An explicit @CLUSTER is kept as given.
            ("testnode.leaf.example", 3022, "other.example", ProxyTarget(host: "testnode.leaf.example", port: 3022, cluster: "other.example")),
        ]
        for item in cases {
            let got = ClusterRouter.jumpTarget(
                ProxyTarget(host: item.host, port: item.port, cluster: item.cluster), leaves: leaves, localCluster: "root.example")
            #expect(got == item.want, "\(item.host)")
        }
        #expect(ClusterRouter.jumpTarget(ProxyTarget(host: "n.leaf.example", port: 1, cluster: nil), leaves: [], localCluster: "root.example").cluster == nil)
    }

    @Test("only dotted names that are not IP addresses cost a lookup of the leaves")
    func mayNameLeaf() {
        #expect(ClusterRouter.mayNameLeaf("node.leaf.example"))
        #expect(!ClusterRouter.mayNameLeaf("node"))
        #expect(!ClusterRouter.mayNameLeaf("10.0.0.1"))
        #expect(!ClusterRouter.mayNameLeaf("fe80::1"))
    }
}
