import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// Issue 18's "Done when" cluster: two auth servers on one store, two proxies behind HAProxy
/// (health-checked on `/readyz`), three nodes (two configured with both auth servers, one tunnelled
/// through the balancer). A user signs up, logs in with `tsh` through the balancer, lists and
/// reaches every node; on PostgreSQL also the shared audit log (`tctl events ls` on either auth
/// server), a recorded session played back, and a web session made on one proxy used on the other.
@Suite(
    "an HA cluster behind a load balancer", .serialized, .timeLimit(.minutes(8)),
    .enabled(if: SSHDFixture.available, "needs root and openssh-client"),
    .enabled(if: HACluster.haproxyInstalled, "needs haproxy (scripts/install-test-deps.sh)"))
struct HAClusterTests {
    @Test(.enabled(if: DatabaseServers.postgresAvailable, "PostgreSQL 15 is not installed"))
    func onPostgres() async throws {
        try await PostgresBackendServer.with { server in
            let database = try await server.createDatabase()
            let audit = try await server.createDatabase()
            let cluster = try HACluster(clusterName: "hapg.example") { sessions in
                """
                  storage:
                    type: postgresql
                    conn_string: "\(server.connString(database: database))"
                    audit_events_uri: ["\(server.connString(database: audit))"]
                    audit_sessions_uri: "\(sessions)"
                """
            }
            try await HACluster.with(cluster) { cluster in
                try await exercise(cluster, full: true)
            }
        }
    }

    @Test(.enabled(if: EtcdServer.isInstalled, "etcd-server is not installed"))
    func onEtcd() async throws {
        try await EtcdServer.with { etcd in
            let cluster = try HACluster(clusterName: "haetcd.example", directNodes: 1, tunnelNodes: 1) { sessions in
                """
                  storage:
                    type: etcd
                    peers: ["\(etcd.url)"]
                    prefix: /teleport/
                    tls_cert_file: \(etcd.path("client.pem"))
                    tls_key_file: \(etcd.path("client.key"))
                    tls_ca_file: \(etcd.path("ca.pem"))
                    audit_sessions_uri: "\(sessions)"
                """
            }
            try await HACluster.with(cluster) { cluster in
                try await exercise(cluster, full: false)
            }
        }
    }

    /// Signs `joe` up through the first proxy; his TOTP code source.
    static func signUp(_ cluster: HACluster) async throws -> TSHCodes {
        let link = try await SignupHelper.addUser(cluster.auths[0], name: "joe", logins: "joe,root")
        let enrolled = try await SignupHelper.enrol(WebDriver(cluster: cluster.proxies[0]), link, password: TSHLoginTests.password)
        return TSHCodes(secret: enrolled.secret, usedAt: enrolled.time)
    }

    func exercise(_ cluster: HACluster, full: Bool) async throws {
        // HAProxy's health checks (`GET /readyz`) pass for every proxy.
        let healthy = try await HACluster.eventually(within: .seconds(20)) {
            let view = try await cluster.balancerView()
            return view.count == cluster.proxies.count && view.values.allSatisfy { $0.status == "UP" && $0.check == "L7OK" }
        }
        let view = try await cluster.balancerView()
        #expect(healthy, "\(view)")

        var codes = try await Self.signUp(cluster)
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        let balancer = "127.0.0.1:\(cluster.lbPort)"
        let login = try await TSHLoginTests.login(
            tsh, ["--proxy=\(balancer)", "--user=joe", "--insecure"], password: TSHLoginTests.password, code: try await codes.next())
        try #require(login.status == 0, "\(login.transcript)")

        // tsh ls through the balancer lists every node; tsh ssh reaches each (several times, so
        // both proxies serve).
        let listed = try await tsh.run(["ls"])
        for name in cluster.nodeNames {
            #expect(listed.stdout.contains(name), "\(listed)")
        }
        #expect(listed.stdout.contains("⟵ Tunnel"), "\(listed)")
        for name in cluster.nodeNames {
            for attempt in 0..<2 {
                let ran = try await tsh.run(["ssh", "root@\(name)", "echo ran-\(attempt)-on-\(name)"], timeout: .seconds(40))
                #expect(ran.exitCode == 0 && ran.stdout == "ran-\(attempt)-on-\(name)\n", "\(name): \(ran)")
            }
        }

        // A web session made through one proxy is in the store: the other proxy knows it.
        let web = WebClient(cluster: cluster.proxies[0])
        let session = try await web.send(
            "POST", "/webapi/sessions", json: ["user": "joe", "password": TSHLoginTests.password, "otp_code": try await codes.next()])
        #expect(session.status == 200, "\(session)")
        for proxy in cluster.proxies {
            let me = try await web.on(port: proxy.webPort).send("GET", "/webapi/me")
            #expect(me.status == 200 && me.body.contains("\"user\":\"joe\""), "\(me)")
        }
        guard full else { return }

        // A recorded interactive session on a direct node, played back through the balancer.
        let terminal = try tsh.terminal(["ssh", "-t", "root@\(cluster.nodeNames[0])"])
        try await terminal.expect("# ")
        terminal.sendLine("echo recorded-$((6*7)); exit")
        #expect(try await terminal.wait() == 0, "\(terminal.transcript)")
        var sid = ""
        _ = try await HACluster.eventually(within: .seconds(60)) {
            let recordings = try await tsh.run(["recordings", "ls", "--format=json"])
            let list = (try? ResourceCodec.jsonDecoder().decode([[String: JSONValue]].self, from: Data(recordings.stdout.utf8))) ?? []
            if case .string(let found)? = list.first?["sid"] { sid = found }
            return !sid.isEmpty
        }
        try #require(!sid.isEmpty, "the recording was not listed")
        let played = try await tsh.run(["play", "--format=text", sid])
        #expect(played.exitCode == 0 && played.stdout.contains("recorded-42"), "\(played)")

        // The shared audit log: both auth servers list the same logins and sessions.
        func events(_ auth: ClusterFixture, _ type: String) async throws -> [String] {
            try await AuditEventsTests.events(auth, ["--type=\(type)"]).map { event in
                String(decoding: try ResourceCodec.json(event), as: UTF8.self)
            }.sorted()
        }
        for type in ["user.login", "session.start", "session.end", "exec"] {
            let first = try await events(cluster.auths[0], type)
            let second = try await events(cluster.auths[1], type)
            #expect(!first.isEmpty && first == second, "\(type): \(first)\n---\n\(second)")
        }
        // Every node's commands are there, whichever auth server the node sent them to.
        let execs = try await events(cluster.auths[1], "exec")
        for name in cluster.nodeNames {
            #expect(execs.contains { $0.contains("echo ran-1-on-\(name)") }, "no exec on \(name): \(execs)")
        }
    }
}
