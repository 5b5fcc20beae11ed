import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 18's faults with several auth servers on one PostgreSQL store: two auth servers writing the
/// same role at once (one wins by revision, the other is told of the conflict), and one auth server
/// killed (-9) while `tsh ssh` sessions run and users log in.
@Suite(
    "faults of an HA cluster", .serialized, .timeLimit(.minutes(6)),
    .enabled(if: DatabaseServers.postgresAvailable, "PostgreSQL 15 is not installed"))
struct HAFaultTests {
    static let editor = """
        #!/bin/sh
        # Marks that tctl read the role (and its revision), waits for the test's go, then edits.
        touch "$READY"
        i=0
        while [ ! -e "$GO" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
        sed -i "s/olduser/$NEWLOGIN/" "$1"

        """

    @Test("two auth servers writing the same role at once: one wins, the other gets a conflict")
    func concurrentRoleWrites() async throws {
        try await PostgresBackendServer.with { server in
            let database = try await server.createDatabase()
            let storage = """
                  storage:
                    type: postgresql
                    conn_string: "\(server.connString(database: database))"
                """
            try await withCluster(try ClusterFixture(clusterName: "harole.example", teleportSection: storage)) { first in
                try await withCluster(try ClusterFixture(clusterName: "harole.example", teleportSection: storage)) { second in
                    async let firstStarted: Void = first.start(["--roles=auth"])
                    async let secondStarted: Void = second.start(["--roles=auth"])
                    _ = try await (firstStarted, secondStarted)
                    try await roleWrites(first, second)
                }
            }
        }
    }

