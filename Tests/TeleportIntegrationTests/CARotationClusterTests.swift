import Foundation
import Synchronization
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// CA rotation over real processes: a cluster (auth, proxy and a direct node in one `teleport`), a
/// second node behind a reverse tunnel, a logged-in user with an open session. The host CA and then
/// the user CA rotate automatically with short grace periods while a loop of `tsh ssh NODE true`
/// runs against both nodes: no attempt fails, the open session survives, agents renew their
/// identities without a restart, `tctl status` shows the new CA pin, a join with the old pin is
/// refused, and a user still holding a certificate of the old user CA is told to log in again.
@Suite("CA rotation across a running cluster", .serialized)
struct CARotationClusterTests {
    /// Counts `tsh ssh` attempts and keeps the failures' output.
    final class LoopRecord: Sendable {
        let state = Mutex<(attempts: Int, failures: [String], stop: Bool)>((0, [], false))
        var stopped: Bool { state.withLock { $0.stop } }
        func stop() { state.withLock { $0.stop = true } }
        func record(_ result: CommandResult, node: String) {
            state.withLock {
                $0.attempts += 1
                if result.exitCode != 0 { $0.failures.append("\(node) at \(Date()): \(result)") }
            }
        }
    }

    /// The runner the loop uses (switched to a fresh login during the user CA's rotation).
    final class CurrentRunner: Sendable {
        let runner: Mutex<TSHRunner>
        init(_ runner: TSHRunner) { self.runner = Mutex(runner) }
        var current: TSHRunner { runner.withLock { $0 } }
        func set(_ next: TSHRunner) { runner.withLock { $0 = next } }
    }

    static func status(_ cluster: ClusterFixture) async throws -> String {
        try await cluster.tctl(["status"]).stdout
    }

    /// The status line of the CA `name` (`Host CA`, `User CA`).
    static func line(_ status: String, _ name: String) -> String {
        status.split(separator: "\n").first { $0.hasPrefix(name) }.map(String.init) ?? ""
    }

