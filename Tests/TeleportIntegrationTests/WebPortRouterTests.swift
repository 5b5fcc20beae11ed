import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The proxy's web port as one port: TLS ClientHellos routed by ALPN (agents' calls to auth pass
/// through to the auth service; HTTPS and `tsh` as before), and what does not speak TLS, or
/// stops halfway, answered or closed cleanly while real users carry on.
@Suite("web port ALPN router", .serialized)
struct WebPortRouterTests {
    /// Makes the cluster's tunnel address its web address: the one-port setting of the seed.
    static func multiplex(_ cluster: ClusterFixture) throws {
        let text = try TestSupport.read(cluster.configURL)
        let replaced = text.replacingOccurrences(
            of: #"tunnel_listen_addr: 127\.0\.0\.1:\d+"#, with: "tunnel_listen_addr: 127.0.0.1:\(cluster.webPort)",
            options: .regularExpression)
        #expect(replaced != text)
        try TestSupport.write(replaced, to: cluster.configURL)
    }

    static func ping(_ cluster: ClusterFixture) async throws -> [String: JSONValue] {
        let reply = try await TestSupport.run("/usr/bin/curl", ["-sk", "-m", "10", "https://127.0.0.1:\(cluster.webPort)/webapi/ping"])
        let body = try ResourceCodec.jsonDecoder().decode([String: JSONValue].self, from: Data(reply.stdout.utf8))
        guard case .object(let proxy)? = body["proxy"] else { throw TestSupportError("no proxy in the ping: \(reply)") }
        return proxy
    }

