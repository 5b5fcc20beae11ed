import Foundation
import TeleportTestSupport
import Testing

/// Hostile HTTP through application access, sent byte for byte (`Fixtures/raw_tls.py`) to the
/// proxy's web port with the app certificate (bytes relayed to the application service, whose
/// NIO decoder parses them) and without one (the proxy's own decoder on the browser path):
/// duplicated `Content-Length` and obsolete line folding are refused with 400 and nothing behind
/// them reaches the app; 10 MB of headers end in a 4xx or a closed connection and the service
/// still answers the next request; an upload that declares 5 GB and is cut after 300 MB leaves
/// the proxy's and the service's memory bounded (resident set grows by less than 150 MB); an app
/// that accepts but never answers gets a 504 page naming it after the service's 60 s.
@Suite("application access: hostile requests", .serialized)
struct AppAttackTests {
    @Test(.timeLimit(.minutes(5)))
    func hostileRequests() async throws {
        let cluster = try ClusterFixture(
            clusterName: "apps.example", authSection: "  tokens: [\"app:\(AppAccessTests.token)\"]", proxySection: "  public_addr: localhost")
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            let app = try await AppAccessTests.EchoApp.start()
            // An app that accepts connections and reads requests but never answers.
            let stuckPort = try TestSupport.freeLoopbackPort()
            let stuckLog = cluster.directory.appendingPathComponent("stuck.log")
            let stuck = try TestSupport.spawnDaemon(
                "/usr/bin/python3",
                ["-c", "import socket, sys, threading, time\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                    + "s.bind(('127.0.0.1', int(sys.argv[1])))\ns.listen(16)\nkept = []\nwhile True:\n    c, _ = s.accept()\n    kept.append(c)\n",
                 "\(stuckPort)"], logPath: stuckLog.path)
            let extra = """
                  - name: stuck
                    uri: http://127.0.0.1:\(stuckPort)
                    labels:
                      env: dev

                """
            let agent: AppAccessTests.AppAgent
            do {
                agent = try AppAccessTests.AppAgent.start(cluster: cluster, appPort: app.port, extraApps: extra)
            } catch {
                await TestSupport.stopDaemon(stuck)
                await app.stop()
                throw error
            }
            do {
                try await exercise(cluster, agent: agent)
            } catch {
                Issue.record("app agent log:\n\(agent.log.suffix(4000))")
                await agent.stop()
                await TestSupport.stopDaemon(stuck)
                await app.stop()
                throw error
            }
            await agent.stop()
            await TestSupport.stopDaemon(stuck)
            await app.stop()
        }
    }

    /// Resident memory of a process, in MB.
    static func residentMB(_ pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }

    func exercise(_ cluster: ClusterFixture, agent: AppAccessTests.AppAgent) async throws {
        let dir = try TestSupport.makeTemporaryDirectory(prefix: "apps-attack")
        defer { try? FileManager.default.removeItem(at: dir) }
        let rolesFile = dir.appendingPathComponent("roles.yaml")
        try TestSupport.write(AppAccessTests.role(allowed: true), to: rolesFile)
        let created = try await cluster.tctl(["create", rolesFile.path])
        try #require(created.exitCode == 0, "\(created)")
        let added = try await cluster.tctl(["users", "add", "bob", "--roles=apps-dev"])
        try #require(added.exitCode == 0, "\(added)")
        let enrolled = try await SignupHelper.enrol(
            WebDriver(cluster: cluster), try SignupHelper.link(in: added.stdout, kind: "newuser"), password: TSHLoginTests.password)
        var codes = TSHCodes(secret: enrolled.secret, usedAt: enrolled.time)
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        let login = try await TSHLoginTests.login(
            tsh, ["--proxy=localhost:\(cluster.webPort)", "--user=bob", "--insecure"], user: "bob", password: TSHLoginTests.password,
            code: try await codes.next())
        try #require(login.status == 0, "\(login.transcript)")
        var listed = try await tsh.run(["apps", "ls"])
        for _ in 0..<60 where !listed.stdout.contains("echo ") {
            try await Task.sleep(for: .milliseconds(500))
            listed = try await tsh.run(["apps", "ls"])
        }
        try #require(listed.stdout.contains("echo "), "\(listed)")
        let appLogin = try await tsh.run(["apps", "login", "echo"])
        try #require(appLogin.exitCode == 0, "\(appLogin)")
        let keys = tsh.tshHome.appendingPathComponent("keys/localhost")
        let withCertificate = [
            "--cert", keys.appendingPathComponent("bob-app/echo-x509.pem").path, "--key", keys.appendingPathComponent("bob.tls.key").path,
        ]
        func raw(_ mode: String, certificate: Bool = true, extra: [String] = []) async throws -> CommandResult {
            try await TestSupport.run(
                "/usr/bin/env",
                ["python3", AppAccessTests.fixtures.appendingPathComponent("raw_tls.py").path, mode, "--port", "\(cluster.webPort)",
                 "--server-name", "echo.localhost"] + (certificate ? withCertificate : []) + extra, timeout: .seconds(120))
        }
        let base = "https://echo.localhost:\(cluster.webPort)"
        let curl = "curl -sk \(withCertificate.joined(separator: " ")) -w '\\n%{http_code}'"

        // Duplicated Content-Length: 400 from the service (certificate) and from the proxy (browser path).
        for certificate in [true, false] {
            let duplicated = try await raw("dup-cl", certificate: certificate)
            #expect(duplicated.stdout.hasPrefix("HTTP/1.1 400") && !duplicated.stdout.contains("smuggled"), "certificate \(certificate): \(duplicated)")
            // Obsolete line folding: refused the same way.
            let folded = try await raw("obs-fold", certificate: certificate)
            #expect(folded.stdout.hasPrefix("HTTP/1.1 400") && !folded.stdout.contains("/folded"), "certificate \(certificate): \(folded)")
        }

        // 10 MB of headers: refused (4xx) or cut off, never passed on; the next request works.
        for certificate in [true, false] {
            let huge = try await raw("huge-headers", certificate: certificate)
            let status = huge.stdout.hasPrefix("HTTP/1.1 ") ? Int(huge.stdout.dropFirst(9).prefix(3)) ?? 0 : 0
            #expect(status == 0 || (400..<500).contains(status), "certificate \(certificate): \(huge.stdout.prefix(300))")
            #expect(!huge.stdout.contains("\"path\": \"/huge\""), "the app saw the huge request")
        }
        let after = try await AppAccessTests.shell("\(curl) \(base)/after")
        #expect(after.stdout.hasSuffix("200") && after.stdout.contains("\"path\": \"/after\""), "\(after)")

        // An upload that declares 5 GB and stops after 300 MB: memory stays bounded.
        guard let proxyPID = cluster.pid else {
            Issue.record("no cluster PID")
            return
        }
        let before = (proxy: Self.residentMB(proxyPID), agent: Self.residentMB(agent.pid))
        let upload = try await raw("abort-upload", extra: ["--megabytes", "300"])
        #expect(upload.stdout.contains("sent 300 MB"), "\(upload)\nproxy log:\n\(cluster.log.suffix(3000))\nagent log:\n\(agent.log.suffix(3000))")
        let peak = (proxy: Self.residentMB(proxyPID), agent: Self.residentMB(agent.pid))
        #expect(peak.proxy - before.proxy < 150 && peak.agent - before.agent < 150, "resident MB before \(before), after \(peak)")
        print("AppAttackTests: resident MB before \(before), after a 300 MB upload \(peak); \(upload.stdout)")
        let stillServing = try await AppAccessTests.shell("\(curl) \(base)/still")
        #expect(stillServing.stdout.hasSuffix("200"), "\(stillServing)")

        // An app that never answers: after the service's 60 s, a 504 naming the app and the wait.
        let stuckLogin = try await tsh.run(["apps", "login", "stuck"])
        try #require(stuckLogin.exitCode == 0, "\(stuckLogin)")
        let stuckCurl = "curl -sk --cert \(keys.appendingPathComponent("bob-app/stuck-x509.pem").path) --key \(keys.appendingPathComponent("bob.tls.key").path) -w '\\n%{http_code}'"
        let started = ContinuousClock.now
        let waited = try await TestSupport.run("/bin/sh", ["-c", "\(stuckCurl) -m 120 https://stuck.localhost:\(cluster.webPort)/"], timeout: .seconds(150))
        #expect(waited.stdout.hasSuffix("504") && waited.stdout.contains("app stuck at http://127.0.0.1:") && waited.stdout.contains("did not answer within"), "\(waited)")
        #expect(ContinuousClock.now - started >= .seconds(55), "the 504 came before the service's 60 s")
    }
}
