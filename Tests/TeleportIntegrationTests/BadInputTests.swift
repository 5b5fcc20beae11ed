import Foundation
import TeleportTestSupport
import Testing

/// Each bad input gets one clear line naming the cause, a non-zero exit, and leaves nothing half-written.
@Suite("bad input", .serialized)
struct BadInputTests {
    /// Runs `teleport start` to completion (it must fail fast) and returns its result.
    func startFailing(_ cluster: ClusterFixture, _ arguments: [String] = []) async throws -> CommandResult {
        try await TestSupport.run(
            try ClusterFixture.binary("teleport"), ["start", "-c", cluster.configURL.path] + arguments, timeout: .seconds(30))
    }

    func errorLine(_ result: CommandResult) -> String {
        result.stderr.split(separator: "\n").last { $0.hasPrefix("ERROR: ") }.map(String.init) ?? ""
    }

    @Test("malformed YAML, an unknown key, a wrong type and a bad address are refused at start")
    func badConfigs() async throws {
        let cases: [(yaml: String, expected: [String])] = [
            ("teleport:\n  data_dir: [unclosed\n", ["not valid YAML"]),
            ("teleport:\n  data_dirr: /tmp/x\n", ["teleport.data_dirr", "unknown key"]),
            ("auth_service:\n  enabled: maybe\n", ["auth_service.enabled", "expected yes or no", "\"maybe\""]),
            ("auth_service:\n  listen_addr: \"127.0.0.1:99999\"\n", ["auth_service.listen_addr", "expected an address"]),
            ("ssh_service:\n  labels: [a, b]\n", ["ssh_service.labels", "expected a mapping"]),
        ]
        for (yaml, expected) in cases {
            let directory = try TestSupport.makeTemporaryDirectory(prefix: "badconfig")
            defer { try? FileManager.default.removeItem(at: directory) }
            let config = directory.appendingPathComponent("teleport.yaml")
            try TestSupport.write(yaml, to: config)
            let result = try await TestSupport.run(
                try ClusterFixture.binary("teleport"), ["start", "-c", config.path, "--data-dir", directory.appendingPathComponent("data").path],
                timeout: .seconds(30))
            #expect(result.exitCode != 0, "\(yaml)")
            let line = errorLine(result)
            #expect(line.contains(config.path), "\(result)")
            for fragment in expected { #expect(line.contains(fragment), "\(fragment) missing in: \(line)") }
            #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("data").path), "nothing is written on a bad config")
        }
    }

    @Test("a data_dir that is a file, and one that cannot be created")
    func badDataDirs() async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "baddata")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("plainfile")
        try TestSupport.write("x", to: file)
        let teleport = try ClusterFixture.binary("teleport")
        let isFile = try await TestSupport.run(teleport, ["start", "--data-dir", file.path, "--roles", "auth"])
        #expect(isFile.exitCode != 0)
        #expect(errorLine(isFile).contains("is a file, not a directory"), "\(isFile)")
        let impossible = try await TestSupport.run(teleport, ["start", "--data-dir", "/proc/teleport-cannot-exist", "--roles", "auth"])
        #expect(impossible.exitCode != 0)
        #expect(errorLine(impossible).contains("cannot create data_dir /proc/teleport-cannot-exist"), "\(impossible)")
    }

    @Test("a port already in use, and a second daemon on the same data_dir")
    func conflicts() async throws {
        try await withCluster(try ClusterFixture()) { cluster in
            try await cluster.start()
            let second = try await startFailing(cluster)
            #expect(second.exitCode != 0)
            #expect(errorLine(second).contains("another teleport process is already running with data_dir"), "\(second)")

            let other = try ClusterFixture()
            defer { try? FileManager.default.removeItem(at: other.directory) }
            var text = try String(contentsOf: other.configURL, encoding: .utf8)
            text = text.replacingOccurrences(of: "127.0.0.1:\(other.authPort)", with: "127.0.0.1:\(cluster.authPort)")
            try TestSupport.write(text, to: other.configURL)
            let busy = try await startFailing(other)
            #expect(busy.exitCode != 0)
            #expect(errorLine(busy).contains("cannot listen on 127.0.0.1:\(cluster.authPort): address already in use"), "\(busy)")
            await cluster.stop()
        }
    }

    @Test("a corrupted state database is reported with its path")
    func corruptedDatabase() async throws {
        try await withCluster(try ClusterFixture()) { cluster in
            try await cluster.start()
            #expect(await cluster.stop())
            let database = cluster.dataDir.appendingPathComponent("backend/sqlite.db")
            for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database.path + suffix) }
            try Data(repeating: 0x5A, count: 8192).write(to: database)
            let result = try await startFailing(cluster)
            #expect(result.exitCode != 0)
            #expect(errorLine(result).contains(database.path), "\(result)")
        }
    }

    @Test("tctl create refuses invalid YAML, unknown kinds and fields, and applies nothing of a bad file")
    func badResources() async throws {
        try await withCluster(try ClusterFixture()) { cluster in
            try await cluster.start()
            let cases: [(String, String)] = [
                ("kind: user\nmetadata: {name: a\n", "not valid YAML"),
                ("kind: spaceship\nmetadata: {name: a}\n", "unknown resource kind \"spaceship\""),
                ("kind: user\nmetadata: {name: a}\nspec: {roles: [x], traits: {}, colour: red}\n", "unknown field \"spec.colour\""),
                ("kind: user\nmetadata: {name: a}\nspec: {roles: x, traits: {}}\n", "spec.roles: expected a list"),
                ("kind: user\nmetadata: {name: \"../etc\"}\nspec: {roles: [], traits: {}}\n", "may only hold letters"),
                (
                    "kind: user\nmetadata: {name: good}\nspec: {roles: [], traits: {}}\n---\nkind: user\nmetadata: {name: bad}\nspec: {roles: 1}\n",
                    "document 2"
                ),
            ]
            for (index, (yaml, expected)) in cases.enumerated() {
                let file = cluster.directory.appendingPathComponent("bad\(index).yaml")
                try TestSupport.write(yaml, to: file)
                let result = try await cluster.tctl(["create", file.path])
                #expect(result.exitCode != 0, "\(yaml)")
                #expect(errorLine(result).contains(expected), "\(expected) missing: \(result)")
            }
            let users = try await cluster.tctl(["get", "users", "--format", "text"])
            #expect(!users.stdout.contains("good"), "a multi-document file with a bad document must apply nothing")
            let unknownGet = try await cluster.tctl(["get", "spaceships"])
            #expect(unknownGet.exitCode != 0)
            #expect(errorLine(unknownGet).contains("unknown resource kind"))
            await cluster.stop()
        }
    }

    @Test("tctl without the admin identity, or with the auth service down, says what to do")
    func tctlWithoutAccess() async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "noadmin")
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("teleport.yaml")
        try TestSupport.write("teleport:\n  data_dir: \(directory.path)/nothing\n", to: config)
        let tctl = try ClusterFixture.binary("tctl")
        let noIdentity = try await TestSupport.run(tctl, ["-c", config.path, "status"])
        #expect(noIdentity.exitCode != 0)
        #expect(errorLine(noIdentity).contains("no admin identity in \(directory.path)/nothing/keys"), "\(noIdentity)")

        try await withCluster(try ClusterFixture()) { cluster in
            try await cluster.start()
            #expect(await cluster.stop())
            let down = try await cluster.tctl(["status"])
            #expect(down.exitCode != 0)
            #expect(errorLine(down).contains("cannot reach the auth service at 127.0.0.1:\(cluster.authPort)"), "\(down)")
        }
    }
}
