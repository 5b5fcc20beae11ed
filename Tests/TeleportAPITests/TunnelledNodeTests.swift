import Foundation
import TeleportAPI
import Testing

/// A tunnelled node's record: `spec.use_tunnel`, an empty address allowed only then, and the
/// address column of `tsh ls`/`tctl nodes ls`.
@Suite struct TunnelledNodeTests {
    @Test func emptyAddressNeedsUseTunnel() throws {
        var node = ServerNode(uuid: "5b1a0b9e-0000-4000-8000-000000000001", hostname: "behind-nat", addr: "")
        #expect(throws: TeleportError.self) { try node.validate() }
        node.spec.useTunnel = true
        try node.validate()
        #expect(node.displayAddress == "⟵ Tunnel")
    }

    @Test func useTunnelRoundTripsAsJSON() throws {
        var node = ServerNode(uuid: "5b1a0b9e-0000-4000-8000-000000000002", hostname: "n", addr: "")
        node.spec.useTunnel = true
        let text = try ResourceCodec.json(node)
        #expect(String(decoding: text, as: UTF8.self).contains("\"use_tunnel\":true"))
        let direct = ServerNode(uuid: "5b1a0b9e-0000-4000-8000-000000000003", hostname: "d", addr: "10.0.0.5:3022")
        #expect(direct.displayAddress == "10.0.0.5:3022")
    }
}
