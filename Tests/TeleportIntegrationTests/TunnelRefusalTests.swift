import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// Reverse tunnels refused at the proxy's web port (ALPN `teleport-reversetunnel`) are audited as
/// `reverse_tunnel.rejected` (T9400W) with the reason, and counted in
/// `teleport_reverse_tunnels_rejected_total`: a client with no certificate, and a host certificate
/// of the wrong role (the proxy's own identity, role Proxy, where a Node is required). Driven with
/// the real `openssl s_client`.
@Suite("reverse tunnel refusals", .serialized)
struct TunnelRefusalTests {
    /// `openssl s_client` to the web port offering only the tunnel's ALPN; `certificate` is a
    /// `(cert, key)` pair of PEM files, or nil for none. Stdin is /dev/null: it closes after the
    /// handshake.
    func dial(_ cluster: ClusterFixture, certificate: (String, String)?) async throws -> CommandResult {
        var arguments = ["s_client", "-connect", "127.0.0.1:\(cluster.webPort)", "-alpn", "teleport-reversetunnel", "-quiet"]
        if let certificate { arguments += ["-cert", certificate.0, "-key", certificate.1] }
        return try await TestSupport.run("/usr/bin/openssl", arguments, timeout: .seconds(20))
    }

    @Test("no client certificate and a Proxy certificate are refused, audited with the reason and counted")
    func refusedTunnelsAreAudited() async throws {
        try await withCluster(try ClusterFixture(clusterName: "tunnelrefuse.example")) { cluster in
            // proxy_service.tunnel_public_addr is what the ping tells agents to dial.
            let text = try TestSupport.read(cluster.configURL)
            try TestSupport.write(
                text.replacingOccurrences(of: "  tunnel_listen_addr:", with: "  tunnel_public_addr: tunnel.example.com:443\n  tunnel_listen_addr:"),
                to: cluster.configURL)
            try await cluster.start()
            #expect(try await WebPortRouterTests.ping(cluster)["tunnel_public_addr"] == .string("tunnel.example.com:443"))
            let before = MetricsTests.samples(try await cluster.diag("metrics").body)

            _ = try await dial(cluster, certificate: nil)
            let keys = cluster.dataDir.appendingPathComponent("keys")
            let proxyCert = keys.appendingPathComponent("proxy.crt").path
            let proxyKey = keys.appendingPathComponent("proxy.key").path
            try #require(FileManager.default.fileExists(atPath: proxyCert), "no proxy identity at \(proxyCert)")
            _ = try await dial(cluster, certificate: (proxyCert, proxyKey))

            // Events travel through the proxy's audit queue: wait for both.
            var all = ""
            var count = 0
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                all = try await cluster.tctl(["events", "ls", "--type", "reverse_tunnel.rejected", "--format", "json"]).stdout
                count = all.components(separatedBy: #""event":"reverse_tunnel.rejected""#).count - 1
                if count >= 2 { break }
                try await Task.sleep(for: .milliseconds(300))
            }
            #expect(count >= 2, "\(all)\n\(cluster.log.suffix(3000))")
            #expect(all.contains("T9400W"), "\(all)")
            #expect(all.contains("TLS handshake failed"), "the certificate-less client: \(all)")
            #expect(all.contains("Proxy"), "the wrong role is named: \(all)")
            #expect(cluster.log.contains("reverse tunnel refused"))

            let after = MetricsTests.samples(try await cluster.diag("metrics").body)
            let refused = after["teleport_reverse_tunnels_rejected_total", default: 0] - before["teleport_reverse_tunnels_rejected_total", default: 0]
            #expect(refused >= 2, "teleport_reverse_tunnels_rejected_total grew by \(refused)")
            #expect(after["teleport_reverse_tunnels_active", default: 0] == 0)
            await cluster.stop()
        }
    }
}
