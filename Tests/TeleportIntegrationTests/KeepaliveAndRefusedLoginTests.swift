import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 13 item 5 (a client whose host vanishes is noticed by TCP keepalive in about two minutes,
/// not the kernel's two hours) and issue 12 item 4 (a real unauthenticated SSH login attempt with a
/// hostile user name is audited and printed escaped), on a real cluster.
@Suite("TCP keepalive of SSH connections; refused logins with hostile names", .serialized)
struct KeepaliveAndRefusedLoginTests {
    /// The seconds of an `ss` timer value: `59sec`, `1min`, `1min59sec`, `119min59sec`, `450ms`.
    static func seconds(_ text: Substring) -> Double? {
        var total = 0.0
        var number = ""
        var unit = ""
        var parsedAny = false
        func flush() -> Bool {
            guard let value = Double(number) else { return number.isEmpty && unit.isEmpty }
            switch unit {
            case "min": total += value * 60
            case "sec": total += value
            case "ms": total += value / 1000
            default: return false
            }
            parsedAny = true
            number = ""
            unit = ""
            return true
        }
        for character in text {
            if character.isNumber || character == "." {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(character)
            } else {
                unit.append(character)
            }
        }
        guard flush(), parsedAny else { return nil }
        return total
    }

    /// One established TCP socket as `ss -tnoH state established` shows it.
    struct Socket {
        let localPort: UInt16
        let peerPort: UInt16
        /// The time left on the keepalive timer, or nil when the socket has no keepalive timer.
        let keepalive: Double?
        let line: String
    }

    static func sockets() async throws -> [Socket] {
        let listed = try await TestSupport.run("/usr/bin/ss", ["-tnoH", "state", "established"])
        try #require(listed.exitCode == 0, "\(listed)")
        func port(_ address: Substring) -> UInt16? {
            guard let colon = address.lastIndex(of: ":") else { return nil }
            return UInt16(address[address.index(after: colon)...])
        }
        return listed.stdout.split(separator: "\n").compactMap { line in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 4, let local = port(fields[2]), let peer = port(fields[3]) else { return nil }
            var keepalive: Double?
            if let timer = fields.first(where: { $0.hasPrefix("timer:(keepalive,") }) {
                let parts = timer.dropFirst("timer:(".count).split(separator: ",")
                if parts.count >= 2 { keepalive = seconds(parts[1]) }
            }
            return Socket(localPort: local, peerPort: peer, keepalive: keepalive, line: String(line))
        }
    }

    @Test("ss parses the timers the kernel prints")
    func timerParsing() {
        #expect(Self.seconds("59sec") == 59)
        #expect(Self.seconds("1min") == 60)
        #expect(Self.seconds("119min59sec") == 7199)
        #expect(Self.seconds("450ms") == 0.45)
        #expect(Self.seconds("soon") == nil)
    }

    @Test(
        "the proxy's and the node's accepted SSH connections and the proxy's pipe to the node use keepalive with a 60 s idle time",
        .timeLimit(.minutes(4)))
    func sessionConnectionsUseKeepalive() async throws {
        try await SessionLifetimeTests.withSetup { setup in
            let cluster = setup.cluster
            let daemon = try #require(cluster.pid)
            let logDir = try TestSupport.makeTemporaryDirectory(prefix: "keepalive")
            defer { try? FileManager.default.removeItem(at: logDir) }
            let tsh = try setup.tshArguments
            let client = try TestSupport.spawnDaemon(
                tsh[0], Array(tsh.dropFirst()) + ["ssh", "-t", "root@testnode", "sleep 600"],
                logPath: logDir.appendingPathComponent("tsh.log").path)
            defer {
                kill(client, SIGKILL)
                var status: Int32 = 0
                waitpid(client, &status, 0)
            }
            let started = await SessionLifetimeTests.eventually(.seconds(60)) { !SessionLifetimeTests.children(of: daemon, named: "sleep").isEmpty }
            try #require(started, "the session did not start: \((try? TestSupport.read(logDir.appendingPathComponent("tsh.log"))) ?? "")")

            // Three server-side sockets: the proxy's accepted connection from tsh (local port
            // proxyPort), the proxy's dialed pipe to the node (peer port sshPort) and the node's
            // accepted connection from the proxy (local port sshPort). Each must show a keepalive
            // timer of at most 60 s (the kernel's default would show about 120 min, no
            // SO_KEEPALIVE shows no timer). A timer can briefly be a retransmit one: look again.
            var last: [Socket] = []
            let ok = await SessionLifetimeTests.eventually(.seconds(30)) {
                guard let all = try? await Self.sockets() else { return false }
                last = all.filter { $0.localPort == cluster.proxyPort || $0.localPort == cluster.sshPort || $0.peerPort == cluster.sshPort }
                let proxyAccepted = last.filter { $0.localPort == cluster.proxyPort }
                let nodeAccepted = last.filter { $0.localPort == cluster.sshPort }
                let proxyDialed = last.filter { $0.peerPort == cluster.sshPort }
                return [proxyAccepted, nodeAccepted, proxyDialed].allSatisfy { group in
                    !group.isEmpty && group.allSatisfy { ($0.keepalive ?? .infinity) <= 60 && ($0.keepalive ?? 0) > 0 }
                }
            }
            #expect(ok, "sockets without the short keepalive timer:\n\(last.map(\.line).joined(separator: "\n"))")
        }
    }

    @Test(
        "a real unauthenticated login with the hostile user name, on the node's and the proxy's SSH ports, is audited and printed escaped",
        .timeLimit(.minutes(4)))
    func refusedHostileLoginIsAuditedEscaped() async throws {
        let found = try await TestSupport.run("/usr/bin/env", ["python3", "-c", "import paramiko"])
        try #require(found.exitCode == 0, "the Python module paramiko is missing: run scripts/install-test-deps.sh\n\(found)")
        try await withCluster(try ClusterFixture(clusterName: "refused.example")) { cluster in
            try await cluster.start()
            #expect(await TestSupport.waitForPort(cluster.proxyPort))
            #expect(await TestSupport.waitForPort(cluster.sshPort))
            let script = ThirdPartyClientTests.fixtures.appendingPathComponent("paramiko_unknown_key.py").path
            for port in [cluster.sshPort, cluster.proxyPort] {
                let attempt = try await TestSupport.run(
                    "/usr/bin/env", ["python3", script, "127.0.0.1", "\(port)", EscapeInjectionTests.hostile], timeout: .seconds(60))
                #expect(attempt.exitCode == 0 && attempt.stdout.contains("refused"), "port \(port): \(attempt)")
            }
            // Both attempts reach the log: T3007W with the exact user name and the reason.
            var failures: [[String: JSONValue]] = []
            let audited = await SessionLifetimeTests.eventually(.seconds(30)) {
                let events = (try? await AuditEventsTests.events(cluster, ["--type=auth"])) ?? []
                failures = events.filter { $0["code"] == "T3007W" && $0["user"] == .string(EscapeInjectionTests.hostile) }
                let ports = Set(failures.compactMap { event -> String? in
                    guard case .string(let local) = event["addr.local"] else { return nil }
                    return local.split(separator: ":").last.map(String.init)
                })
                return ports.isSuperset(of: ["\(cluster.sshPort)", "\(cluster.proxyPort)"])
            }
            #expect(audited, "no auth failure with the hostile user on both ports: \(failures)")
            #expect(failures.allSatisfy { event in
                if case .string(let reason) = event["error"] { return !reason.isEmpty }
                return false
            }, "each failure names its reason: \(failures)")

            let text = try await cluster.tctl(["events", "ls", "--type=auth"])
            #expect(text.exitCode == 0, "\(text)")
            #expect(text.stdout.contains("\\x1b]0;OWNED\\x07\\x1b[2J\\x1b[31mFAKE"), "\(text.stdout.debugDescription)")
            #expect(EscapeInjectionTests.controlBytes(text.stdout).isEmpty, "tctl events ls: \(text.stdout.debugDescription)")
            await cluster.stop()
        }
    }
}
