import Crypto
import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 12, item 1: a join token must not take over an existing host's UUID, and a node whose
/// identity is removed stops its node service without taking down auth and proxy.
@Suite("host takeover through /v1/join", .serialized)
struct HostTakeoverTests {
    /// `curl` against the auth API: the status and body. `identity` names a key pair in the
    /// cluster's `data/keys` (`node`, `admin`) presented as the TLS client certificate.
    static func authAPI(
        _ cluster: ClusterFixture, _ method: String, _ path: String, body: Data? = nil, identity: String? = nil
    ) async throws -> (status: Int, body: String) {
        var arguments = ["-sk", "-m", "20", "-X", method, "-o", "-", "-w", "\n%{http_code}"]
        if let identity {
            let keys = cluster.dataDir.appendingPathComponent("keys")
            arguments += ["--cert", keys.appendingPathComponent("\(identity).crt").path, "--key", keys.appendingPathComponent("\(identity).key").path]
        }
        if let body {
            let file = cluster.directory.appendingPathComponent("body-\(UUID().uuidString)")
            try body.write(to: file)
            arguments += ["-H", "Content-Type: application/octet-stream", "--data-binary", "@\(file.path)"]
        }
        arguments.append("https://127.0.0.1:\(cluster.authPort)\(path)")
        let result = try await TestSupport.run("/usr/bin/curl", arguments)
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    static func hostUUID(_ cluster: ClusterFixture) throws -> String {
        try TestSupport.read(cluster.dataDir.appendingPathComponent("host_uuid")).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func nodeToken(_ cluster: ClusterFixture) async throws -> String {
        let added = try await cluster.tctl(["nodes", "add", "--ttl=10m"])
        let token = try #require(added.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") }?.split(separator: " ").last)
        return String(token)
    }

    /// An attacker's join request for `hostUUID`: a fresh TLS key and a fresh SSH host key.
    static func attackerRequest(_ cluster: ClusterFixture, token: String, hostUUID: String) async throws -> (Data, String) {
        let keyPath = cluster.directory.appendingPathComponent("attacker_host_key").path
        _ = try await TestSupport.run(TestSupport.sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-f", keyPath])
        let sshKey = try TestSupport.read(URL(fileURLWithPath: keyPath + ".pub")).trimmingCharacters(in: .whitespacesAndNewlines)
        let request = AuthAPI.JoinRequest(
            token: token, role: .node, hostUUID: hostUUID, nodeName: "evil", addresses: [],
            tlsPublicKeyPEM: P256.Signing.PrivateKey().publicKey.pemRepresentation, sshHostPublicKey: sshKey)
        return (try ResourceCodec.json(request), sshKey)
    }

    static func alive(_ cluster: ClusterFixture) -> Bool {
        guard let pid = cluster.pid else { return false }
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == 0
    }

    @Test("a valid token with an existing host's UUID is refused and audited; the real node and the daemon keep working", .timeLimit(.minutes(3)))
    func joinWithExistingUUIDIsRefused() async throws {
        try await withCluster(try ClusterFixture(clusterName: "takeover.example")) { cluster in
            try await cluster.start()
            let victim = try Self.hostUUID(cluster)
            let token = try await Self.nodeToken(cluster)
            let before = try await Self.authAPI(cluster, "GET", "/v1/hostkeys", identity: "admin")
            #expect(before.status == 200 && before.body.contains(victim), "\(before)")

            let (body, attackerKey) = try await Self.attackerRequest(cluster, token: token, hostUUID: victim)
            let attack = try await Self.authAPI(cluster, "POST", "/v1/join", body: body)
            #expect(attack.status == 403, "\(attack)")
            #expect(attack.body.contains("already belongs to a joined host"), "\(attack)")
            #expect(!attack.body.contains("BEGIN CERTIFICATE"), "no certificate for the attacker")

            // An upper-case spelling of the same UUID is no way around it.
            let (upper, _) = try await Self.attackerRequest(cluster, token: token, hostUUID: victim.uppercased())
            let shouted = try await Self.authAPI(cluster, "POST", "/v1/join", body: upper)
            #expect(shouted.status == 400 && shouted.body.contains("is not a lower-case UUID"), "\(shouted)")

            // The registered host key is still the real one.
            let after = try await Self.authAPI(cluster, "GET", "/v1/hostkeys", identity: "admin")
            #expect(after.body == before.body, "\(after)")
            let attackerBlob = try #require(attackerKey.split(separator: " ").dropFirst().first)
            #expect(!after.body.contains(String(attackerBlob)))

            // Audited: node.join failure with the reason.
            let joins = try await AuditEventsTests.events(cluster, ["--type=node.join"])
            #expect(
                joins.contains {
                    $0["success"] == .bool(false) && $0["host_id"] == .string(victim)
                        && ($0["error"].flatMap { if case .string(let text) = $0 { text } else { nil } } ?? "").contains("already belongs")
                }, "\(joins)")

            // Past a heartbeat interval the real node is still registered and the daemon is up.
            try await Task.sleep(for: .seconds(12))
            #expect(Self.alive(cluster), "the daemon is still running:\n\(cluster.log.suffix(2000))")
            #expect(!cluster.log.contains("identity was removed"), "\(cluster.log.suffix(2000))")
            let listed = try await cluster.tctl(["nodes", "ls"])
            #expect(listed.stdout.contains("testnode") && listed.stdout.contains(victim), "\(listed)")

            // The real host, proving its identity, may renew it (and a removed host's UUID is free again).
            let (renewal, _) = try await Self.attackerRequest(cluster, token: token, hostUUID: victim)
            let renewed = try await Self.authAPI(cluster, "POST", "/v1/join", body: renewal, identity: "node")
            #expect(renewed.status == 200 && renewed.body.contains("BEGIN CERTIFICATE"), "\(renewed)")
            await cluster.stop()
        }
    }

    @Test("a host running node and proxy joins both roles under one UUID: its second join proves the first identity", .timeLimit(.minutes(3)))
    func secondRoleJoinsWithProof() async throws {
        try await withCluster(try ClusterFixture(clusterName: "tworoles.example")) { cluster in
            try await cluster.start()
            let added = try await cluster.tctl(["tokens", "add", "--type=node,proxy", "--ttl=10m"])
            let line = try #require(added.stdout.split(separator: "\n").first { $0.hasPrefix("The node,proxy token: ") }, "\(added)")
            let token = try #require(line.split(separator: " ").last.map(String.init))
            let directory = try TestSupport.makeTemporaryDirectory(prefix: "tworoles")
            defer { try? FileManager.default.removeItem(at: directory) }
            let config = directory.appendingPathComponent("teleport.yaml")
            try TestSupport.write(
                """
                teleport:
                  nodename: edge1
                  data_dir: \(directory.appendingPathComponent("data").path)
                  auth_token: \(token)
                  auth_servers: ["127.0.0.1:\(cluster.authPort)"]
                auth_service:
                  enabled: false
                proxy_service:
                  enabled: true
                  listen_addr: 127.0.0.1:\(try TestSupport.freeLoopbackPort())
                  web_listen_addr: 127.0.0.1:\(try TestSupport.freeLoopbackPort())
                  tunnel_listen_addr: 127.0.0.1:\(try TestSupport.freeLoopbackPort())
                ssh_service:
                  enabled: true
                  listen_addr: 127.0.0.1:\(try TestSupport.freeLoopbackPort())

                """, to: config)
            let log = directory.appendingPathComponent("edge.log")
            let pid = try TestSupport.spawnDaemon(try ClusterFixture.binary("teleport"), ["start", "-c", config.path], logPath: log.path)
            let ready = await TestSupport.eventually(timeout: .seconds(60)) {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                return text.contains("teleport is ready") || text.contains("ERROR")
            } && ((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("teleport is ready")
            await TestSupport.stopDaemon(pid)
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            #expect(ready, "\(text.suffix(3000))")
            let uuid = try TestSupport.read(directory.appendingPathComponent("data/host_uuid")).trimmingCharacters(in: .whitespacesAndNewlines)
            let joins = try await AuditEventsTests.events(cluster, ["--type=node.join"]).filter { $0["host_id"] == .string(uuid) }
            #expect(joins.count == 2 && joins.allSatisfy { $0["success"] == .bool(true) }, "\(joins)")
            await cluster.stop()
        }
    }

    @Test("a node whose identity is removed stops its node service; auth and proxy of the same process keep running", .timeLimit(.minutes(3)))
    func removedNodeKeepsDaemonUp() async throws {
        try await withCluster(try ClusterFixture(clusterName: "removal.example")) { cluster in
            try await cluster.start()
            let uuid = try Self.hostUUID(cluster)
            #expect(try await cluster.tctl(["rm", "node/\(uuid)"]).exitCode == 0)
            // The next heartbeat (within 10 s) is refused; the node's services stop with a clear line.
            #expect(
                await TestSupport.eventually(timeout: .seconds(30)) { cluster.log.contains("the node service stopped") },
                "\(cluster.log.suffix(3000))")
            #expect(await TestSupport.eventually(timeout: .seconds(10)) { cluster.log.contains("SSH service stopped listening") })
            #expect(Self.alive(cluster), "the daemon is still running:\n\(cluster.log.suffix(3000))")
            let status = try await cluster.tctl(["status"])
            #expect(status.exitCode == 0, "the auth service answers: \(status)")
            let ping = try await TestSupport.run("/usr/bin/curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(cluster.webPort)/webapi/ping"])
            #expect(ping.stdout == "200", "the proxy answers: \(ping)")
            #expect(!(await TestSupport.waitForPort(cluster.sshPort, timeout: .milliseconds(300))), "the node's SSH port is closed")
            #expect(await cluster.stop(), "the daemon still stops gracefully")
        }
    }
}