    static func openssl(_ cluster: ClusterFixture, _ extra: [String]) async throws -> CommandResult {
        try await TestSupport.run(
            "/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(cluster.webPort)"] + extra, timeout: .seconds(20))
    }

    @Test(
        "garbage ALPN, no ALPN, plain HTTP, an SSH banner, garbage and clients closing mid-handshake are answered or closed cleanly",
        .timeLimit(.minutes(3)))
    func badInput() async throws {
        try await withCluster(try ClusterFixture(clusterName: "router.example")) { cluster in
            try Self.multiplex(cluster)
            try await cluster.start()
            #expect(
                cluster.log.contains("Setup Proxy: Reverse tunnel proxy and web proxy listen on the same port, multiplexing is on."),
                "\(cluster.log)")
            let proxy = try await Self.ping(cluster)
            #expect(proxy["tls_routing_enabled"] == .bool(true))
            #expect(proxy["tunnel_public_addr"] == .string("127.0.0.1:\(cluster.webPort)"))

            // An ALPN value nobody registered, and none at all: the web TLS, no protocol chosen.
            for extra in [["-alpn", "xyz"], [], ["-alpn", "\u{1}\u{2}garbage"]] {
                let handshake = try await Self.openssl(cluster, extra)
                #expect(handshake.stdout.contains("Cipher is"), "\(extra): \(handshake)")
                #expect(handshake.stdout.contains("No ALPN negotiated"), "\(extra): \(handshake)")
                #expect(handshake.stdout.contains("CN = testnode"), "the proxy's certificate: \(handshake)")
            }
            // `teleport-auth` reaches the auth service itself: its host certificate, TLS end to end.
            let auth = try await Self.openssl(cluster, ["-alpn", "teleport-auth"])
            #expect(auth.stdout.contains("O = Auth"), "\(auth)")

            // Plain HTTP gets a 400 naming the HTTPS address.
            let plain = try await TestSupport.run(
                "/usr/bin/curl", ["-s", "-m", "10", "-w", "\n%{http_code}", "http://127.0.0.1:\(cluster.webPort)/webapi/ping"])
            #expect(plain.stdout.hasSuffix("\n400"), "\(plain)")
            #expect(plain.stdout.contains("this port speaks HTTPS: use https://127.0.0.1:\(cluster.webPort)/"), "\(plain)")

            // An SSH client gets a banner-shaped line naming the SSH port, then the connection closes.
            let ssh = try RawConnection(port: cluster.webPort)
            ssh.send(Array("SSH-2.0-OpenSSH_9.2p1\r\n".utf8))
            let banner = String(decoding: ssh.readUntilClosed(timeout: 10), as: UTF8.self)
            #expect(banner == "SSH-2.0-Teleport this port speaks TLS; use the proxy's SSH port (\(cluster.proxyPort))\r\n", "\(banner)")
            let openssh = try await TestSupport.run(
                TestSupport.ssh, ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-p", "\(cluster.webPort)", "127.0.0.1", "true"],
                timeout: .seconds(20))
            #expect(openssh.exitCode == 255, "\(openssh)")

            // A record header announcing 64 KiB: refused at once, before the bytes.
            let oversized = try RawConnection(port: cluster.webPort)
            oversized.send([0x16, 0x03, 0x01, 0xff, 0xff] + Array(repeating: 0x41, count: 100))
            let start = ContinuousClock.now
            #expect(oversized.readUntilClosed(timeout: 10).isEmpty)
            #expect(ContinuousClock.now - start < .seconds(5))
            // Text that is neither HTTP nor SSH: closed without a word.
            let junk = try RawConnection(port: cluster.webPort)
            junk.send(Array("\r\nhello?\r\n".utf8))
            #expect(junk.readUntilClosed(timeout: 10).isEmpty)

            // Clients closing mid-ClientHello and right after it (the TLS handshake half done).
            let hello = RouterHellos.curl
            for cut in [1, 5, 60, hello.count - 1, hello.count] {
                let client = try RawConnection(port: cluster.webPort)
                client.send(Array(hello.prefix(cut)))
                client.close()
            }
            // A client that resets the connection after the ClientHello.
            let reset = try RawConnection(port: cluster.webPort)
            reset.send(hello)
            reset.abort()

            // Still up and serving.
            #expect(try await cluster.diag("readyz").status == 200)
            let again = try await Self.ping(cluster)
            #expect(again["tls_routing_enabled"] == .bool(true))
            #expect(!cluster.log.contains("Fatal error"), "\(cluster.log)")

            // A connection passed through to auth and left open does not hold up a graceful stop.
            let idleAgent = try RawConnection(port: cluster.webPort)
            idleAgent.send(RouterHellos.teleportAuth)
            #expect(!idleAgent.readSome(timeout: 10).isEmpty, "the auth service's ServerHello")
            let stopStarted = ContinuousClock.now
            #expect(await cluster.stop(), "teleport did not stop gracefully:\n\(cluster.log)")
            #expect(ContinuousClock.now - stopStarted < .seconds(5))
        }
    }

    @Test("1,000 half-open connections: bounded memory, a real user logs in meanwhile, all closed by the deadline", .timeLimit(.minutes(4)))
    func halfOpenConnections() async throws {
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        try await withCluster(try ClusterFixture(clusterName: "halfopen.example")) { cluster in
            try Self.multiplex(cluster)
            var codes = try await TSHLoginTests.signUp(cluster)
            let pid = try #require(cluster.pid)
            // The one-time code is taken before the connections open: waiting for the next TOTP
            // step must not eat into their 10 s deadline.
            let code = try await codes.next()
            let before = try #require(Self.residentKiB(pid))
            let opened = ContinuousClock.now
            var connections: [RawConnection] = []
            for index in 0..<1000 {
                let connection = try RawConnection(port: cluster.webPort)
                // Half send nothing, half stop in the middle of their ClientHello.
                if index % 2 == 1 { connection.send(Array(RouterHellos.curl.prefix(200))) }
                connections.append(connection)
            }

            // Measured while all of them are open (before their deadline), then a real user logs in
            // meanwhile.
            let during = try #require(Self.residentKiB(pid))
            let login = try await TSHLoginTests.login(
                tsh, ["--proxy=127.0.0.1:\(cluster.webPort)", "--user=joe", "--insecure"], password: TSHLoginTests.password,
                code: code)
            #expect(login.status == 0, "\(login.transcript)")
            print("proxy RSS: \(before) KiB before, \(during) KiB with 1,000 half-open connections (+\((during - before) / 1000) KiB each)")
            #expect(during - before < 64 * 1000, "more than 64 KiB per half-open connection: \(before) -> \(during) KiB")

            // The ClientHello deadline (10 s) closes every one of them.
            var open = connections.count
            for connection in connections {
                let remaining = max(1, Int((opened + .seconds(30) - ContinuousClock.now) / .seconds(1)))
                if connection.readUntilClosed(timeout: remaining).isEmpty && connection.sawEOF { open -= 1 }
            }
            #expect(open == 0, "\(open) connections still open 30 s after they were made")
            for connection in connections { connection.close() }
            let after = try #require(Self.residentKiB(pid))
            print("proxy RSS after the deadline: \(after) KiB")
            #expect(try await cluster.diag("readyz").status == 200)
            // Logged, at debug level only: no flood at info.
            let lines = cluster.log.split(separator: "\n").filter { $0.contains("web port: closed a connection") }
            #expect(lines.count >= 1000, "\(lines.count) debug lines")
            #expect(lines.allSatisfy { $0.contains(" debug ") }, "\(lines.first { !$0.contains(" debug ") } ?? "")")
            await cluster.stop()
        }
    }

    @Test("a node joins with --auth-server=PROXY:WEBPORT: listed, reachable with tsh ssh, its recording uploads; a wrong pin is refused", .timeLimit(.minutes(4)))
    func nodeJoinsThroughTheWebPort() async throws {
        try await withCluster(try ClusterFixture(clusterName: "viaproxy.example")) { cluster in
            try await cluster.start()
            #expect(try await cluster.tctl(["users", "add", "joe", "root"]).exitCode == 0)
            let identity = cluster.directory.appendingPathComponent("joe.id").path
            #expect(try await cluster.tctl(["auth", "sign", "--user=joe", "--out=\(identity)"]).exitCode == 0)
            let added = try await cluster.tctl(["nodes", "add", "--ttl=10m"])
            let token = try #require(added.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") }?.split(separator: " ").last)
            let pin = try #require(added.stdout.range(of: #"sha256:[0-9a-f]{64}"#, options: .regularExpression).map { String(added.stdout[$0]) })
            let teleport = try ClusterFixture.binary("teleport")
            let nodeDir = try TestSupport.makeTemporaryDirectory(prefix: "proxynode")
            defer { try? FileManager.default.removeItem(at: nodeDir) }
            func arguments(pin: String) throws -> [String] {
                ["start"] + (try TestSupport.nodeListenConfig()) + [
                    "--roles=node", "--auth-server=127.0.0.1:\(cluster.webPort)", "--token=\(token)", "--ca-pin=\(pin)",
                    "--data-dir", nodeDir.appendingPathComponent("data").path, "--nodename", "natnode", "--listen-ip", "127.0.0.1",
                ]
            }

            // A wrong pin through the proxy: refused before the token is sent.
            let wrong = try await TestSupport.run(teleport, try arguments(pin: "sha256:" + String(repeating: "0", count: 64)), timeout: .seconds(30))
            #expect(wrong.exitCode != 0)
            #expect(wrong.stderr.contains("does not match --ca-pin; refusing to send the token"), "\(wrong)")

            let logPath = nodeDir.appendingPathComponent("node.log").path
            let node = try TestSupport.spawnDaemon(teleport, try arguments(pin: pin), logPath: logPath)
            do {
                var listed = try await cluster.tctl(["nodes", "ls"])
                for _ in 0..<100 where !listed.stdout.contains("natnode") {
                    try await Task.sleep(for: .milliseconds(100))
                    listed = try await cluster.tctl(["nodes", "ls"])
                }
                let nodeLog = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                #expect(listed.stdout.contains("natnode"), "\(listed)\n\(nodeLog)")
                let tshArguments = ["-i", identity, "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure"]
                let tsh = try ClusterFixture.binary("tsh")
                let ls = try await TestSupport.run(tsh, tshArguments + ["ls"])
                #expect(ls.stdout.contains("natnode"), "\(ls)")

                // An interactive session through the proxy; its recording uploads through the web port.
                let session = try TSHTerminal(
                    tsh, tshArguments + ["ssh", "-t", "root@natnode"],
                    environment: ProcessInfo.processInfo.environment.merging(["TERM": "xterm"]) { $1 })
                try await session.expect("# ")
                session.sendLine("echo via-$((40+2))")
                try await session.expect("via-42")
                session.sendLine("exit")
                #expect(try await session.wait() == 0)
                var recorded = false
                for _ in 0..<150 where !recorded {
                    let recordings = try await TestSupport.run(tsh, tshArguments + ["recordings", "ls", "--format=json"])
                    recorded = recordings.stdout.contains("\"natnode\"")
                    if !recorded { try await Task.sleep(for: .milliseconds(200)) }
                }
                #expect(recorded, "no recording of natnode uploaded")
                let exec = try await TestSupport.run(tsh, tshArguments + ["ssh", "root@natnode", "echo", "exit-code-test;", "exit", "3"])
                #expect(exec.exitCode == 3 && exec.stdout.contains("exit-code-test"), "\(exec)")
            } catch {
                await TestSupport.stopDaemon(node)
                throw error
            }
            await TestSupport.stopDaemon(node)
            await cluster.stop()
        }
    }

    /// The resident set of a process, KiB, from /proc.
    static func residentKiB(_ pid: pid_t) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
}

/// A blocking TCP connection to 127.0.0.1 for sending raw bytes a real client would not.
final class RawConnection {
    let fd: Int32
    private(set) var sawEOF = false

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            Glibc.close(fd)
            throw TestSupportError("connect() to port \(port) failed: errno \(code)")
        }
    }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until the peer closes or `timeout` seconds pass; ``sawEOF`` tells which.
    func readUntilClosed(timeout: Int) -> [UInt8] {
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                received += buffer.prefix(count)
            } else {
                // 0: closed; -1 with ECONNRESET: closed hard; EAGAIN: the timeout.
                sawEOF = count == 0 || errno == ECONNRESET
                return received
            }
        }
    }

    /// Reads what arrives within `timeout` seconds (one read).
    func readSome(timeout: Int) -> [UInt8] {
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 16384)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count > 0 ? Array(buffer.prefix(count)) : []
    }

    /// Closes with a reset (SO_LINGER 0) instead of a FIN.
    func abort() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    private var closed = false

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    deinit { close() }
}