    func roleWrites(_ first: ClusterFixture, _ second: ClusterFixture) async throws {
        let tests = ResourceCommandTests()
        // `tctl create` (without -f) of one new role on both auth servers at once, a few times:
        // exactly one creates it, the other is told it exists.
        for round in 0..<3 {
            let role = ResourceCommandTests.devRole.replacingOccurrences(of: "name: dev", with: "name: race\(round)")
            let fileA = try tests.write(role, "race\(round)-a.yaml", in: first)
            let fileB = try tests.write(role, "race\(round)-b.yaml", in: second)
            async let a = first.tctl(["create", fileA])
            async let b = second.tctl(["create", fileB])
            let results = try await [a, b]
            let won = results.filter { $0.exitCode == 0 }
            let lost = results.filter { $0.exitCode != 0 }
            #expect(won.count == 1 && lost.count == 1, "round \(round): \(results)")
            #expect(lost.allSatisfy { ($0.stdout + $0.stderr).contains("already exists") }, "round \(round): \(lost)")
        }

        // Two files of three roles sharing one, `tctl create`d on both auth servers at once: one
        // file is written whole, nothing of the other (the backend's conditional batch; before,
        // both passed the existence check and the second overwrote the shared role).
        for round in 0..<3 {
            func roles(_ names: [String]) -> String {
                names.map { ResourceCommandTests.devRole.replacingOccurrences(of: "name: dev", with: "name: \($0)") }.joined(separator: "\n---\n")
            }
            let left = ["left\(round)a", "left\(round)b", "shared\(round)"]
            let right = ["shared\(round)", "right\(round)a", "right\(round)b"]
            let fileA = try tests.write(roles(left), "batch\(round)-a.yaml", in: first)
            let fileB = try tests.write(roles(right), "batch\(round)-b.yaml", in: second)
            async let a = first.tctl(["create", fileA])
            async let b = second.tctl(["create", fileB])
            let results = try await [a, b]
            #expect(results.filter { $0.exitCode == 0 }.count == 1, "round \(round): \(results)")
            guard let lost = results.first(where: { $0.exitCode != 0 }) else { continue }
            #expect(lost.stderr.contains("role \"shared\(round)\"") && lost.stderr.contains("nothing was written"), "round \(round): \(lost)")
            #expect(lost.stderr.split(separator: "\n").count == 1, "round \(round): \(lost)")
            let names = try await first.tctl(["get", "roles", "--format", "json"]).stdout
            let loser = results[0].exitCode == 0 ? right : left
            let winner = results[0].exitCode == 0 ? left : right
            for name in winner { #expect(names.contains("\"\(name)\""), "round \(round): \(name) missing") }
            for name in loser where !name.hasPrefix("shared") { #expect(!names.contains("\"\(name)\""), "round \(round): \(name) was written") }
        }

        // `tctl edit` of the same role through each auth server: both read revision R, then both
        // save with a compare-and-swap on R. One is saved, the other refused; the role is the winner's.
        #expect(try await first.tctl(["create", try tests.write(ResourceCommandTests.devRole, "dev.yaml", in: first)]).exitCode == 0)
        let work = try TestSupport.makeTemporaryDirectory(prefix: "ha-edit")
        defer { try? FileManager.default.removeItem(at: work) }
        let editorPath = work.appendingPathComponent("editor.sh").path
        try TestSupport.write(Self.editor, to: URL(fileURLWithPath: editorPath))
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: editorPath)
        let go = work.appendingPathComponent("go").path
        let tctl = try ClusterFixture.binary("tctl")
        func edit(_ auth: ClusterFixture, _ name: String) async throws -> CommandResult {
            try await TestSupport.run(
                tctl, ["-c", auth.configURL.path, "edit", "role/dev"],
                environment: [
                    "EDITOR": editorPath, "READY": work.appendingPathComponent("ready-\(name)").path, "GO": go, "NEWLOGIN": "login\(name)",
                    "TMPDIR": work.path,
                ], timeout: .seconds(90))
        }
        async let editA = edit(first, "a")
        async let editB = edit(second, "b")
        let bothRead = try await HACluster.eventually(within: .seconds(60)) {
            ["a", "b"].allSatisfy { FileManager.default.fileExists(atPath: work.appendingPathComponent("ready-\($0)").path) }
        }
        try TestSupport.write("", to: URL(fileURLWithPath: go))
        let edits = try await [editA, editB]
        try #require(bothRead, "\(edits)")
        let saved = edits.enumerated().filter { $0.element.exitCode == 0 }
        let refused = edits.filter { $0.exitCode != 0 }
        #expect(saved.count == 1 && refused.count == 1, "\(edits)")
        #expect(saved.allSatisfy { $0.element.stdout.contains("role \"dev\" has been updated") }, "\(edits)")
        #expect(
            refused.allSatisfy { ($0.stdout + $0.stderr).contains("was changed on the server while it was being edited") }, "\(refused)")
        if let winner = saved.first?.offset {
            let stored = try await second.tctl(["get", "role/dev"]).stdout
            #expect(stored.contains(winner == 0 ? "logina" : "loginb") && !stored.contains(winner == 0 ? "loginb" : "logina"), "\(stored)")
        }
    }

    @Test(
        "an auth server killed (-9) while tsh ssh sessions run and users log in: sessions go on, logins succeed against the other",
        .enabled(if: SSHDFixture.available, "needs root and openssh-client"),
        .enabled(if: HACluster.haproxyInstalled, "needs haproxy (scripts/install-test-deps.sh)"))
    func killedAuthServer() async throws {
        try await PostgresBackendServer.with { server in
            let database = try await server.createDatabase()
            let audit = try await server.createDatabase()
            let cluster = try HACluster(clusterName: "hakill.example", proxies: 1, directNodes: 1, tunnelNodes: 1) { sessions in
                """
                  storage:
                    type: postgresql
                    conn_string: "\(server.connString(database: database))"
                    audit_events_uri: ["\(server.connString(database: audit))"]
                    audit_sessions_uri: "\(sessions)"
                """
            }
            try await HACluster.with(cluster) { cluster in
                try await killOne(cluster)
            }
        }
    }