    static func pin(_ status: String) -> String? {
        status.range(of: #"sha256:[0-9a-f]{64}"#, options: .regularExpression).map { String(status[$0]) }
    }

    /// Polls `tctl status` until the CA's line satisfies `done`.
    static func waitFor(_ cluster: ClusterFixture, _ name: String, within limit: Duration, _ done: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + limit
        var last = ""
        while ContinuousClock.now < deadline {
            let result = try await cluster.tctl(["status"])
            last = line(result.stdout, name)
            if done(last) { return last }
            // Say why when tctl could not answer (a diagnosis for a rare timeout).
            if last.isEmpty { last = "tctl status exited \(result.exitCode): \(result.stderr)" }
            try await Task.sleep(for: .milliseconds(500))
        }
        Issue.record("\(name) did not reach the expected state in \(limit): \(last)")
        throw CancellationError()
    }

    @Test(.enabled(if: SSHDFixture.available, "needs root and openssh-client"), .timeLimit(.minutes(8)))
    func hostThenUserRotationWithoutAFailedLogin() async throws {
        let tsh = try TSHRunner()
        let stale = try TSHRunner()
        let fresh = try TSHRunner()
        defer {
            tsh.cleanUp()
            stale.cleanUp()
            fresh.cleanUp()
        }
        try await withCluster(try ClusterFixture(clusterName: "rotate.example")) { cluster in
            var codes = try await TSHLoginTests.signUp(cluster)
            let proxyArguments = ["--proxy=127.0.0.1:\(cluster.webPort)", "--user=joe", "--insecure"]
            let login = try await TSHLoginTests.login(tsh, proxyArguments, password: TSHLoginTests.password, code: try await codes.next())
            try #require(login.status == 0, "\(login.transcript)")
            // A second copy of the same login that is never renewed: refused after the user CA's standby.
            _ = try await TestSupport.run("/bin/cp", ["-a", tsh.tshHome.path + "/.", stale.tshHome.path])

            let added = try await cluster.tctl(["nodes", "add", "--ttl=10m"])
            let token = try #require(added.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") }?.split(separator: " ").last)
            let oldPin = try #require(Self.pin(added.stdout))
            let node = try ReverseTunnelNodeTests.TunnelledNode(cluster: cluster, token: String(token), pin: oldPin)
            try node.start()
            let work = try TestSupport.makeTemporaryDirectory(prefix: "rotate-work")
            defer { try? FileManager.default.removeItem(at: work) }
            do {
                try await exercise(cluster, tsh: tsh, stale: stale, fresh: fresh, codes: &codes, node: node, oldPin: oldPin, work: work)
            } catch {
                func interesting(_ log: String) -> String {
                    log.split(separator: "\n").filter { !$0.contains(" debug ") }.suffix(60).joined(separator: "\n")
                }
                Issue.record("node log:\n\(interesting(node.log))\ncluster log:\n\(interesting(cluster.log))")
                await node.stop()
                throw error
            }
            await node.stop()
            await cluster.stop()
        }
    }

    func exercise(
        _ cluster: ClusterFixture, tsh: TSHRunner, stale: TSHRunner, fresh: TSHRunner, codes: inout TSHCodes,
        node: ReverseTunnelNodeTests.TunnelledNode, oldPin: String, work: URL
    ) async throws {
        #expect(try await ReverseTunnelNodeTests().reachable(tsh, within: .seconds(90)), "\(node.log.suffix(3000))")
        let before = try await Self.status(cluster)
        #expect(Self.line(before, "Host CA").contains("never updated"), "\(before)")

        // An open session on the tunnelled node that ends only when the test says so.
        let marker = work.appendingPathComponent("end-session").path
        let session = Task {
            try await tsh.run(
                ["--insecure", "ssh", "root@tunnelnode", "while [ ! -e \(marker) ]; do sleep 1; done; echo survived"], timeout: .seconds(400))
        }

        // The loop: tsh ssh to both nodes, one after the other, until told to stop.
        let record = LoopRecord()
        let runner = CurrentRunner(tsh)
        let loop = Task {
            var index = 0
            while !record.stopped {
                let name = index % 2 == 0 ? "testnode" : "tunnelnode"
                index += 1
                let result = try await runner.current.run(["--insecure", "ssh", "root@\(name)", "true"], timeout: .seconds(60))
                record.record(result, node: name)
            }
        }

        // The host CA, automatically over 30 s.
        let host = try await cluster.tctl(["auth", "rotate", "--type=host", "--grace-period=30s"])
        #expect(host.exitCode == 0, "\(host)")
        #expect(host.stdout.contains("Updated rotation phase of the host CA to \"init\""), "\(host)")
        let during = Self.line(try await Self.status(cluster), "Host CA")
        #expect(during.contains("rotation in progress") && during.contains("mode auto") && during.contains("grace period ends"), "\(during)")
        _ = try await Self.waitFor(cluster, "Host CA", within: .seconds(120)) { $0.contains("last rotated") && !$0.contains("in progress") }
        // Both agents renewed their identities (no restart).
        let renewed = try await waitForLog(node.log, "renewed this host's identity", node: node)
        #expect(renewed, "the tunnelled node did not renew:\n\(node.log.suffix(3000))")
        #expect(cluster.log.contains("renewed this host's identity"), "the cluster's own agents did not renew")

        // The user CA, automatically over 60 s; the user logs in again once new certificates come
        // from the new keys (update_clients) and the loop goes on with that login.
        let user = try await cluster.tctl(["auth", "rotate", "--type=user", "--grace-period=60s"])
        #expect(user.exitCode == 0, "\(user)")
        _ = try await Self.waitFor(cluster, "User CA", within: .seconds(60)) { $0.contains("update_clients") }
        let relogin = try await TSHLoginTests.login(
            fresh, ["--proxy=127.0.0.1:\(cluster.webPort)", "--user=joe", "--insecure"], password: TSHLoginTests.password,
            code: try await codes.next())
        try #require(relogin.status == 0, "\(relogin.transcript)")
        runner.set(fresh)
        // Until standby the old certificate still works.
        let oldStillWorks = try await stale.run(["--insecure", "ssh", "root@testnode", "true"])
        let phaseNow = Self.line(try await Self.status(cluster), "User CA")
        if phaseNow.contains("in progress") { #expect(oldStillWorks.exitCode == 0, "\(phaseNow)\n\(oldStillWorks)") }
        _ = try await Self.waitFor(cluster, "User CA", within: .seconds(120)) { $0.contains("last rotated") && !$0.contains("in progress") }
        // A few more rounds after both rotations.
        try await Task.sleep(for: .seconds(5))
        record.stop()
        _ = try await loop.value

        let (attempts, failures, _) = record.state.withLock { $0 }
        #expect(attempts >= 20, "only \(attempts) attempts")
        #expect(failures.isEmpty, "\(failures.count) of \(attempts) failed:\n\(failures.prefix(5).joined(separator: "\n"))")

        // The open session survived both rotations.
        FileManager.default.createFile(atPath: marker, contents: nil)
        let ended = try await session.value
        #expect(ended.exitCode == 0 && ended.stdout.contains("survived"), "\(ended)")

        // The old user certificate is refused with words that say what to do.
        let refused = try await stale.run(["--insecure", "ssh", "root@testnode", "true"])
        #expect(refused.exitCode != 0)
        #expect(refused.stderr.contains("tsh login"), "\(refused)")

        // tctl status: the new pin; a join with the old one is refused.
        let after = try await Self.status(cluster)
        let newPin = try #require(Self.pin(after))
        #expect(newPin != oldPin, "\(after)")
        let nodesAdd = try await cluster.tctl(["nodes", "add", "--ttl=10m"])
        #expect(Self.pin(nodesAdd.stdout) == newPin, "\(nodesAdd)")
        let token = try #require(nodesAdd.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") }?.split(separator: " ").last)
        let late = try ReverseTunnelNodeTests.TunnelledNode(cluster: cluster, token: String(token), pin: oldPin)
        try late.start()
        let lateExited = try await waitForExit(late)
        #expect(lateExited, "a node joining with the old pin kept running:\n\(late.log.suffix(2000))")
        #expect(late.log.lowercased().contains("pin"), "\(late.log.suffix(2000))")
        await late.stop()
    }

    /// A node down from before `init` comes back during `update_clients`, learns the new CA and
    /// renews (no restart after that), and stays reachable through `standby`. Down past a whole
    /// second rotation, it is told to join again.
    @Test(.enabled(if: SSHDFixture.available, "needs root and openssh-client"), .timeLimit(.minutes(6)))
    func nodeDownDuringRotationRenewsOnReturn() async throws {
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        try await withCluster(try ClusterFixture(clusterName: "rotate-down.example")) { cluster in
            var codes = try await TSHLoginTests.signUp(cluster)
            let login = try await TSHLoginTests.login(
                tsh, ["--proxy=127.0.0.1:\(cluster.webPort)", "--user=joe", "--insecure"], password: TSHLoginTests.password,
                code: try await codes.next())
            try #require(login.status == 0, "\(login.transcript)")
            let added = try await cluster.tctl(["nodes", "add", "--ttl=10m"])
            let token = try #require(added.stdout.split(separator: "\n").first { $0.hasPrefix("The invite token: ") }?.split(separator: " ").last)
            let node = try ReverseTunnelNodeTests.TunnelledNode(cluster: cluster, token: String(token), pin: try #require(Self.pin(added.stdout)))
            try node.start()
            func halt() async {
                if let pid = node.pid { await TestSupport.stopDaemon(pid) }
                node.pid = nil
            }
            func phase(_ name: String) async throws {
                let moved = try await cluster.tctl(["auth", "rotate", "--manual", "--type=host", "--phase=\(name)"])
                #expect(moved.exitCode == 0, "\(moved)")
            }
            do {
                let probe = ReverseTunnelNodeTests()
                #expect(try await probe.reachable(tsh, within: .seconds(90)), "\(node.log.suffix(3000))")
                await halt()
                try await phase("init")
                try await phase("update_clients")
                // The cluster's own proxy renews first (its tunnel server presents the new CA's certificate).
                let deadline = ContinuousClock.now + .seconds(30)
                while !cluster.log.contains("renewed this host's identity"), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(300)) }
                try node.start()
                #expect(try await waitForLog(node.log, "renewed this host's identity", node: node), "\(node.log.suffix(3000))")
                #expect(try await probe.reachable(tsh, within: .seconds(60)), "\(node.log.suffix(3000))")
                try await phase("update_servers")
                try await phase("standby")
                #expect(try await probe.reachable(tsh, within: .seconds(60)), "after standby\n\(node.log.suffix(3000))")

                // Down through init and update_clients, back in update_servers: the auth service and
                // the proxy present certificates of a CA its ca.crt lacks; the old CA's
                // cross-signature (GET /v1/join/ca) vouches for the new one, and the node renews.
                await halt()
                try await phase("init")
                try await phase("update_clients")
                try await Task.sleep(for: .seconds(5))
                try await phase("update_servers")
                try await Task.sleep(for: .seconds(3))
                try node.start()
                #expect(try await waitForLog(node.log, "cross-signed by the CA this host trusted", node: node), "\(node.log.suffix(3000))")
                #expect(try await probe.reachable(tsh, within: .seconds(60)), "back in update_servers\n\(node.log.suffix(3000))")
                try await phase("standby")
                #expect(try await probe.reachable(tsh, within: .seconds(60)), "after the second standby\n\(node.log.suffix(3000))")

                // Down past a whole rotation: the node cannot renew and says to join again.
                await halt()
                for name in ["init", "update_clients", "update_servers", "standby"] { try await phase(name) }
                try node.start()
                #expect(try await waitForLog(node.log, "join again with a new token", node: node), "\(node.log.suffix(3000))")
            } catch {
                await node.stop()
                throw error
            }
            await node.stop()
            await cluster.stop()
        }
    }

    /// `tctl auth rotate` with bad input: one line naming the cause and the fix, a non-zero exit, and
    /// nothing changed; then a manual rotation rolled back from update_servers through tctl.
    @Test(.timeLimit(.minutes(3)))
    func tctlBadInputAndManualRollback() async throws {
        try await withCluster(try ClusterFixture(clusterName: "rotate-input.example")) { cluster in
            try await cluster.start()
            let cases: [([String], String)] = [
                (["--grace-period=soon"], "--grace-period=soon is not a positive duration"),
                (["--grace-period=0s"], "--grace-period=0s is not a positive duration"),
                (["--type=ssh"], "--type=ssh is not a CA type"),
                (["--manual", "--type=host"], "--manual needs --phase="),
                (["--manual", "--phase=init"], "--manual needs --type="),
                (["--phase=init"], "--phase needs --manual"),
                (["--manual", "--type=host", "--phase=update_servers"], "cannot move the rotation from standby to update_servers"),
                (["--manual", "--type=host", "--phase=later"], "--manual needs --phase=init|update_clients|update_servers|standby|rollback"),
            ]
            for (arguments, message) in cases {
                let result = try await cluster.tctl(["auth", "rotate"] + arguments)
                #expect(result.exitCode != 0, "\(arguments)")
                #expect(result.stderr.contains(message), "\(arguments): \(result)")
                #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
            }
            #expect(!(try await Self.status(cluster)).contains("in progress"))
            let pin = Self.pin(try await Self.status(cluster))
            for phase in ["init", "update_clients", "update_servers"] {
                try await Task.sleep(for: .seconds(3))
                let moved = try await cluster.tctl(["auth", "rotate", "--manual", "--type=host", "--phase=\(phase)"])
                #expect(moved.exitCode == 0, "\(moved)")
                // What OpenSSH hosts and clients need: re-export in init, re-sign in update_servers.
                if phase == "init" {
                    #expect(moved.stdout.contains("re-export the host CA for known_hosts (tctl auth export --type=host"), "\(moved)")
                }
                if phase == "update_servers" { #expect(moved.stdout.contains("tctl auth sign --host="), "\(moved)") }
            }
            try await Task.sleep(for: .seconds(3))
            let during = try await Self.status(cluster)
            #expect(Self.line(during, "Host CA").contains("phase update_servers, mode manual"), "\(during)")
            #expect(Self.pin(during) != pin, "the pin follows the signing keys")
            for phase in ["rollback", "standby"] {
                // Each phase needs a moment for the cluster's agents (and tctl's own identity on this
                // host), which look every 2 s; an administrator moves phases minutes apart.
                try await Task.sleep(for: .seconds(3))
                let moved = try await cluster.tctl(["auth", "rotate", "--manual", "--type=host", "--phase=\(phase)"])
                #expect(moved.exitCode == 0, "\(moved)")
            }
            try await Task.sleep(for: .seconds(3))
            // tctl keeps working (its identity renewed back), the old pin is back, no rotation recorded.
            let after = try await Self.status(cluster)
            #expect(Self.pin(after) == pin, "\(after)")
            #expect(Self.line(after, "Host CA").contains("never updated"), "\(after)")
            let events = try await cluster.tctl(["events", "ls", "--format=json"])
            #expect(events.stdout.components(separatedBy: "cert.rotation").count - 1 >= 5, "\(events)")
        }
    }

    func waitForLog(_: String, _ text: String, node: ReverseTunnelNodeTests.TunnelledNode) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if node.log.contains(text) { return true }
            try await Task.sleep(for: .milliseconds(300))
        }
        return false
    }

    func waitForExit(_ node: ReverseTunnelNodeTests.TunnelledNode) async throws -> Bool {
        guard let pid = node.pid else { return true }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                node.pid = nil
                return true
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }
}
