import Foundation
import Logging
import TeleportAPI
import TeleportBackend
import TeleportBackendSQLite
import TeleportTestSupport
import Testing

/// Issue 12, items 4 and 5 and three of its "also" list, attacked on a live cluster: control
/// characters from the cluster reaching an administrator's terminal, the printed join line,
/// targets for another cluster, over-limit bodies, and connections that never send a request.
@Suite("wave 2 attacks: terminal escapes, join line, foreign clusters, body limits, idle connections", .serialized)
struct EscapeInjectionTests {
    /// The attacker's user name of issue 12: retitles the terminal, clears it, turns it red.
    static let hostile = "\u{1B}]0;OWNED\u{07}\u{1B}[2J\u{1B}[31mFAKE"

    /// The control characters a terminal acts on (newline and nothing else allowed), as `cat -v` shows them.
    static func controlBytes(_ text: String) -> [UInt32] {
        text.unicodeScalars.map(\.value).filter { ($0 < 0x20 && $0 != 0x0A) || (0x7F...0x9F).contains($0) }
    }

    /// curl against the auth API with the administrator's identity; prints the body, then the status.
    static func authCurl(_ cluster: ClusterFixture, _ method: String, _ path: String, data: String? = nil, file: String? = nil) async throws
        -> (status: Int, body: String)
    {
        let keys = cluster.dataDir.appendingPathComponent("keys").path
        var arguments = [
            "-s", "-X", method, "--cacert", "\(keys)/ca.crt", "--cert", "\(keys)/admin.crt", "--key", "\(keys)/admin.key",
            "--resolve", "\(AuthAPI.serverName):\(cluster.authPort):127.0.0.1", "-w", "\n%{http_code}",
            "https://\(AuthAPI.serverName):\(cluster.authPort)/v1/\(path)",
        ]
        if let data { arguments += ["--data-binary", data] }
        if let file { arguments += ["--data-binary", "@\(file)"] }
        let result = try await TestSupport.run("/usr/bin/curl", arguments)
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    @Test("events, nodes, labels, users and errors print no control byte; a heartbeat or create with one is refused", .timeLimit(.minutes(4)))
    func terminalEscapes() async throws {
        try await withCluster(try ClusterFixture(clusterName: "escape.example")) { cluster in
            try await cluster.start()
            #expect(try await cluster.tctl(["users", "add", "joe", "root"]).exitCode == 0)
            let identity = cluster.directory.appendingPathComponent("joe.id").path
            #expect(try await cluster.tctl(["auth", "sign", "--user=joe", "--out=\(identity)"]).exitCode == 0)
            let hostileJSON = String(decoding: try JSONEncoder().encode(Self.hostile), as: UTF8.self)

            // 1. An audit event carrying the attacker's user name (as an unauthenticated login
            // attempt records it) and a command with escapes.
            let event = """
                [{"event":"exec","code":"T3002I","uid":"\(UUID().uuidString.lowercased())","time":"\(RFC3339.format(Date()))",\
                "user":\(hostileJSON),"login":"root","command":\(hostileJSON)}]
                """
            let posted = try await Self.authCurl(cluster, "POST", "events", data: event)
            #expect(posted.status == 200, "\(posted)")
            let text = try await cluster.tctl(["events", "ls", "--type=exec"])
            #expect(text.exitCode == 0, "\(text)")
            #expect(text.stdout.contains("\\x1b]0;OWNED\\x07\\x1b[2J\\x1b[31mFAKE"), "\(text.stdout.debugDescription)")
            #expect(Self.controlBytes(text.stdout).isEmpty, "tctl events ls: \(text.stdout.debugDescription)")
            // JSON stays JSON: the exact user name comes back.
            let json = try await AuditEventsTests.events(cluster, ["--type=exec"])
            #expect(json.contains { $0["user"] == .string(Self.hostile) }, "\(json)")

            // 2. A heartbeat and a tctl create with such a label are refused.
            let uuid = "6f1c5f8e-7d0a-4c3b-9e11-00000000e5c0"
            var evil = ServerNode(uuid: uuid, hostname: "evil", addr: "127.0.0.1:1", labels: ["env": Self.hostile])
            let heartbeat = try await Self.authCurl(cluster, "POST", "presence/nodes", data: String(decoding: try ResourceCodec.json(evil), as: UTF8.self))
            #expect(heartbeat.status == 400 && heartbeat.body.contains("the value of label \\\"env\\\" is not valid"), "\(heartbeat)")
            #expect(Self.controlBytes(heartbeat.body).isEmpty, "the refusal quotes nothing raw: \(heartbeat.body.debugDescription)")
            let document = cluster.directory.appendingPathComponent("evil-node.yaml")
            try TestSupport.write(try ResourceCodec.yaml([evil]), to: document)
            let created = try await cluster.tctl(["create", "-f", document.path])
            #expect(created.exitCode != 0 && created.stderr.contains("is not valid"), "\(created)")
            #expect(Self.controlBytes(created.stderr).isEmpty, "\(created.stderr.debugDescription)")

            // 3. Records written before the check (straight into the backend): a node with the
            // label and the host name, a user with the trait. The printers escape them.
            evil.spec.hostname = "evil\u{1B}[2J"
            evil.spec.cmdLabels = ["uptime": .init(period: "1m0s", command: ["uptime"], result: "\u{1B}[31mred\u{9B}1m")]
            let backend = try await SQLiteBackend.open(
                path: cluster.dataDir.appendingPathComponent("backend/sqlite.db").path, logger: Logger(label: "test"))
            try await backend.put(Item(key: "/nodes/default/" + uuid, value: try ResourceCodec.json(evil), expires: Date().addingTimeInterval(3600)))
            var joe = try ResourceCodec.jsonDecoder().decode(User.self, from: try await backend.get("/users/joe").value)
            joe.spec.traits["logins"] = ["root", Self.hostile]
            try await backend.put(Item(key: "/users/joe", value: try ResourceCodec.json(joe)))
            try await backend.close()

            // tctl get checks every resource it reads: the record is refused, named, escaped.
            let nodes = try await cluster.tctl(["get", "nodes", "--format", "text"])
            #expect(nodes.exitCode != 0 && nodes.stderr.contains("spec.hostname \"evil\\x1b[2J\" is not valid"), "\(nodes)")
            #expect(Self.controlBytes(nodes.stdout + nodes.stderr).isEmpty, "tctl get nodes: \(nodes)")
            let nodesLs = try await cluster.tctl(["nodes", "ls", "-v"])
            #expect(nodesLs.exitCode == 0 && nodesLs.stdout.contains("env=\\x1b]0;OWNED\\x07\\x1b[2J"), "\(nodesLs)")
            #expect(Self.controlBytes(nodesLs.stdout).isEmpty, "tctl nodes ls: \(nodesLs.stdout.debugDescription)")
            let users = try await cluster.tctl(["users", "ls"])
            #expect(users.exitCode == 0 && users.stdout.contains("root,\\x1b]0;OWNED"), "\(users.stdout.debugDescription)")
            #expect(Self.controlBytes(users.stdout).isEmpty, "tctl users ls: \(users.stdout.debugDescription)")

            let explain = try await cluster.tctl(["access", "explain", "--user=joe", "--node=\(uuid)", "--login=root"])
            #expect(explain.exitCode == 0 && explain.stdout.contains("evil\\x1b[2J") && explain.stdout.contains("env=\\x1b]0;OWNED"), "\(explain)")
            #expect(Self.controlBytes(explain.stdout).isEmpty, "tctl access explain: \(explain.stdout.debugDescription)")

            let tsh = try ClusterFixture.binary("tsh")
            func tshRun(_ arguments: [String]) async throws -> CommandResult {
                try await TestSupport.run(tsh, ["-i", identity, "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure"] + arguments)
            }
            var listed = try await tshRun(["ls", "-v"])
            for _ in 0..<100 where !listed.stdout.contains(uuid) {
                try await Task.sleep(for: .milliseconds(100))
                listed = try await tshRun(["ls", "-v"])
            }
            #expect(listed.exitCode == 0 && listed.stdout.contains("evil\\x1b[2J") && listed.stdout.contains("\\x1b[31mred\\x9b1m"), "\(listed)")
            #expect(Self.controlBytes(listed.stdout).isEmpty, "tsh ls: \(listed.stdout.debugDescription)")
            let names = try await tshRun(["ls", "--format", "names"])
            #expect(names.stdout.contains("evil\\x1b[2J") && Self.controlBytes(names.stdout).isEmpty, "\(names.stdout.debugDescription)")
            let tshJSON = try await tshRun(["ls", "--format", "json"])
            #expect(tshJSON.stdout.contains("\\u001b]0;OWNED"), "JSON keeps JSON's own escaping: \(tshJSON.stdout.prefix(400))")

            // 4. An error that quotes the input.
            let missing = try await cluster.tctl(["rm", "user/\(Self.hostile)"])
            #expect(missing.exitCode != 0 && Self.controlBytes(missing.stderr).isEmpty, "\(missing.stderr.debugDescription)")
            await cluster.stop()
        }
    }

    @Test("hostile token values are refused; the printed join line is shell-quoted and runs nothing when pasted", .timeLimit(.minutes(3)))
    func joinLine() async throws {
        try await withCluster(try ClusterFixture(clusterName: "joinline.example")) { cluster in
            try await cluster.start()
            let marker = cluster.directory.appendingPathComponent("PWNED").path
            for token in ["$(touch${IFS}\(marker))x", "`touch \(marker)`xx", "abcdefgh;touch \(marker)", "quote'xxxxxx", "esc\u{1B}[31mxxxx", "short"] {
                let nodes = try await cluster.tctl(["nodes", "add", "--token=\(token)"])
                #expect(nodes.exitCode != 0 && nodes.stderr.contains("--token is not a valid token: use 8 to 256 letters, digits and - _ ."), "\(nodes)")
                #expect(Self.controlBytes(nodes.stderr).isEmpty)
                let tokens = try await cluster.tctl(["tokens", "add", "--type=node", "--value=\(token)"])
                #expect(tokens.exitCode != 0 && tokens.stderr.contains("--value is not a valid token"), "\(tokens)")
                // The auth service refuses it too, whoever calls it.
                let body = String(decoding: try JSONEncoder().encode(AuthAPI.CreateTokenRequest(token: token, roles: [.node], ttlSeconds: 60)), as: UTF8.self)
                let direct = try await Self.authCurl(cluster, "POST", "tokens", data: body)
                #expect(direct.status == 400 && direct.body.contains("is not a valid token"), "\(direct)")
            }
            let listed = try await cluster.tctl(["tokens", "ls"])
            #expect(!listed.stdout.contains("touch"), "no hostile token was stored: \(listed)")

            // The printed command, pasted into bash (with `teleport` standing for printf), gives
            // exactly the words it shows and runs nothing else.
            let added = try await cluster.tctl(["nodes", "add", "--token=pasted-Token_1.2"])
            #expect(added.exitCode == 0, "\(added)")
            let lines = added.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let start = try #require(lines.firstIndex { $0.hasPrefix("> teleport start") })
            var command = ""
            for line in lines[start...] {
                command += line + "\n"
                if !line.hasSuffix("\\") { break }
            }
            let pasted = String(command.dropFirst(2)).replacingOccurrences(of: "teleport start", with: "printf '%s\\n' start")
            let result = try await TestSupport.run("/bin/bash", ["-c", pasted])
            #expect(result.exitCode == 0, "\(result)")
            let words = result.stdout.split(separator: "\n").map(String.init)
            #expect(words.count == 5 && words[0] == "start" && words[1] == "--roles=node" && words[2] == "--token=pasted-Token_1.2", "\(words)")
            #expect(words[3].hasPrefix("--ca-pin=sha256:") && words[4] == "--auth-server=127.0.0.1:\(cluster.authPort)", "\(words)")
            #expect(!FileManager.default.fileExists(atPath: marker), "a pasted line ran a command")
            await cluster.stop()
        }
    }

    @Test("a proxy target for another cluster is refused, naming it, on the subsystem, direct-tcpip and the TLS tunnel", .timeLimit(.minutes(3)))
    func foreignCluster() async throws {
        try await withCluster(try ClusterFixture(clusterName: "home.example")) { cluster in
            try await cluster.start()
            #expect(try await cluster.tctl(["users", "add", "joe", "root"]).exitCode == 0)
            let keyPath = cluster.directory.appendingPathComponent("joe").path
            #expect(try await cluster.tctl(["auth", "sign", "--user=joe", "--format=openssh", "--out=\(keyPath)"]).exitCode == 0)
            let identity = cluster.directory.appendingPathComponent("joe.id").path
            #expect(try await cluster.tctl(["auth", "sign", "--user=joe", "--out=\(identity)"]).exitCode == 0)
            let ssh = [
                "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o",
                "IdentitiesOnly=yes", "-i", keyPath, "-o", "CertificateFile=\(keyPath)-cert.pub", "-o", "LogLevel=ERROR",
                "-p", "\(cluster.proxyPort)", "-l", "root", "127.0.0.1",
            ]
            let refusal = "cluster \"other.example\" is not known to this proxy"

            // The subsystem: this cluster reaches the node (its SSH banner comes back); another is refused.
            let home = try await TestSupport.run(
                "/bin/sh", ["-c", "sleep 2 | \(TestSupport.ssh) \(ssh.map { ShellQuote.word($0) }.joined(separator: " ")) -s proxy:testnode:\(cluster.sshPort)@home.example"],
                timeout: .seconds(30))
            #expect(home.stdout.hasPrefix("SSH-2.0-"), "\(home)")
            let other = try await TestSupport.run(TestSupport.ssh, ssh + ["-s", "proxy:testnode:\(cluster.sshPort)@other.example"], timeout: .seconds(30))
            #expect(other.exitCode != 0 && !other.stdout.hasPrefix("SSH-2.0-"), "\(other)")

            // direct-tcpip (ssh -W) with the cluster in the host.
            let direct = try await TestSupport.run(TestSupport.ssh, ssh + ["-W", "testnode@other.example:\(cluster.sshPort)"], timeout: .seconds(30))
            #expect(direct.exitCode != 0 && !direct.stdout.hasPrefix("SSH-2.0-"), "\(direct)")

            // The TLS tunnel of tsh proxy ssh, spoken by openssl with joe's certificate.
            let tunnel = try await TestSupport.run(
                "/bin/sh",
                [
                    "-c",
                    "printf 'testnode:\(cluster.sshPort)@other.example\\n' | timeout 10 openssl s_client -quiet -alpn teleport-proxy-ssh "
                        + "-cert \(identity) -key \(identity) -connect 127.0.0.1:\(cluster.webPort) 2>/dev/null",
                ])
            #expect(tunnel.stdout.hasPrefix("ERR \(refusal)"), "\(tunnel)")
            // An open tunnel to this cluster's node is not cut by the web port's idle timeout: after
            // 13 s of silence it still carries the node's SSH handshake.
            let openTunnel = """
                import socket, ssl, sys, time
                ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
                ctx.set_alpn_protocols(["teleport-proxy-ssh"]); ctx.load_cert_chain(sys.argv[2], sys.argv[2])
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20))
                s.sendall(sys.argv[3].encode() + b"\\n")
                first = b""
                while b"SSH-2.0-" not in first:
                    chunk = s.recv(4096)
                    if not chunk: break
                    first += chunk
                time.sleep(13)
                s.sendall(b"SSH-2.0-probe\\r\\n")
                s.settimeout(5)
                try:
                    later = s.recv(4096)
                    print("open" if later else "closed", first[:3].decode())
                except socket.timeout:
                    print("open", first[:3].decode())
                except OSError:
                    print("closed", first[:3].decode())
                """
            let kept = try await TestSupport.run(
                "/usr/bin/python3", ["-c", openTunnel, "\(cluster.webPort)", identity, "testnode:\(cluster.sshPort)@home.example"], timeout: .seconds(60))
            #expect(kept.stdout.hasPrefix("open OK"), "\(kept)")
            let tshForeign = try await TestSupport.run(
                try ClusterFixture.binary("tsh"),
                ["-i", identity, "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure", "proxy", "ssh", "--cluster=other.example", "root@testnode"])
            #expect(tshForeign.exitCode != 0 && tshForeign.stderr.contains("\"other.example\" is not known"), "\(tshForeign)")

            // Every refusal names the cluster in the audit log.
            var events: [[String: JSONValue]] = []
            func refused(_ target: String) -> Bool {
                events.contains { $0["event"] == .string("port") && $0["addr"] == .string(target) && ($0["error"]?.stringValue ?? "").contains(refusal) }
            }
            let targets = ["proxy:testnode:\(cluster.sshPort)@other.example", "testnode@other.example:\(cluster.sshPort)", "testnode:\(cluster.sshPort)@other.example"]
            for _ in 0..<50 where !targets.allSatisfy(refused) {
                events = try await AuditEventsTests.events(cluster, ["--type=port"])
                if !targets.allSatisfy(refused) { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(targets.allSatisfy(refused), "\(events)")
            #expect(cluster.log.contains(refusal), "the proxy logs the refusal")
            await cluster.stop()
        }
    }

    @Test("an over-limit body on the auth API is a 413; connections that send nothing or half a request are closed", .timeLimit(.minutes(3)))
    func limitsAndIdleConnections() async throws {
        try await withCluster(try ClusterFixture(clusterName: "idle.example")) { cluster in
            try await cluster.start()
            let big = cluster.directory.appendingPathComponent("big.json")
            try Data(repeating: UInt8(ascii: "a"), count: 2 << 20).write(to: big)
            let heartbeat = try await Self.authCurl(cluster, "POST", "presence/nodes", file: big.path)
            #expect(heartbeat.status == 413 && heartbeat.body.contains("limit_exceeded"), "\(heartbeat.status) \(heartbeat.body.prefix(300))")
            let token = try await Self.authCurl(cluster, "POST", "tokens", file: big.path)
            #expect(token.status == 413, "\(token.status) \(token.body.prefix(300))")

            // Four connections at once: raw TCP that sends nothing, and TLS with half a request
            // head, on the auth and web ports. Each must be closed by the server well before 30 s.
            let probe = """
                import socket, ssl, sys, threading, time
                def run(port, partial, out, i):
                    s = socket.create_connection(("127.0.0.1", port), timeout=30)
                    if partial:
                        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
                        s = ctx.wrap_socket(s); s.settimeout(30)
                        s.sendall(b"GET /webapi/ping HTTP/1.1\\r\\nHost: x\\r\\n")
                    start = time.monotonic()
                    try:
                        data = s.recv(1)
                        out[i] = "closed" if data == b"" else "data"
                    except socket.timeout:
                        out[i] = "held"
                    except (ConnectionResetError, ssl.SSLError, OSError):
                        out[i] = "closed"
                    out[i] += " %.1f" % (time.monotonic() - start)
                ports = [int(p) for p in sys.argv[1:]]
                cases = [(p, partial) for p in ports for partial in (False, True)]
                out = [None] * len(cases)
                threads = [threading.Thread(target=run, args=(p, partial, out, i)) for i, (p, partial) in enumerate(cases)]
                for t in threads: t.start()
                for t in threads: t.join()
                print(" | ".join(out))
                """
            let result = try await TestSupport.run("/usr/bin/python3", ["-c", probe, "\(cluster.authPort)", "\(cluster.webPort)"], timeout: .seconds(60))
            let outcomes = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).components(separatedBy: " | ")
            #expect(outcomes.count == 4 && outcomes.allSatisfy { $0.hasPrefix("closed") }, "\(result)")
            // Closed by the timeout, not at once.
            #expect(outcomes.allSatisfy { (Double($0.split(separator: " ").last ?? "") ?? 0) >= 5 }, "\(result)")
            // The tunnel protocol of tsh proxy ssh without a request line: refused in the same time.
            let silentTunnel = """
                import socket, ssl, sys
                ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
                ctx.set_alpn_protocols(["teleport-proxy-ssh"])
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30))
                try:
                    print(s.recv(200).decode())
                except socket.timeout:
                    print("held")
                """
            let tunnel = try await TestSupport.run("/usr/bin/python3", ["-c", silentTunnel, "\(cluster.webPort)"], timeout: .seconds(60))
            #expect(tunnel.stdout.hasPrefix("ERR no request line in time"), "\(tunnel)")
            // The servers still answer.
            let ping = try await TestSupport.run("/usr/bin/curl", ["-sk", "https://127.0.0.1:\(cluster.webPort)/webapi/ping"])
            #expect(ping.stdout.contains("idle.example"), "\(ping)")
            await cluster.stop()
        }
    }
}