    func killOne(_ cluster: HACluster) async throws {
        let balancer = "127.0.0.1:\(cluster.lbPort)"
        // Two users: each can log in at once after the kill (a TOTP code is good once).
        var users: [(tsh: TSHRunner, codes: TSHCodes)] = []
        defer { for user in users { user.tsh.cleanUp() } }
        for name in ["joe", "ann"] {
            let link = try await SignupHelper.addUser(cluster.auths[0], name: name, logins: "\(name),root")
            let enrolled = try await SignupHelper.enrol(WebDriver(cluster: cluster.proxies[0]), link, password: TSHLoginTests.password)
            users.append((try TSHRunner(), TSHCodes(secret: enrolled.secret, usedAt: enrolled.time)))
        }
        let joe = users[0].tsh
        let first = try await TSHLoginTests.login(
            joe, ["--proxy=\(balancer)", "--user=joe", "--insecure"], password: TSHLoginTests.password, code: try await users[0].codes.next())
        try #require(first.status == 0, "\(first.transcript)")

        // An interactive session on each node (one direct, one tunnelled).
        var terminals: [TSHTerminal] = []
        for name in cluster.nodeNames {
            let terminal = try joe.terminal(["ssh", "-t", "root@\(name)"])
            try await terminal.expect("# ")
            terminal.sendLine("echo before-$((40+2))")
            try await terminal.expect("before-42")
            terminals.append(terminal)
        }

        // kill -9 the first auth server (the one every host joined through).
        let pid = try #require(cluster.auths[0].pid)
        kill(pid, SIGKILL)
        let killedAt = ContinuousClock.now
        await cluster.auths[0].stop()

        // A login right away succeeds against the other auth server, on its first attempt.
        let ann = try await TSHLoginTests.login(
            users[1].tsh, ["--proxy=\(balancer)", "--user=ann", "--insecure"], user: "ann", password: TSHLoginTests.password,
            code: try await users[1].codes.next())
        let loginTook = ContinuousClock.now - killedAt
        #expect(ann.status == 0, "\(ann.transcript)")
        print("HA: a tsh login finished \(loginTook) after kill -9 of an auth server")
        #expect(loginTook < .seconds(30), "the first login after the kill took \(loginTook)")
        let annRan = try await users[1].tsh.run(["ssh", "root@\(cluster.nodeNames[0])", "echo ann-ran"], timeout: .seconds(40))
        #expect(annRan.exitCode == 0 && annRan.stdout == "ann-ran\n", "\(annRan)")

        // The sessions go on and end cleanly.
        for terminal in terminals {
            terminal.sendLine("echo after-$((50+8)); exit")
            try await terminal.expect("after-58")
            #expect(try await terminal.wait() == 0, "\(terminal.transcript)")
        }
        // New sessions to each node, and the proxy stays healthy for the balancer.
        for name in cluster.nodeNames {
            let ran = try await joe.run(["ssh", "root@\(name)", "echo again-on-\(name)"], timeout: .seconds(40))
            #expect(ran.exitCode == 0 && ran.stdout == "again-on-\(name)\n", "\(name): \(ran)")
        }
        let view = try await cluster.balancerView()
        #expect(view.values.allSatisfy { $0.status == "UP" }, "\(view)")

        // Both recordings reach the surviving auth server (nothing lost) and play back.
        var played: [String] = []
        let uploaded = try await HACluster.eventually(within: .seconds(90)) {
            let listed = try await joe.run(["recordings", "ls", "--format=json"])
            let list = (try? ResourceCodec.jsonDecoder().decode([[String: JSONValue]].self, from: Data(listed.stdout.utf8))) ?? []
            let sids = list.compactMap { entry -> String? in
                if case .string(let sid)? = entry["sid"] { return sid }
                return nil
            }
            guard sids.count >= terminals.count else { return false }
            played = []
            for sid in sids { played.append(try await joe.run(["play", "--format=text", sid]).stdout) }
            return true
        }
        let recordings = try await joe.run(["recordings", "ls"])
        #expect(uploaded, "recordings: \(recordings)")
        #expect(played.filter { $0.contains("before-42") && $0.contains("after-58") }.count == terminals.count, "\(played)")
    }
}
