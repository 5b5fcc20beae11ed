import Foundation
import Testing
import TeleportTestSupport

/// `teleport db start` joins a cluster with a db token and registers its database from flags alone.
@Suite("teleport db start")
struct DatabaseStartCommandTests {
    @Test(.timeLimit(.minutes(3)))
    func flagsRegisterTheDatabase() async throws {
        let token = "db-start-token-7f3a9c"
        let cluster = try ClusterFixture(clusterName: "dbstart.example", authSection: "  tokens: [\"db:\(token)\"]")
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            let directory = try TestSupport.makeTemporaryDirectory(prefix: "dbstart")
            defer { try? FileManager.default.removeItem(at: directory) }
            // The service's listener is ours (a departure: the proxy dials it), so a config file sets it.
            let port = try TestSupport.freeLoopbackPort()
            let file = directory.appendingPathComponent("teleport.yaml")
            try TestSupport.write("db_service:\n  listen_addr: 127.0.0.1:\(port)\n", to: file)
            let pid = try TestSupport.spawnDaemon(
                try ClusterFixture.binary("teleport"),
                [
                    "db", "start", "-c", file.path, "--token=\(token)", "--auth-server=127.0.0.1:\(cluster.authPort)",
                    "--data-dir=\(directory.appendingPathComponent("data").path)", "--nodename=flagsdb", "--name=flagsdb",
                    "--protocol=postgres", "--uri=localhost:5999", "--labels=env=flags", "--description=From flags",
                ],
                logPath: directory.appendingPathComponent("teleport.log").path)
            var record = try await cluster.tctl(["get", "db_server/flagsdb", "--format=json"])
            for _ in 0..<60 where record.exitCode != 0 {
                try await Task.sleep(for: .milliseconds(250))
                record = try await cluster.tctl(["get", "db_server/flagsdb", "--format=json"])
            }
            await TestSupport.stopDaemon(pid)
            let log = (try? TestSupport.read(directory.appendingPathComponent("teleport.log"))) ?? ""
            #expect(record.exitCode == 0, "\(record)\n\(log)")
            for field in ["\"env\" : \"flags\"", "\"uri\" : \"localhost:5999\"", "\"description\" : \"From flags\"", "\"addr\" : \"127.0.0.1:\(port)\""] {
                #expect(record.stdout.contains(field), "\(field) in \(record.stdout)")
            }

            // A bad flag is one line and a non-zero exit, before anything starts.
            let bad = try await TestSupport.run(
                try ClusterFixture.binary("teleport"), ["db", "start", "--name=x", "--protocol=oracle", "--uri=localhost:1"])
            #expect(bad.exitCode != 0 && bad.stderr.contains("--protocol: \"oracle\""), "\(bad)")
        }
    }
}
