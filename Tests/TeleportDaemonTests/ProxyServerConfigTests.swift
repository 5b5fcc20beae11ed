import TeleportAPI
import TeleportDaemon
import Testing

/// `teleport.proxy_server` (config v3): the proxy a node keeps its tunnel to, port 3080 by
/// default; `auth_servers` keeps pointing at auth when both are set.
@Suite struct ProxyServerConfigTests {
    @Test func proxyServerDefaultsToWebPortAndKeepsAuthServers() throws {
        let config = try FileConfig.parse(
            "teleport:\n  auth_servers: [10.0.0.1:3025]\n  proxy_server: proxy.example.com\nssh_service:\n  enabled: true\n", file: "f")
        #expect(config.teleport.proxyServer == "proxy.example.com:3080")
        #expect(config.teleport.authServers == ["10.0.0.1:3025"])
        #expect(!config.ssh.listenAddrConfigured)
    }

    @Test func sshListenAddressRecordsWhetherItWasSet() throws {
        let config = try FileConfig.parse("ssh_service:\n  listen_addr: 127.0.0.1:3022\n", file: "f")
        #expect(config.ssh.listenAddrConfigured)
        #expect(!(try FileConfig.parse("ssh_service:\n  enabled: true\n", file: "f")).ssh.listenAddrConfigured)
    }

    @Test func tunnelPublicAddrDefaultsToPort3024() throws {
        let config = try FileConfig.parse("proxy_service:\n  tunnel_public_addr: lb.example.com\n", file: "f")
        #expect(config.proxy.tunnelPublicAddr == "lb.example.com:3024")
        #expect(try FileConfig.parse("proxy_service:\n  tunnel_public_addr: lb.example.com:443\n", file: "f").proxy.tunnelPublicAddr == "lb.example.com:443")
        #expect(try FileConfig.parse("proxy_service:\n  enabled: true\n", file: "f").proxy.tunnelPublicAddr == nil)
        #expect(throws: TeleportError.self) { try FileConfig.parse("proxy_service:\n  tunnel_public_addr: [a, b]\n", file: "f") }
    }
}
