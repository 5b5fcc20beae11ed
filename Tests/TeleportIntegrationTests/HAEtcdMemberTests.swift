import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 18's fault "an etcd member stopped": a three-member etcd cluster (TLS, client
/// certificates, as `nobody`), `teleport` configured with all three peers. The member it talks to
/// first is stopped (-9): writes, reads, certificates and `tsh ssh` (the node learns the new
/// certificate through its watch) keep working on the other two.
@Suite("an etcd member stopped", .timeLimit(.minutes(5)), .enabled(if: EtcdServer.isInstalled, "etcd-server is not installed"))
struct HAEtcdMemberTests {
    /// Three etcd members on loopback sharing one CA and certificates, stopped by PID.
    final class EtcdCluster: @unchecked Sendable {
        let directory: URL
        let clientPorts: [UInt16]
        let peerPorts: [UInt16]
        var pids: [pid_t?]

        init() throws {
            directory = try TestSupport.makeTemporaryDirectory(prefix: "etcd3")
            clientPorts = try (0..<3).map { _ in try TestSupport.freeLoopbackPort() }
            peerPorts = try (0..<3).map { _ in try TestSupport.freeLoopbackPort() }
            pids = [nil, nil, nil]
        }

        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        func url(_ member: Int) -> String { "https://127.0.0.1:\(clientPorts[member])" }

        func start() async throws {
            let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            _ = try await TestSupport.runChecked(
                "/usr/bin/openssl", ["req", "-x509"] + curve + ["-keyout", path("ca.key"), "-out", path("ca.pem"), "-subj", "/CN=etcd3-ca", "-days", "2"])
            try TestSupport.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n", to: URL(fileURLWithPath: path("server.ext")))
            try TestSupport.write("extendedKeyUsage=clientAuth\n", to: URL(fileURLWithPath: path("client.ext")))
            for name in ["server", "client"] {
                _ = try await TestSupport.runChecked(
                    "/usr/bin/openssl", ["req"] + curve + ["-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", "/CN=\(name)"])
                _ = try await TestSupport.runChecked(
                    "/usr/bin/openssl",
                    [
                        "x509", "-req", "-in", path("\(name).csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"), "-CAcreateserial",
                        "-out", path("\(name).pem"), "-days", "2", "-extfile", path("\(name).ext"),
                    ])
            }
            _ = try await TestSupport.runChecked("/bin/chown", ["-R", "nobody:nogroup", directory.path])
            let initial = (0..<3).map { "m\($0)=http://127.0.0.1:\(peerPorts[$0])" }.joined(separator: ",")
            for member in 0..<3 {
                let arguments = [
                    "--reuid=nobody", "--regid=nogroup", "--clear-groups", EtcdServer.etcdPath,
                    "--name", "m\(member)", "--data-dir", path("data\(member)"),
                    "--listen-client-urls", url(member), "--advertise-client-urls", url(member),
                    "--listen-peer-urls", "http://127.0.0.1:\(peerPorts[member])",
                    "--initial-advertise-peer-urls", "http://127.0.0.1:\(peerPorts[member])",
                    "--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", "etcd3-test",
                    "--cert-file", path("server.pem"), "--key-file", path("server.key"),
                    "--trusted-ca-file", path("ca.pem"), "--client-cert-auth", "--log-outputs", "stderr",
                ]
                pids[member] = try TestSupport.spawnDaemon("/usr/bin/setpriv", arguments, logPath: path("etcd\(member).log"))
            }
            for member in 0..<3 {
                let serving = try await HACluster.eventually(within: .seconds(60)) { try await self.serves(member) }
                try #require(serving, "etcd member \(member) did not come up:\n\((try? String(contentsOfFile: self.path("etcd\(member).log"), encoding: .utf8))?.suffix(2000) ?? "")")
            }
        }

