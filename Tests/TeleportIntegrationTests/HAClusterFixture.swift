import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The seed's high-availability layout, all real processes on loopback: several auth servers on one
/// shared store (`storage` is the `teleport:` section's storage block), proxies joined with
/// `auth_servers: [every auth server]` behind HAProxy (TCP round robin, each proxy health-checked
/// with `GET /readyz` on its diagnostics port), direct nodes configured with every auth server and
/// tunnelled nodes that know only the balancer. Everything is stopped by PID and removed by
/// ``cleanUp()``.
final class HACluster: @unchecked Sendable {
    static let token = "ha-cluster-static-token-4e8d1f"
    static let haproxy = "/usr/sbin/haproxy"
    static var haproxyInstalled: Bool { FileManager.default.isExecutableFile(atPath: haproxy) }

    let clusterName: String
    let auths: [ClusterFixture]
    let proxies: [ClusterFixture]
    let balancer: MultiProxyTunnelTests.Daemon
    /// Direct nodes first, then tunnelled ones; their node names are `nodeNames`.
    let nodes: [MultiProxyTunnelTests.Daemon]
    let nodeNames: [String]
    let directNodes: Int
    let lbPort: UInt16
    let statsPort: UInt16
    /// `audit_sessions_uri`'s directory (shared by the auth servers).
    let sessions: URL

    /// `storage(sessionsURI)` is the `  storage:` block (indented two spaces).
    init(
        clusterName: String, authServers: Int = 2, proxies proxyCount: Int = 2, directNodes: Int = 2, tunnelNodes: Int = 1,
        storage: (String) -> String
    ) throws {
        self.clusterName = clusterName
        self.directNodes = directNodes
        sessions = try TestSupport.makeTemporaryDirectory(prefix: "ha-sessions")
        let block = storage("file://\(sessions.path)")
        let tokens = "  tokens: [\"node,proxy:\(Self.token)\"]"
        auths = try (0..<authServers).map { _ in try ClusterFixture(clusterName: clusterName, teleportSection: block, authSection: tokens) }
        let authList = auths.map { "\"127.0.0.1:\($0.authPort)\"" }.joined(separator: ", ")
        lbPort = try TestSupport.freeLoopbackPort()
        statsPort = try TestSupport.freeLoopbackPort()
        let agentSection = """
              auth_servers: [\(authList)]
              auth_token: \(Self.token)
            """
        let proxySection = """
              proxy_listener_mode: multiplex
              public_addr: 127.0.0.1:\(lbPort)
            """
        proxies = try (0..<proxyCount).map { _ in
            try ClusterFixture(clusterName: clusterName, teleportSection: agentSection, proxySection: proxySection)
        }
        balancer = try MultiProxyTunnelTests.Daemon(name: "ha-haproxy")
        nodeNames = (0..<(directNodes + tunnelNodes)).map { "hanode\($0 + 1)" }
        nodes = try nodeNames.map { try MultiProxyTunnelTests.Daemon(name: $0) }
        for (index, node) in nodes.enumerated() {
            let joining = index < directNodes ? "auth_servers: [\(authList)]" : "proxy_server: 127.0.0.1:\(lbPort)"
            let listen = index < directNodes ? "listen_addr: 127.0.0.1:\(try TestSupport.freeLoopbackPort())" : ""
            try TestSupport.write(
                """
                version: v3
                teleport:
                  nodename: \(nodeNames[index])
                  data_dir: \(node.directory.appendingPathComponent("data").path)
                  auth_token: \(Self.token)
                  \(joining)
                  log:
                    severity: DEBUG
                auth_service:
                  enabled: false
                proxy_service:
                  enabled: false
                ssh_service:
                  enabled: true
                  \(listen)
                  labels:
                    ha: "yes"

                """, to: node.directory.appendingPathComponent("teleport.yaml"))
        }
    }

    /// HAProxy's configuration: TCP round robin over the proxies' web ports; each server is checked
    /// with `GET /readyz` on its diagnostics port (down after two failures, up after one success);
    /// a stats page (CSV) on `statsPort` shows what the checks decided.
    var haproxyConfig: String {
        let servers = proxies.enumerated().map { index, proxy in
            "    server proxy\(index) 127.0.0.1:\(proxy.webPort) check port \(proxy.diagPort) inter 1s fall 2 rise 1"
        }.joined(separator: "\n")
        return """
            global
                maxconn 512
            defaults
                timeout connect 3s
                timeout client 10m
                timeout server 10m
                retries 3
                option redispatch 1
            listen stats
                mode http
                bind 127.0.0.1:\(statsPort)
                stats enable
                stats uri /stats
            frontend teleport
                mode tcp
                bind 127.0.0.1:\(lbPort)
                default_backend proxies
            backend proxies
                mode tcp
                balance roundrobin
                option httpchk GET /readyz
                timeout check 5s
                http-check expect status 200
            \(servers)

            """
    }

