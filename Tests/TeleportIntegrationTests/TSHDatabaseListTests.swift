import Foundation
import TeleportTestSupport
import Testing

/// `tsh db ls` through the proxy: two users whose roles' `db_labels` differ see different lists;
/// a label filter and `--format json` work; a bad format is refused in one line.
@Suite("tsh db ls", .serialized)
struct TSHDatabaseListTests {
    static let resources = """
        kind: role
        version: v5
        metadata:
          name: dev-db
        spec:
          allow:
            db_labels:
              env: dev
            db_users: ['{{internal.db_users}}']
        ---
        kind: role
        version: v5
        metadata:
          name: all-db
        spec:
          allow:
            db_labels:
              '*': '*'
            db_users: [alice]
            db_names: ['*']
        ---
        kind: db_server
        version: v3
        metadata:
          name: sales
          labels:
            env: dev
        spec:
          protocol: postgres
          uri: localhost:5432
          description: Sales (PostgreSQL)
          host_id: 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
          hostname: dbhost
        ---
        kind: db_server
        version: v3
        metadata:
          name: billing
          labels:
            env: prod
        spec:
          protocol: mysql
          uri: localhost:3306
          description: Billing (MariaDB)
          host_id: 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
          hostname: dbhost

        """

    @Test(.timeLimit(.minutes(3)))
    func usersSeeTheDatabasesTheirRolesAllow() async throws {
        try await withCluster(try ClusterFixture(clusterName: "dbls.example")) { cluster in
            try await cluster.start()
            let file = cluster.directory.appendingPathComponent("dbs.yaml")
            try TestSupport.write(Self.resources, to: file)
            let created = try await cluster.tctl(["create", file.path])
            try #require(created.exitCode == 0, "\(created)")
            #expect(try await cluster.tctl(["users", "add", "dev", "dev", "--roles=dev-db"]).exitCode == 0)
            #expect(try await cluster.tctl(["users", "add", "ops", "ops", "--roles=all-db"]).exitCode == 0)
            #expect(try await cluster.tctl(["users", "add", "joe", "joe", "--roles=access"]).exitCode == 0)
            let tsh = try ClusterFixture.binary("tsh")
            func run(_ user: String, _ arguments: [String]) async throws -> CommandResult {
                let identity = cluster.directory.appendingPathComponent("\(user).id").path
                if !FileManager.default.fileExists(atPath: identity) {
                    let signed = try await cluster.tctl(["auth", "sign", "--user=\(user)", "--out=\(identity)"])
                    try #require(signed.exitCode == 0, "\(signed)")
                }
                return try await TestSupport.run(tsh, ["-i", identity, "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure"] + arguments)
            }
            let dev = try await run("dev", ["db", "ls"])
            #expect(dev.exitCode == 0, "\(dev)")
            let devLines = dev.stdout.split(separator: "\n")
            #expect(devLines.first?.hasPrefix("Name") == true && devLines.first?.contains("Protocol") == true, "\(dev.stdout)")
            #expect(dev.stdout.contains("sales") && dev.stdout.contains("Sales (PostgreSQL)") && dev.stdout.contains("env=dev"), "\(dev.stdout)")
            #expect(!dev.stdout.contains("billing"), "\(dev.stdout)")

            let ops = try await run("ops", ["db", "ls"])
            #expect(ops.stdout.contains("sales") && ops.stdout.contains("billing") && ops.stdout.contains("mysql"), "\(ops.stdout)")
            let filtered = try await run("ops", ["db", "ls", "env=prod"])
            #expect(filtered.stdout.contains("billing") && !filtered.stdout.contains("sales"), "\(filtered.stdout)")
            let json = try await run("ops", ["db", "ls", "--format", "json"])
            let decoded = try #require(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]], "\(json)")
            #expect(decoded.compactMap { ($0["metadata"] as? [String: Any])?["name"] as? String } == ["billing", "sales"])

            // A role with no db_labels grants no databases.
            let joe = try await run("joe", ["db", "ls", "--format", "json"])
            #expect(joe.exitCode == 0, "\(joe)")
            #expect(try #require(JSONSerialization.jsonObject(with: Data(joe.stdout.utf8)) as? [Any]).isEmpty)

            let bad = try await run("ops", ["db", "ls", "--format", "xml"])
            #expect(bad.exitCode != 0 && bad.stderr.contains("--format=xml is not known"), "\(bad)")
        }
    }
}
