import TeleportAuthClient
import Testing

/// Where an agent dials its reverse tunnel from what the proxy's ping said and the web address it
/// pinged (the agent may be behind NAT and unable to resolve the proxy's own host name).
@Suite struct ProxyPingAnswerTests {
    typealias Answer = ProxyPing.Answer

    @Test func anAdvertisedAddressWins() throws {
        let answer = Answer(clusterName: "c", tunnelPublicAddr: "tunnel.example.com", tlsRoutingEnabled: true, tunnelListenPort: 4024)
        let address = try answer.tunnelAddress(pinged: ("10.0.0.1", 3080))
        #expect(address.host == "tunnel.example.com" && address.port == 3024)
        let withPort = try Answer(clusterName: "c", tunnelPublicAddr: "lb.example.com:443").tunnelAddress(pinged: ("10.0.0.1", 3080))
        #expect(withPort.host == "lb.example.com" && withPort.port == 443)
    }

    @Test func withoutOneTheWebPortServesTunnelsWhenRouted() throws {
        for advertised in [nil, ""] as [String?] {
            let routed = try Answer(clusterName: "c", tunnelPublicAddr: advertised, tlsRoutingEnabled: true).tunnelAddress(pinged: ("10.0.0.1", 3080))
            #expect(routed.host == "10.0.0.1" && routed.port == 3080)
        }
    }

    @Test func otherwiseThePingedHostWithTheListenerPort() throws {
        let listed = try Answer(clusterName: "c", tunnelPublicAddr: "", tunnelListenPort: 4024).tunnelAddress(pinged: ("10.0.0.1", 3080))
        #expect(listed.host == "10.0.0.1" && listed.port == 4024)
        let fallback = try Answer(clusterName: "c").tunnelAddress(pinged: ("proxy.example.com", 443))
        #expect(fallback.host == "proxy.example.com" && fallback.port == 3024)
    }

    @Test func aMalformedAdvertisedAddressIsAnError() {
        #expect(throws: (any Error).self) { try Answer(clusterName: "c", tunnelPublicAddr: "host:notaport").tunnelAddress(pinged: ("h", 1)) }
    }
}
