import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// SSH activity becomes audit events: nodes and proxies send them to the auth service, which
/// writes the day's JSON file; `tctl events ls` reads them back by time and type.
@Suite("audit events of SSH activity", .serialized)
struct AuditEventsTests {
    /// The events `tctl events ls --format=json` prints.
    static func events(_ cluster: ClusterFixture, _ arguments: [String] = []) async throws -> [[String: JSONValue]] {
        let listed = try await cluster.tctl(["events", "ls", "--format=json"] + arguments)
        try #require(listed.exitCode == 0, "\(listed)")
        return try ResourceCodec.jsonDecoder().decode([[String: JSONValue]].self, from: Data(listed.stdout.utf8))
    }

    @Test("an interactive session, an exec, scp, sftp, a refused login and a port forward are in the log with the seed's fields")
    func sshActivity() async throws {
        try await SSHAccessTests.withSetup { setup in
            let cluster = setup.cluster
            // An interactive shell: a command, a resize, exit.
            let terminal = try TSHTerminal(
                try ClusterFixture.binary("tsh"),
                ["-i", setup.identity, "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure", "ssh", "-t", "root@db1"],
                environment: ProcessInfo.processInfo.environment.merging(["TERM": "xterm"]) { $1 })
            // (The expected text must not be the typed one: the terminal echoes typing at once.)
            terminal.sendLine("timeout 2 top; ls / >/dev/null; echo listed-$((40+2))")
            try await terminal.expect("listed-42")
            terminal.resize(rows: 40, columns: 120)
            try await Task.sleep(for: .milliseconds(300))
            terminal.sendLine("exit")
            #expect(try await terminal.wait() == 0)
            // An exec that fails, a copy each way.
            let exec = try await setup.tsh(["ssh", "root@db1", "echo audited; exit 3"])
            #expect(exec.exitCode == 3)
            let work = try TestSupport.makeTemporaryDirectory(prefix: "audit")
            defer { try? FileManager.default.removeItem(at: work) }
            try TestSupport.write("payload\n", to: work.appendingPathComponent("file.txt"))
            let tshProxy = "ProxyCommand=\(try ClusterFixture.binary("tsh")) -i \(setup.identity) --proxy=127.0.0.1:\(cluster.webPort) --insecure proxy ssh %r@%h:%p"
            let scp = try await TestSupport.run(
                "/usr/bin/scp",
                ["-O", "-F", setup.sshConfig, "-o", tshProxy, "-P", "\(setup.nodePort)", work.appendingPathComponent("file.txt").path, "root@db1:\(work.path)/copied.txt"])
            #expect(scp.exitCode == 0, "\(scp)")
            let sftp = try await setup.tsh(["scp", "root@db1:\(work.path)/copied.txt", work.appendingPathComponent("back.txt").path])
            #expect(sftp.exitCode == 0, "\(sftp)")
            // A refused login (a key no certificate certifies).
            let stranger = work.appendingPathComponent("stranger").path
            _ = try await TestSupport.run(TestSupport.sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-f", stranger])
            _ = try await TestSupport.run(
                TestSupport.ssh,
                ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
                 "-i", stranger, "-p", "\(setup.nodePort)", "root@127.0.0.1", "true"])

            // A port forward (stdio forwarding to the auth port, as -W does).
            _ = try await setup.ssh(["-p", "\(setup.nodePort)", "-W", "127.0.0.1:\(cluster.authPort)", "-l", "root", "127.0.0.1"])

            var events: [[String: JSONValue]] = []
            func has(_ predicate: ([String: JSONValue]) -> Bool) -> Bool { events.contains(where: predicate) }
            func text(_ event: [String: JSONValue], _ key: String) -> String? {
                if case .string(let value)? = event[key] { return value }
                return nil
            }
            for _ in 0..<100 {
                events = try await Self.events(cluster)
                if has({ text($0, "event") == "scp" }) && has({ text($0, "event") == "auth" && $0["success"] == .bool(false) })
                    && events.filter({ text($0, "event") == "session.end" }).count >= 4
                {
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            let starts = events.filter { text($0, "event") == "session.start" && $0["interactive"] == .bool(true) }
            let start = try #require(starts.first, "\(events)")
            #expect(text(start, "code") == "T2000I" && text(start, "user") == "joe" && text(start, "login") == "root")
            #expect(text(start, "namespace") == "default" && text(start, "size") != nil && text(start, "addr.local")?.hasSuffix(":\(setup.nodePort)") == true)
            #expect(text(start, "addr.remote")?.hasPrefix("127.0.0.1:") == true && (text(start, "uid")?.count ?? 0) == 36 && text(start, "time") != nil)
            let sid = try #require(text(start, "sid"))
            #expect(UUID(uuidString: sid) != nil)
            #expect(start["server_labels"] == .object(["env": .string("test"), "role": .string("db")]), "\(start)")
            let serverID = try #require(text(start, "server_id"))
            #expect(has { text($0, "event") == "resize" && text($0, "sid") == sid && text($0, "size") == "120:40" }, "\(events.filter { text($0, "event") == "resize" }) sid \(sid)")
            #expect(has { text($0, "event") == "session.end" && text($0, "sid") == sid && $0["participants"] == .array([.string("joe")]) })
            #expect(
                has { text($0, "event") == "exec" && text($0, "code") == "T3002E" && text($0, "command") == "echo audited; exit 3" && $0["exitCode"] == .int(3) },
                "\(events)")
            #expect(has { text($0, "event") == "scp" && text($0, "action") == "upload" && text($0, "path") == "\(work.path)/copied.txt" }, "\(events)")
            #expect(has { text($0, "event") == "sftp" && text($0, "user") == "joe" }, "\(events)")
            #expect(
                has { text($0, "event") == "auth" && text($0, "code") == "T3007W" && $0["success"] == .bool(false) && (text($0, "error") ?? "").contains("not certified") },
                "\(events)")
            #expect(has { text($0, "event") == "auth" && $0["success"] == .bool(true) && text($0, "user") == "joe" })
            #expect(has { text($0, "event") == "port" && text($0, "code") == "T3003I" && text($0, "addr") == "127.0.0.1:\(cluster.authPort)" }, "\(events)")
            // Every node event names the node that sent it.
            #expect(events.filter { text($0, "event") == "session.start" }.allSatisfy { text($0, "server_id") == serverID || text($0, "server_hostname") == "testnode" })

            // Filters by type; the text table.
            let onlyExec = try await Self.events(cluster, ["--type=exec"])
            #expect(!onlyExec.isEmpty && onlyExec.allSatisfy { text($0, "event") == "exec" })
            let table = try await cluster.tctl(["events", "ls", "--type=session.start,exec"])
            #expect(table.stdout.contains("session.start") && table.stdout.contains("T3002E") && table.stdout.contains("joe"), "\(table)")
            let future = try await Self.events(cluster, ["--from=2h", "--to=1h"])
            #expect(future.isEmpty, "nothing two hours ago: \(future.count)")
            let bad = try await cluster.tctl(["events", "ls", "--from=yesterday-ish"])
            #expect(bad.exitCode != 0 && bad.stderr.contains("is not a time"), "\(bad)")

            // The day's file holds the same lines.
            let logDir = cluster.dataDir.appendingPathComponent("log")
            let day = try FileManager.default.contentsOfDirectory(atPath: logDir.path).filter { $0.hasSuffix(".log") }.sorted().last ?? ""
            let file = try TestSupport.read(logDir.appendingPathComponent(day))
            #expect(file.contains("\"sid\":\"\(sid)\""), "day file \(day)")
        }
    }

