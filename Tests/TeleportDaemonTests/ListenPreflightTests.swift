import TeleportAPI
@testable import TeleportDaemon
import Testing

/// Which listeners the start-up check tries: a node that may turn out to be tunnelled (its auth
/// server may be a proxy's web port, found by a ping at start) is not held to port 3022.
@Suite struct ListenPreflightTests {
    func keys(_ yaml: String, _ configure: (inout StartFlags) -> Void = { _ in }) throws -> [String] {
        try ListenPreflight.listeners(try DaemonConfig.resolve(flags: try DaemonTestSupport.flags(config: yaml, configure))).map(\.key)
    }

    @Test func allInOneChecksEveryListener() throws {
        let all = try keys("")
        #expect(all.contains("ssh_service.listen_addr") && all.contains("auth_service.listen_addr") && all.contains("proxy_service.web_listen_addr"))
    }

    @Test func aNodeOnlyProcessWithoutListenAddrIsNotHeldToPort3022() throws {
        let node = try keys("") { flags in
            flags.roles = "node"
            flags.authServer = "proxy.example.com:3080"
        }
        #expect(!node.contains("ssh_service.listen_addr"), "\(node)")
        let viaProxyServer = try keys("teleport:\n  proxy_server: proxy.example.com\nauth_service:\n  enabled: false\nproxy_service:\n  enabled: false\n")
        #expect(!viaProxyServer.contains("ssh_service.listen_addr"), "\(viaProxyServer)")
    }

    @Test func aConfiguredListenAddrIsAlwaysChecked() throws {
        let node = try keys("ssh_service:\n  listen_addr: 127.0.0.1:3022\n") { flags in
            flags.roles = "node"
            flags.authServer = "proxy.example.com:3080"
        }
        #expect(node.contains("ssh_service.listen_addr"), "\(node)")
    }
}
