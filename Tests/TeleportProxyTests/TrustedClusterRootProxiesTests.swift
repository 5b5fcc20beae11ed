import Foundation
import TeleportAPI
@testable import TeleportProxy
import Testing

/// Trusted clusters (issue 20): the root's proxies that a leaf keeps a tunnel to each of (pure).
@Suite("trusted clusters: the root's proxies sent to a leaf (pure)")
struct TrustedClusterRootProxiesTests {
    @Test("the directory keeps each root's list sorted, without repeats or empty names, bounded; a root never sent gives none")
    func directory() {
        let directory = RootProxyDirectory()
        #expect(directory.proxies(of: "root.example").isEmpty)
        directory.set(root: "root.example", proxies: ["p2", "p1", "", "p2"])
        #expect(directory.proxies(of: "root.example") == ["p1", "p2"])
        #expect(directory.proxies(of: "other.example").isEmpty)
        directory.set(root: "root.example", proxies: ["p3"])
        #expect(directory.proxies(of: "root.example") == ["p3"])
        let many = (0..<1000).map { String(format: "proxy-%04d", $0) }
        directory.set(root: "big.example", proxies: many)
        #expect(directory.proxies(of: "big.example").count == RootProxyDirectory.maxProxies)
        #expect(directory.proxies(of: "big.example").first == "proxy-0000")
    }

    @Test("the push digest changes when the proxies change, not with their order")
    func digest() {
        let authorities = [CertAuthority(type: .user, clusterName: "root.example", activeKeys: .init(ssh: [.init(publicKey: "k1", privateKey: nil)], tls: []))]
        let a = ClusterAuthorityPush.digest(authorities, proxies: ["p1", "p2"])
        #expect(a == ClusterAuthorityPush.digest(authorities, proxies: ["p2", "p1"]))
        #expect(a != ClusterAuthorityPush.digest(authorities, proxies: ["p1"]))
        #expect(a != ClusterAuthorityPush.digest(authorities, proxies: nil))
    }

    @Test("the proxies travel with the authorities request, and a request without them still decodes")
    func wire() throws {
        let request = ClusterWire.Request(op: ClusterWire.Request.authorities, certificate: "", target: nil, authorities: [], proxies: ["p1", "p2"])
        let back = try JSONDecoder().decode(ClusterWire.Request.self, from: try ResourceCodec.json(request))
        #expect(back.proxies == ["p1", "p2"])
        let old = try JSONDecoder().decode(ClusterWire.Request.self, from: Data(#"{"op":"authorities","certificate":""}"#.utf8))
        #expect(old.proxies == nil)
    }
}

/// The root proxy's ping answer kept by a leaf's tunnel agent (pure clock).
@Suite("trusted clusters: the tunnel address a root's ping gave is kept a while")
struct TrustedClusterResolvedAddressTests {
    @Test("kept until the ttl passes, then asked again")
    func kept() {
        let kept = ResolvedTunnelAddress(ttl: .seconds(30))
        let start = ContinuousClock.Instant.now
        #expect(kept.current(now: start) == nil)
        kept.keep((host: "lb.example", port: 3080), now: start)
        #expect(kept.current(now: start + .seconds(29)).map { "\($0.host):\($0.port)" } == "lb.example:3080")
        #expect(kept.current(now: start + .seconds(30)) == nil)
    }
}
