import Foundation
import TeleportTestSupport
import Testing

/// `/metrics` exports what operators graph, and the numbers move with real use: scraped before
/// and after a `tsh login` and a `tsh ssh` session against our real binaries (issue 13, item 16).
@Suite("metrics", .serialized)
struct MetricsTests {
    /// The samples of a Prometheus text page: `name{labels}` to value.
    static func samples(_ page: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in page.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }

    @Test("every family has HELP and TYPE; logins, certificates, sessions, connections, heartbeats, audit and backend latency move")
    func metricsMoveWithALoginAndASession() async throws {
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        try await withCluster(try ClusterFixture(clusterName: "metrics.example")) { cluster in
            var codes = try await TSHLoginTests.signUp(cluster)
            let beforePage = try await cluster.diag("metrics")
            #expect(beforePage.status == 200)
            let before = Self.samples(beforePage.body)

            let proxy = "127.0.0.1:\(cluster.webPort)"
            let login = try await TSHLoginTests.login(
                tsh, ["--proxy=\(proxy)", "--user=joe", "--insecure"], password: TSHLoginTests.password, code: try await codes.next())
            try #require(login.status == 0, "\(login.transcript)")
            let failed = try await TSHLoginTests.login(
                tsh, ["--proxy=\(proxy)", "--user=joe", "--insecure"], password: "wrong password, surely", code: try await codes.next())
            #expect(failed.status != 0, "\(failed.transcript)")
            let session = try await tsh.run(["--insecure", "ssh", "root@testnode", "echo metered"])
            #expect(session.exitCode == 0 && session.stdout.contains("metered"), "\(session)")

            // Session ends and heartbeats arrive asynchronously: wait for them, then compare.
            var after: [String: Double] = [:]
            let deadline = ContinuousClock.now + .seconds(20)
            repeat {
                after = Self.samples(try await cluster.diag("metrics").body)
                if after[#"teleport_sessions_active{service="node"}"#] == 0,
                    after["teleport_heartbeats_received_total", default: 0] > before["teleport_heartbeats_received_total", default: 0]
                {
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
            } while ContinuousClock.now < deadline

            func grew(_ name: String, by least: Double = 1, sourceLocation: SourceLocation = #_sourceLocation) {
                let old = before[name, default: 0]
                let new = after[name, default: 0]
                #expect(new - old >= least, "\(name): \(old) -> \(new)", sourceLocation: sourceLocation)
            }
            grew(#"teleport_logins_total{result="success"}"#)
            grew(#"teleport_logins_total{result="failure"}"#)
            grew(#"teleport_certificates_issued_total{type="user"}"#)
            grew(#"teleport_sessions_total{service="node"}"#)
            grew(#"teleport_connections_total{service="node"}"#)
            grew(#"teleport_ssh_authentications_total{result="success",service="node"}"#)
            grew("teleport_heartbeats_received_total")
            grew("teleport_audit_events_written_total", by: 3)
            grew(#"teleport_backend_request_duration_seconds_count{operation="get"}"#)
            #expect(after[#"teleport_sessions_active{service="node"}"#] == 0, "the session ended")
            #expect(after[#"teleport_build_info{version="\#(try await Self.version())"}"#] == 1)
            // The proxy carried the session: by its SSH port or by a tunnel through its web port.
            let viaProxy =
                after[#"teleport_connections_total{service="proxy"}"#, default: 0] + after["teleport_proxy_tunnels_total", default: 0]
            let viaProxyBefore =
                before[#"teleport_connections_total{service="proxy"}"#, default: 0] + before["teleport_proxy_tunnels_total", default: 0]
            #expect(viaProxy > viaProxyBefore, "the proxy counted the connection")

            // Prometheus conventions: each family announced once with HELP and TYPE; counters end in _total.
            let page = try await cluster.diag("metrics").body
            let types = page.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }
            for line in types {
                let parts = line.split(separator: " ")
                try #require(parts.count == 4, "\(line)")
                #expect(page.contains("# HELP \(parts[2]) "), "\(parts[2]) has no HELP")
                if parts[3] == "counter" { #expect(parts[2].hasSuffix("_total"), "\(parts[2])") }
                #expect(parts[2].hasPrefix("teleport_"), "\(parts[2])")
            }
            #expect(Set(types).count == types.count, "a family is announced twice")
            #expect(page.contains(#"teleport_backend_request_duration_seconds_bucket{operation="get",le="+Inf"}"#))
            await cluster.stop()
        }
    }

    static func version() async throws -> String {
        let result = try await TestSupport.run(try ClusterFixture.binary("teleport"), ["version"])
        // "Teleport vX.Y.Z swift"
        return result.stdout.split(separator: " ").dropFirst().first.map { String($0.dropFirst()) } ?? ""
    }
}