    /// Starts the auth servers together, then the proxies, HAProxy and the nodes; returns once every
    /// node is registered and every tunnelled node holds a tunnel to every proxy.
    func start() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for auth in auths { group.addTask { try await auth.start(["--roles=auth"]) } }
            try await group.waitForAll()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for proxy in proxies { group.addTask { try await proxy.start(["--roles=proxy"]) } }
            try await group.waitForAll()
        }
        let configURL = balancer.directory.appendingPathComponent("haproxy.cfg")
        try TestSupport.write(haproxyConfig, to: configURL)
        try balancer.start(Self.haproxy, ["-db", "-f", configURL.path])
        try #require(await TestSupport.waitForPort(lbPort, timeout: .seconds(20)), "haproxy did not listen:\n\(self.balancer.log)")
        let teleport = try ClusterFixture.binary("teleport")
        for node in nodes {
            try node.start(teleport, ["start", "-c", node.directory.appendingPathComponent("teleport.yaml").path])
        }
        let registered = try await Self.eventually(within: .seconds(90)) {
            let listed = try await self.auths[0].tctl(["nodes", "ls"]).stdout
            return self.nodeNames.allSatisfy { listed.contains($0) }
        }
        let listed = try await auths[0].tctl(["nodes", "ls"])
        try #require(registered, "nodes did not register: \(listed)\n\(self.nodes.map { "\($0.name):\n\($0.log.suffix(3000))" }.joined(separator: "\n"))")
        // Every tunnelled node holds a tunnel to every proxy (each proxy logged it).
        let tunnelled = try await Self.eventually(within: .seconds(120)) {
            let rows = try await self.auths[0].tctl(["nodes", "ls"]).stdout.split(separator: "\n")
            for name in self.nodeNames.dropFirst(self.directNodes) {
                guard let row = rows.first(where: { $0.contains(name) }),
                    let uuid = row.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first
                else { return false }
                for proxy in self.proxies where !proxy.log.split(separator: "\n").contains(where: { $0.contains("reverse tunnel established") && $0.contains(uuid) }) {
                    return false
                }
            }
            return true
        }
        try #require(tunnelled, "a tunnelled node lacks a tunnel to a proxy:\n\(self.nodes.last?.log.suffix(4000) ?? "")")
    }

    /// HAProxy's view of each proxy: `(status, check_status)` per server, e.g. `("UP", "L7OK")`.
    func balancerView() async throws -> [String: (status: String, check: String)] {
        let csv = try await TestSupport.run("/usr/bin/curl", ["-s", "-m", "5", "http://127.0.0.1:\(statsPort)/stats;csv"]).stdout
        let lines = csv.split(separator: "\n")
        guard let header = lines.first?.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init),
            let name = header.firstIndex(of: "svname"), let status = header.firstIndex(of: "status"),
            let check = header.firstIndex(of: "check_status")
        else { return [:] }
        var view: [String: (status: String, check: String)] = [:]
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count > max(name, status, check), fields[0] == "proxies", fields[name].hasPrefix("proxy") else { continue }
            view[fields[name]] = (fields[status], fields[check])
        }
        return view
    }

    /// Everything the processes wrote (for failure messages), each log's end.
    var logs: String {
        (auths.enumerated().map { "auth \($0.offset):\n\($0.element.log.suffix(3000))" }
            + proxies.enumerated().map { "proxy \($0.offset):\n\($0.element.log.suffix(3000))" }
            + nodes.map { "\($0.name):\n\($0.log.suffix(2000))" } + ["haproxy:\n\(balancer.log.suffix(1000))"]).joined(separator: "\n")
    }

    func cleanUp() async {
        for node in nodes { await node.cleanUp() }
        await balancer.cleanUp()
        for proxy in proxies { await proxy.cleanUp() }
        for auth in auths { await auth.cleanUp() }
        try? FileManager.default.removeItem(at: sessions)
    }

    /// Runs `body` with a started cluster, cleaned up afterwards on success or failure.
    static func with<T>(_ cluster: HACluster, _ body: (HACluster) async throws -> T) async throws -> T {
        do {
            try await cluster.start()
            let value = try await body(cluster)
            await cluster.cleanUp()
            return value
        } catch {
            Issue.record("cluster logs:\n\(cluster.logs)")
            await cluster.cleanUp()
            throw error
        }
    }

    /// Polls `check` every 300 ms until it holds or `limit` passes.
    static func eventually(within limit: Duration, _ check: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await check() { return true }
            try await Task.sleep(for: .milliseconds(300))
        }
        return false
    }
}
