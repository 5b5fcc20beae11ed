import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Session recording: the node records an interactive session, uploads it when it ends (or, after a
/// crash, when it starts again), and `tsh play` replays exactly the bytes the user saw.
@Suite("session recording and tsh play", .serialized)
struct RecordingTests {
    static func tshArguments(_ setup: SSHAccessTests.Setup, identity: String? = nil) throws -> [String] {
        ["-i", identity ?? setup.identity, "--proxy=127.0.0.1:\(setup.cluster.webPort)", "--insecure"]
    }

    /// Waits until `tsh recordings ls --format=json` lists `sid` (the upload is asynchronous).
    static func waitForRecording(_ setup: SSHAccessTests.Setup, _ sid: String? = nil, identity: String? = nil) async throws -> [[String: JSONValue]] {
        var list: [[String: JSONValue]] = []
        for _ in 0..<150 {
            let listed = try await TestSupport.run(
                try ClusterFixture.binary("tsh"), try tshArguments(setup, identity: identity) + ["recordings", "ls", "--format=json"])
            list = (try? ResourceCodec.jsonDecoder().decode([[String: JSONValue]].self, from: Data(listed.stdout.utf8))) ?? []
            if list.contains(where: { sid == nil || $0["sid"] == .string(sid!) }) && !list.isEmpty { return list }
            try await Task.sleep(for: .milliseconds(200))
        }
        return list
    }

    @Test("a session is recorded and uploaded; tsh play shows the same bytes with the timing; others may not read it", .timeLimit(.minutes(5)))
    func recordAndPlay() async throws {
        try await SSHAccessTests.withSetup { setup in
            let cluster = setup.cluster
            let tsh = try ClusterFixture.binary("tsh")
            let session = try TSHTerminal(
                tsh, try Self.tshArguments(setup) + ["ssh", "-t", "root@db1"],
                environment: ProcessInfo.processInfo.environment.merging(["TERM": "xterm"]) { $1 })
            // Type only once the remote prompt is there: the terminal is raw then, so everything on
            // the screen came from the node.
            try await session.expect("# ")
            session.sendLine("echo first-$((20+1)); sleep 1.5; printf 'tab\\there\\n'")
            try await session.expect("tab\there")
            session.resize(rows: 30, columns: 100)
            try await Task.sleep(for: .milliseconds(300))
            session.sendLine("exit")
            #expect(try await session.wait() == 0)
            let seen = session.transcript

            let list = try await Self.waitForRecording(setup)
            let entry = try #require(list.first, "no recording listed")
            guard case .string(let sid)? = entry["sid"] else { throw TestSupportError("no sid in \(entry)") }
            #expect(entry["user"] == .string("joe") && entry["login"] == .string("root") && entry["server_hostname"] == .string("db1"))
            #expect(entry["complete"] == .bool(true))
            if case .int(let ms)? = entry["duration_ms"] { #expect(ms >= 1500, "\(entry)") }

            // The replay, on a terminal, byte for byte, taking the session's time.
            let started = ContinuousClock.now
            let player = try TSHTerminal(tsh, try Self.tshArguments(setup) + ["play", sid], environment: ProcessInfo.processInfo.environment)
            #expect(try await player.wait() == 0)
            let took = ContinuousClock.now - started
            #expect(player.transcript == seen, "replayed:\n\(player.transcript.debugDescription)\nseen:\n\(seen.debugDescription)")
            #expect(took >= .milliseconds(1400), "replayed in \(took)")
            let fast = try await TestSupport.run(tsh, try Self.tshArguments(setup) + ["play", "--format=text", sid])
            #expect(fast.stdout.contains("first-21") && fast.stdout.contains("tab\there"), "\(fast)")
            #expect(!fast.stdout.contains("\u{1B}") && !fast.stdout.contains("\r"), "raw control sequences in: \(fast.stdout.debugDescription)")
            let ranged = try await TestSupport.run(tsh, try Self.tshArguments(setup) + ["recordings", "ls", "--from=1h"])
            #expect(ranged.stdout.contains(sid), "\(ranged)")
            let older = try await TestSupport.run(tsh, try Self.tshArguments(setup) + ["recordings", "ls", "--to=2h"])
            #expect(!older.stdout.contains(sid), "\(older)")
            let frames = try await TestSupport.run(tsh, try Self.tshArguments(setup) + ["play", "--format=json", sid])
            #expect(frames.stdout.contains("\"resize\":\"100:30\""), "\(frames.stdout.prefix(400))")

            // Stored compressed under data_dir/log/sessions/default; zcat shows the raw stream.
            let stored = cluster.dataDir.appendingPathComponent("log/sessions/default")
            let files = try FileManager.default.contentsOfDirectory(atPath: stored.path).sorted()
            #expect(files.contains("\(sid).chunks.gz") && files.contains("\(sid).events.gz"), "\(files)")
            let raw = try await TestSupport.run("/bin/sh", ["-c", "zcat \(stored.path)/\(sid).chunks.gz"])
            #expect(raw.stdout.contains("first-21"), "\(raw)")

            // Another user (not a participant, no auditor role) may not read it; both are audited.
            #expect(try await cluster.tctl(["users", "add", "bob", "bob"]).exitCode == 0)
            let bob = cluster.directory.appendingPathComponent("bob.id").path
            #expect(try await cluster.tctl(["auth", "sign", "--user=bob", "--out=\(bob)"]).exitCode == 0)
            let denied = try await TestSupport.run(tsh, try Self.tshArguments(setup, identity: bob) + ["play", "--format=text", sid])
            #expect(denied.exitCode != 0 && denied.stderr.contains("may not read the recording"), "\(denied)")
            #expect(!denied.stdout.contains("first-21"))
            let bobs = try await TestSupport.run(tsh, try Self.tshArguments(setup, identity: bob) + ["recordings", "ls", "--format=json"])
            #expect(bobs.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "\(bobs)")
            let events = try await AuditEventsTests.events(cluster, ["--type=session.upload,session.recording.access"])
            #expect(events.contains { $0["event"] == .string("session.upload") && $0["sid"] == .string(sid) })
            #expect(events.contains { $0["code"] == .string("T2012I") && $0["user"] == .string("joe") })
            #expect(events.contains { $0["code"] == .string("T2012W") && $0["user"] == .string("bob") })

            // Session ids are checked before any use.
            for bad in ["../../etc/passwd", "6F1C5F8E-7D0A-4C3B-9E11-000000000001", "{6f1c5f8e-7d0a-4c3b-9e11-000000000001}"] {
                let refused = try await TestSupport.run(tsh, try Self.tshArguments(setup) + ["play", bad])
                #expect(refused.exitCode != 0 && refused.stderr.contains("is not a session id"), "\(bad): \(refused)")
            }
            let encoded = try await TestSupport.run(
                "/usr/bin/curl", ["-sk", "https://127.0.0.1:\(cluster.webPort)/webapi/sessions/..%2F..%2Fetc%2Fpasswd/recording"])
            #expect(!encoded.stdout.contains("root:"), "\(encoded)")
        }
    }

    @Test("a node killed mid-session uploads the partial recording when it starts again", .timeLimit(.minutes(5)))
    func partialAfterCrash() async throws {
        try await SSHAccessTests.withSetup { setup in
            let tsh = try ClusterFixture.binary("tsh")
            let session = try TSHTerminal(
                tsh, try Self.tshArguments(setup) + ["ssh", "-t", "root@db1"],
                environment: ProcessInfo.processInfo.environment.merging(["TERM": "xterm"]) { $1 })
            try await session.expect("# ")
            session.sendLine("echo before-crash-$((1+1)); sleep 60")
            try await session.expect("before-crash-2")
            try await Task.sleep(for: .milliseconds(300))
            // SIGKILL: no chance to finish or upload anything.
            kill(setup.nodePID, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(setup.nodePID, &status, 0)
            // The user's tsh notices at once that the node is gone.
            #expect(try await session.wait(timeout: .seconds(30)) == 255)
            let pending = ((try? FileManager.default.contentsOfDirectory(
                atPath: setup.nodeDir.appendingPathComponent("data/log/upload/sessions/default").path)) ?? [])
            #expect(pending.contains { $0.hasSuffix(".recording") }, "the recording is on the node's disk: \(pending)")

            let restarted = try TestSupport.spawnDaemon(
                try ClusterFixture.binary("teleport"), ["start", "-c", setup.nodeDir.appendingPathComponent("teleport.yaml").path],
                logPath: setup.nodeDir.appendingPathComponent("node-restarted.log").path)
            defer { Task { await TestSupport.stopDaemon(restarted) } }
            let list = try await Self.waitForRecording(setup)
            let entry = try #require(list.first, "the partial recording was not uploaded")
            #expect(entry["complete"] == .bool(false), "\(entry)")
            guard case .string(let sid)? = entry["sid"] else { throw TestSupportError("no sid") }
            let text = try await TestSupport.run(tsh, try Self.tshArguments(setup) + ["play", "--format=text", sid])
            #expect(text.stdout.contains("before-crash-2"), "\(text)")
            await TestSupport.stopDaemon(restarted)
        }
    }

    @Test("tsh join: an auditor watches a live session as observer (typing dropped) and types as peer; others may not join", .timeLimit(.minutes(5)))
    func joinLiveSession() async throws {
        try await SSHAccessTests.withSetup { setup in
            let cluster = setup.cluster
            let tsh = try ClusterFixture.binary("tsh")
            func identity(_ name: String, roles: String?) async throws -> String {
                var arguments = ["users", "add", name, name]
                if let roles { arguments.append("--roles=\(roles)") }
                let added = try await cluster.tctl(arguments)
                #expect(added.exitCode == 0, "\(added)")
                let path = cluster.directory.appendingPathComponent("\(name).id").path
                #expect(try await cluster.tctl(["auth", "sign", "--user=\(name)", "--out=\(path)"]).exitCode == 0)
                return path
            }
            let bob = try await identity("bob", roles: "auditor")
            let carol = try await identity("carol", roles: nil)
            let environment = ProcessInfo.processInfo.environment.merging(["TERM": "xterm"]) { $1 }
            let owner = try TSHTerminal(tsh, try Self.tshArguments(setup) + ["ssh", "-t", "root@db1"], environment: environment)
            try await owner.expect("# ")

            var sid = ""
            for _ in 0..<100 where sid.isEmpty {
                let listed = try await TestSupport.run(tsh, try Self.tshArguments(setup, identity: bob) + ["sessions", "ls", "--format=json"])
                let sessions = (try? ResourceCodec.jsonDecoder().decode([[String: JSONValue]].self, from: Data(listed.stdout.utf8))) ?? []
                if case .string(let found)? = sessions.first?["sid"] { sid = found } else { try await Task.sleep(for: .milliseconds(100)) }
            }
            try #require(!sid.isEmpty, "the live session is not listed")

            /// Waits until the node reported `count` joins (the party is attached from then on).
            func joins(_ count: Int) async throws {
                for _ in 0..<150 {
                    let joined = try await AuditEventsTests.events(cluster, ["--type=session.join"]).filter { $0["sid"] == .string(sid) }
                    if joined.count >= count { return }
                    try await Task.sleep(for: .milliseconds(200))
                }
                Issue.record("\(count) joins were not reported")
            }
            let observer = try TSHTerminal(tsh, try Self.tshArguments(setup, identity: bob) + ["join", sid], environment: environment)
            try await joins(1)
            owner.sendLine("echo live-$((3*3))")
            try await observer.expect("live-9")
            observer.sendLine("echo observer-typed-$((1+1))")
            try await Task.sleep(for: .milliseconds(500))
            #expect(!owner.transcript.contains("observer-typed-2"), "an observer's typing must not reach the session")

            let peer = try TSHTerminal(tsh, try Self.tshArguments(setup, identity: bob) + ["join", "--mode=peer", sid], environment: environment)
            try await joins(2)
            peer.sendLine("echo from-peer-$((2+2))")
            try await owner.expect("from-peer-4")
            try await observer.expect("from-peer-4")

            let refused = try await TestSupport.run(tsh, try Self.tshArguments(setup, identity: carol) + ["join", sid])
            #expect(refused.exitCode != 0 && refused.stderr.contains("that you may join"), "\(refused)")

            owner.sendLine("exit")
            #expect(try await owner.wait() == 0)
            #expect(try await observer.wait(timeout: .seconds(20)) == 0, "the observer's tsh ends with the session")
            _ = try? await peer.wait(timeout: .seconds(20))
            var events: [[String: JSONValue]] = []
            for _ in 0..<100 {
                events = try await AuditEventsTests.events(cluster, ["--type=session.join,session.leave"])
                if events.contains(where: { $0["event"] == .string("session.leave") && $0["user"] == .string("bob") }) { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(events.contains { $0["event"] == .string("session.join") && $0["user"] == .string("bob") && $0["sid"] == .string(sid) }, "\(events)")
            var ends: [[String: JSONValue]] = []
            for _ in 0..<50 {
                ends = try await AuditEventsTests.events(cluster, ["--type=session.end"]).filter { $0["sid"] == .string(sid) }
                if !ends.isEmpty { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(ends.first?["participants"] == .array([.string("joe"), .string("bob")]), "\(ends)")
            #expect(events.contains { $0["event"] == .string("session.leave") && $0["user"] == .string("bob") }, "\(events.map { "\($0["event"]!) \($0["user"]!) \($0["time"]!)" })")
        }
    }

    @Test("a command run with tsh ssh -t is a live session: tsh sessions ls shows it with its command, tsh join watches it, and it leaves the list when it ends", .timeLimit(.minutes(5)))
    func commandWithTerminalIsLive() async throws {
        try await SSHAccessTests.withSetup { setup in
            let tsh = try ClusterFixture.binary("tsh")
            let environment = ProcessInfo.processInfo.environment.merging(["TERM": "xterm"]) { $1 }
            let command = "echo exec-started; read line; echo got-$line-$((2+3)); sleep 600"
            let owner = try TSHTerminal(tsh, try Self.tshArguments(setup) + ["ssh", "-t", "root@db1", command], environment: environment)
            try await owner.expect("exec-started")

            var sid = ""
            var listed: CommandResult?
            for _ in 0..<100 where sid.isEmpty {
                listed = try await TestSupport.run(tsh, try Self.tshArguments(setup) + ["sessions", "ls", "--format=json"])
                let sessions = (try? ResourceCodec.jsonDecoder().decode([[String: JSONValue]].self, from: Data((listed?.stdout ?? "").utf8))) ?? []
                if let session = sessions.first(where: { $0["command"] == .string(command) }), case .string(let found)? = session["sid"] {
                    sid = found
                } else {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            try #require(!sid.isEmpty, "the -t command is not listed: \(String(describing: listed))")
            let text = try await TestSupport.run(tsh, try Self.tshArguments(setup) + ["sessions", "ls"])
            let row = text.stdout.split(separator: "\n").first { $0.hasPrefix(sid) }.map(String.init) ?? ""
            #expect(text.stdout.hasPrefix("ID") && text.stdout.contains("Command"), "\(text)")
            #expect(row.contains("joe") && row.contains("db1") && row.hasSuffix(command), "\(text)")

            // The owner joins his own session from a second terminal, as observer.
            let observer = try TSHTerminal(tsh, try Self.tshArguments(setup) + ["join", sid], environment: environment)
            for _ in 0..<150 {
                let joined = try await AuditEventsTests.events(setup.cluster, ["--type=session.join"]).filter { $0["sid"] == .string(sid) }
                if !joined.isEmpty { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            owner.sendLine("hello")
            try await owner.expect("got-hello-5")
            try await observer.expect("got-hello-5")

            // Ctrl-C ends the command (SIGINT through the terminal): both tsh end, and it leaves the list.
            owner.send("\u{03}")
            let ownerCode = try await owner.wait(timeout: .seconds(30))
            #expect(ownerCode == 130, "\(owner.transcript)")
            let observerCode = try await observer.wait(timeout: .seconds(30))
            #expect(observerCode == 130, "the observer's tsh ends with the command's signal: \(observer.transcript)")
            #expect(!observer.transcript.contains("without an exit status"), "\(observer.transcript)")
            var gone = false
            for _ in 0..<100 where !gone {
                let now = try await TestSupport.run(tsh, try Self.tshArguments(setup) + ["sessions", "ls", "--format=json"])
                gone = now.exitCode == 0 && !now.stdout.contains(sid)
                listed = now
                if !gone { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(gone, "the ended session is still listed: \(String(describing: listed))")

            // A command without a terminal is not a live session (there is no screen to watch).
            let log = setup.cluster.directory.appendingPathComponent("plain-tsh.log")
            let arguments = try Self.tshArguments(setup) + ["ssh", "root@db1", "echo plain-started; sleep 600"]
            let plain = try TestSupport.spawnDaemon(tsh, arguments, logPath: log.path)
            let started = await TestSupport.eventually(timeout: .seconds(30)) { ((try? TestSupport.read(log)) ?? "").contains("plain-started") }
            #expect(started, "\((try? TestSupport.read(log)) ?? "")")
            let withPlain = try await TestSupport.run(tsh, try Self.tshArguments(setup) + ["sessions", "ls", "--format=json"])
            #expect(withPlain.exitCode == 0 && !withPlain.stdout.contains("plain-started"), "\(withPlain)")
            await TestSupport.stopDaemon(plain)
        }
    }

    @Test("auth stopped (SIGSTOP, 60 s) during a session: the session goes on, its events and recording arrive after auth returns", .timeLimit(.minutes(5)))
    func authPausedDuringSession() async throws {
        try await SSHAccessTests.withSetup { setup in
            let cluster = setup.cluster
            let authPID = try #require(cluster.pid)
            // A first login, so the node's certificate cache holds joe's certificate.
            let warm = try await setup.ssh(["-p", "\(setup.nodePort)", "-l", "root", "127.0.0.1", "true"])
            #expect(warm.exitCode == 0, "\(warm)")

            // Straight to the node (the proxy shares the auth process): a recorded terminal session,
            // running when auth stops and ending while it is stopped.
            async let running = setup.ssh(
                ["-tt", "-p", "\(setup.nodePort)", "-l", "root", "127.0.0.1", "echo during-pause-$((5*5)); sleep 4; echo still-here"])
            try await Task.sleep(for: .seconds(2))
            kill(authPID, SIGSTOP)
            let stoppedAt = ContinuousClock.now
            var resumed = false
            defer { if !resumed { kill(authPID, SIGCONT) } }
            let session = try await running
            #expect(session.exitCode == 0 && session.stdout.contains("during-pause-25") && session.stdout.contains("still-here"), "\(session)")
            let waiting = (try? FileManager.default.contentsOfDirectory(
                atPath: setup.nodeDir.appendingPathComponent("data/log/upload/sessions/default").path)) ?? []
            #expect(waiting.contains { $0.hasSuffix(".done") }, "the recording waits on the node: \(waiting)")
            let remaining = .seconds(60) - (ContinuousClock.now - stoppedAt)
            if remaining > .zero { try await Task.sleep(for: remaining) }
            kill(authPID, SIGCONT)
            resumed = true

            var found: [String: JSONValue]?
            for _ in 0..<200 where found == nil {
                let list = try await Self.waitForRecording(setup)
                found = list.first { entry in
                    guard case .string(let sid)? = entry["sid"] else { return false }
                    let path = cluster.dataDir.appendingPathComponent("log/sessions/default/\(sid).chunks.gz").path
                    return FileManager.default.fileExists(atPath: path)
                }
                if found == nil { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(found != nil, "the recording arrived after auth came back")
            // The session ended normally while auth was away: its recording is complete.
            #expect(found?["complete"] == .bool(true), "\(found.map { "\($0)" } ?? "none")")
            let events = try await AuditEventsTests.events(cluster, ["--type=session.start,session.end"])
            #expect(events.filter { $0["event"] == .string("session.end") && $0["interactive"] == .bool(true) }.count >= 1, "\(events.count) events")
        }
    }

    @Test("session_recording: off records nothing and still audits the session")
    func recordingOff() async throws {
        try await withCluster(try ClusterFixture(clusterName: "norec.example", authSection: "  session_recording: off")) { cluster in
            try await cluster.start()
            #expect(try await cluster.tctl(["users", "add", "joe", "root"]).exitCode == 0)
            let identity = cluster.directory.appendingPathComponent("joe.id").path
            #expect(try await cluster.tctl(["auth", "sign", "--user=joe", "--out=\(identity)"]).exitCode == 0)
            let tsh = try ClusterFixture.binary("tsh")
            let arguments = ["-i", identity, "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure"]
            let session = try TSHTerminal(
                tsh, arguments + ["ssh", "-t", "root@testnode"],
                environment: ProcessInfo.processInfo.environment.merging(["TERM": "xterm"]) { $1 })
            try await session.expect("# ")
            session.sendLine("echo unrecorded-$((2*3)); exit")
            #expect(try await session.wait() == 0)
            #expect(await TestSupport.eventually { cluster.log.contains("session recording is off") })
            var ended = false
            for _ in 0..<50 where !ended {
                ended = try await AuditEventsTests.events(cluster, ["--type=session.end"]).contains { $0["interactive"] == .bool(true) }
                if !ended { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(ended, "the session is audited")
            let listed = try await TestSupport.run(tsh, arguments + ["recordings", "ls", "--format=json"])
            #expect(listed.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "\(listed)")
            let pending = (try? FileManager.default.contentsOfDirectory(atPath: cluster.dataDir.appendingPathComponent("log/upload/sessions/default").path)) ?? []
            #expect(pending.isEmpty, "\(pending)")
            await cluster.stop()
        }
    }
}