        /// A read through member `member`'s JSON gateway answers 200.
        func serves(_ member: Int) async throws -> Bool {
            let probe = [
                "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", path("ca.pem"), "--cert", path("client.pem"),
                "--key", path("client.key"), "-X", "POST", "-d", "{\"key\":\"AA==\"}", "\(url(member))/v3/kv/range",
            ]
            return try await TestSupport.run("/usr/bin/curl", probe).stdout == "200"
        }

        func kill9(_ member: Int) async {
            guard let pid = pids[member] else { return }
            kill(pid, SIGKILL)
            _ = await TestSupport.reap(pid, killAfter: .seconds(5))
            pids[member] = nil
        }

        func remove() async {
            for case let pid? in pids { _ = await TestSupport.stopDaemon(pid) }
            pids = [nil, nil, nil]
            try? FileManager.default.removeItem(at: directory)
        }
    }

    @Test func theClusterGoesOnWhenAMemberStops() async throws {
        let etcd = try EtcdCluster()
        do {
            try await etcd.start()
            try await exercise(etcd)
        } catch {
            await etcd.remove()
            throw error
        }
        await etcd.remove()
    }

    func exercise(_ etcd: EtcdCluster) async throws {
        let storage = """
              storage:
                type: etcd
                peers: [\((0..<3).map { "\"\(etcd.url($0))\"" }.joined(separator: ", "))]
                prefix: /teleport/
                tls_cert_file: \(etcd.path("client.pem"))
                tls_key_file: \(etcd.path("client.key"))
                tls_ca_file: \(etcd.path("ca.pem"))
            """
        try await withCluster(try ClusterFixture(clusterName: "etcd3.example", teleportSection: storage)) { cluster in
            try await cluster.start()
            let tsh = try ClusterFixture.binary("tsh")
            let work = try TestSupport.makeTemporaryDirectory(prefix: "etcd3-work")
            defer { try? FileManager.default.removeItem(at: work) }
            func ssh(_ user: String) async throws -> CommandResult {
                let identity = work.appendingPathComponent("\(user).id").path
                let signed = try await cluster.tctl(["auth", "sign", "--user=\(user)", "--out=\(identity)"])
                try #require(signed.exitCode == 0, "\(signed)")
                return try await TestSupport.run(
                    tsh, ["-i", identity, "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure", "ssh", "root@testnode", "echo ran-as-\(user)"],
                    environment: ["HOME": work.path], timeout: .seconds(40))
            }
            #expect(try await cluster.tctl(["users", "add", "joe", "root"]).exitCode == 0)
            let before = try await ssh("joe")
            #expect(before.exitCode == 0 && before.stdout == "ran-as-joe\n", "\(before)")

            // The first peer (the one the backend tried first) goes away.
            await etcd.kill9(0)
            var added = try await cluster.tctl(["users", "add", "ann", "root"])
            let deadline = ContinuousClock.now + .seconds(30)
            while added.exitCode != 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .seconds(1))
                added = try await cluster.tctl(["users", "add", "ann", "root"])
            }
            #expect(added.exitCode == 0, "\(added)\n\(cluster.log.suffix(3000))")
            let users = try await cluster.tctl(["get", "users"])
            #expect(users.stdout.contains("name: ann") && users.stdout.contains("name: joe"), "\(users)")
            // A certificate issued now is learned by the node through its watch of the store.
            var after = try await ssh("ann")
            let sshDeadline = ContinuousClock.now + .seconds(30)
            while after.stdout != "ran-as-ann\n", ContinuousClock.now < sshDeadline {
                try await Task.sleep(for: .seconds(1))
                after = try await ssh("ann")
            }
            #expect(after.exitCode == 0 && after.stdout == "ran-as-ann\n", "\(after)\n\(cluster.log.suffix(3000))")
            let ready = try await HACluster.eventually(within: .seconds(30)) { try await cluster.diag("readyz").status == 200 }
            #expect(ready, "\(cluster.log.suffix(2000))")
        }
    }
}
