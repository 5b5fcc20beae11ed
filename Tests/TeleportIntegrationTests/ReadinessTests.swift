import Foundation
import TeleportTestSupport
import Testing

/// `/readyz` for a load balancer's health check (issue 18): a proxy whose auth servers stop answering,
/// and an auth server whose store stops answering, say 503 with the reason, and 200 again once it is
/// back; `/healthz` (liveness) stays 200 throughout.
@Suite("readiness follows what a service depends on", .timeLimit(.minutes(5)))
struct ReadinessTests {
    /// Polls `/readyz` until `condition` holds on (status, body); returns the last answer.
    static func readyz(_ cluster: ClusterFixture, within limit: Duration, until condition: (Int, String) -> Bool) async throws -> (status: Int, body: String) {
        var answer = try await cluster.diag("readyz")
        let deadline = ContinuousClock.now + limit
        while !condition(answer.status, answer.body), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))
            answer = try await cluster.diag("readyz")
        }
        return answer
    }

    @Test func aProxyWithoutAnAuthServerIsNotReady() async throws {
        let token = "readiness-proxy-token-7f2c"
        try await withCluster(try ClusterFixture(clusterName: "ready.example", authSection: "  tokens: [\"proxy:\(token)\"]")) { auth in
            try await auth.start(["--roles=auth"])
            let agentSection = """
                  auth_servers: ["127.0.0.1:\(auth.authPort)"]
                  auth_token: \(token)
                """
            try await withCluster(try ClusterFixture(clusterName: "ready.example", teleportSection: agentSection)) { proxy in
                try await proxy.start(["--roles=proxy"])
                await auth.stop()
                let down = try await Self.readyz(proxy, within: .seconds(60)) { status, _ in status == 503 }
                #expect(down.status == 503 && down.body.contains("\"status\":\"degraded\"") && down.body.contains("no auth server answers the proxy"), "\(down)\n\(proxy.log)")
                #expect(try await proxy.diag("healthz").status == 200)
                try await auth.start(["--roles=auth"])
                let up = try await Self.readyz(proxy, within: .seconds(60)) { status, _ in status == 200 }
                #expect(up.status == 200, "\(up)\n\(proxy.log)")
            }
        }
    }

    @Test(.enabled(if: DatabaseServers.postgresAvailable, "PostgreSQL 15 is not installed"))
    func anAuthServerWhoseStoreIsDownIsNotReady() async throws {
        try await PostgresBackendServer.with { server in
            let database = try await server.createDatabase()
            let storage = """
                  storage:
                    type: postgresql
                    conn_string: "\(server.connString(database: database))"
                """
            try await withCluster(try ClusterFixture(clusterName: "readypg.example", teleportSection: storage)) { cluster in
                try await cluster.start(["--roles=auth"])
                try await server.postgres.restartImmediately {
                    let down = try await Self.readyz(cluster, within: .seconds(30)) { status, _ in status == 503 }
                    #expect(down.status == 503 && down.body.contains("backend: "), "\(down)\n\(cluster.log)")
                    #expect(try await cluster.diag("healthz").status == 200)
                }
                let up = try await Self.readyz(cluster, within: .seconds(60)) { status, _ in status == 200 }
                #expect(up.status == 200, "\(up)\n\(cluster.log)")
                #expect(cluster.log.contains("the backend answers again"), "\(cluster.log)")
            }
        }
    }
}