    @Test("tctl audit verify: OK on an untouched log; an edited line, a removed line and a truncated file are reported")
    func verifyChain() async throws {
        try await withCluster(try ClusterFixture(clusterName: "chain.example")) { cluster in
            try await cluster.start()
            for name in ["alice", "bob", "carol"] {
                #expect(try await cluster.tctl(["users", "add", name, "root"]).exitCode == 0)
            }
            let good = try await cluster.tctl(["audit", "verify"])
            #expect(good.exitCode == 0 && good.stdout.hasPrefix("OK: ") && good.stdout.contains("1 signed checkpoints"), "\(good)")

            let logDir = cluster.dataDir.appendingPathComponent("log")
            let day = try #require(try FileManager.default.contentsOfDirectory(atPath: logDir.path).filter { $0.hasSuffix(".log") }.sorted().last)
            let path = logDir.appendingPathComponent(day).path
            let original = try String(contentsOfFile: path, encoding: .utf8)
            var lines = original.split(separator: "\n").map(String.init)
            let target = try #require(lines.firstIndex { $0.contains("\"bob\"") })
            // Rewritten in place (the daemon keeps its descriptor), as an intruder with an editor would.
            func put(_ text: String) throws {
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
                try handle.truncate(atOffset: 0)
                try handle.write(contentsOf: Data(text.utf8))
                try handle.close()
            }

            lines[target] = lines[target].replacingOccurrences(of: "\"bob\"", with: "\"eve\"")
            try put(lines.joined(separator: "\n") + "\n")
            let edited = try await cluster.tctl(["audit", "verify"])
            #expect(edited.exitCode == 1 && edited.stdout.contains("FAILED: \(day) line \(target + 1) was edited"), "\(edited)")

            lines = original.split(separator: "\n").map(String.init)
            lines.remove(at: target)
            try put(lines.joined(separator: "\n") + "\n")
            let removed = try await cluster.tctl(["audit", "verify"])
            #expect(removed.exitCode == 1 && removed.stdout.contains("an event before it was removed"), "\(removed)")

            lines = original.split(separator: "\n").map(String.init)
            lines.removeLast()
            try put(lines.joined(separator: "\n") + "\n")
            let truncated = try await cluster.tctl(["audit", "verify"])
            #expect(truncated.exitCode == 1 && truncated.stdout.contains("is truncated"), "\(truncated)")

            try put(original)
            let restored = try await cluster.tctl(["audit", "verify"])
            #expect(restored.exitCode == 0, "\(restored)")
            await cluster.stop()
        }
    }
}
