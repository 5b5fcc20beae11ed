import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// Roles on a running cluster: two users whose roles reach different nodes (by label), `tsh ls`
/// narrowed to what each may reach, denials audited with the role engine's reasons, `tctl access
/// explain` printing the same reasons, a role change taking effect without new certificates, and
/// the auth API limited by each user's `rules`.
@Suite("roles end to end", .serialized)
struct RBACTests {
    static let roles = """
        kind: role
        version: v7
        metadata:
          name: test-root
        spec:
          options:
            port_forwarding: false
          allow:
            logins: [root]
            node_labels:
              env: test
        ---
        kind: role
        version: v7
        metadata:
          name: prod-root
        spec:
          allow:
            logins: ['{{internal.logins}}']
            node_labels:
              env: '^pro.*$'
              role: [web, db]

        """

    @Test("two users, two roles: ssh, tsh ls, audit reasons, access explain, live role changes, API rules", .timeLimit(.minutes(5)))
    func twoUsers() async throws {
        try await SSHAccessTests.withSetup { setup in
            let cluster = setup.cluster
            let work = try TestSupport.makeTemporaryDirectory(prefix: "rbac")
            defer { try? FileManager.default.removeItem(at: work) }
            let rolesFile = work.appendingPathComponent("roles.yaml")
            try TestSupport.write(Self.roles, to: rolesFile)
            let created = try await cluster.tctl(["create", rolesFile.path])
            try #require(created.exitCode == 0, "\(created)")

            func identity(_ name: String, logins: String, roles: String) async throws -> String {
                let added = try await cluster.tctl(["users", "add", name, logins, "--roles=\(roles)"])
                #expect(added.exitCode == 0, "\(added)")
                let path = work.appendingPathComponent("\(name).id").path
                let signed = try await cluster.tctl(["auth", "sign", "--user=\(name)", "--out=\(path)"])
                #expect(signed.exitCode == 0, "\(signed)")
                return path
            }
            let alice = try await identity("alice", logins: "alice", roles: "test-root")
            let bob = try await identity("bob", logins: "root", roles: "prod-root")
            let tshBinary = try ClusterFixture.binary("tsh")
            func tsh(_ identity: String, _ arguments: [String]) async throws -> CommandResult {
                try await TestSupport.run(
                    tshBinary, ["-i", identity, "--proxy=127.0.0.1:\(cluster.webPort)", "--insecure"] + arguments, timeout: .seconds(60))
            }

            // alice reaches env=test (testnode, db1) as root; bob reaches env=prod (web1).
            let aliceTest = try await tsh(alice, ["ssh", "root@db1", "echo alice-on-db1"])
            #expect(aliceTest.exitCode == 0 && aliceTest.stdout == "alice-on-db1\n", "\(aliceTest)")
            let aliceProd = try await tsh(alice, ["ssh", "root@web1", "echo should-not-run"])
            #expect(aliceProd.exitCode != 0 && !aliceProd.stdout.contains("should-not-run"), "\(aliceProd)")
            #expect(aliceProd.stderr.contains("access denied to alice connecting to root@web1"), "\(aliceProd)")
            let bobProd = try await tsh(bob, ["ssh", "root@web1", "echo bob-on-web1"])
            #expect(bobProd.exitCode == 0 && bobProd.stdout == "bob-on-web1\n", "\(bobProd)")
            let bobTest = try await tsh(bob, ["ssh", "root@db1", "echo should-not-run"])
            #expect(bobTest.exitCode != 0 && bobTest.stderr.contains("access denied to bob"), "\(bobTest)")
            // test-root turns port forwarding off: OpenSSH's -W to db1 as alice is refused (and audited below).
            let aliceKey = work.appendingPathComponent("alice").path
            #expect(try await cluster.tctl(["auth", "sign", "--user=alice", "--format=openssh", "--out=\(aliceKey)"]).exitCode == 0)
            let forward = try await TestSupport.run(
                TestSupport.ssh,
                [
                    "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    "-o", "IdentitiesOnly=yes", "-i", aliceKey, "-o", "CertificateFile=\(aliceKey)-cert.pub", "-p", "\(setup.nodePort)",
                    "-l", "root", "-W", "127.0.0.1:\(cluster.authPort)", "127.0.0.1",
                ])
            #expect(forward.exitCode == 255 && !forward.stdout.hasPrefix("SSH-2.0"), "\(forward)")
            let control = try await TestSupport.run(
                TestSupport.ssh,
                [
                    "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    "-o", "IdentitiesOnly=yes", "-i", aliceKey, "-o", "CertificateFile=\(aliceKey)-cert.pub", "-p", "\(setup.nodePort)",
                    "-l", "root", "127.0.0.1", "echo alice-by-openssh",
                ])
            #expect(control.stdout == "alice-by-openssh\n", "the same key runs commands: \(control)")

            let aliceList = try await tsh(alice, ["ls", "--format", "names"])
            #expect(Set(aliceList.stdout.split(separator: "\n").map(String.init)) == ["db1", "testnode"], "\(aliceList)")
            let bobList = try await tsh(bob, ["ls", "--format", "names"])
            #expect(bobList.stdout.split(separator: "\n").map(String.init) == ["web1"], "\(bobList)")

            // The denial is in the audit log with the role engine's reasons; explain prints them.
            func text(_ event: [String: JSONValue], _ key: String) -> String { event[key]?.stringValue ?? "" }
            var rejection: [String: JSONValue]?
            for _ in 0..<100 where rejection == nil {
                rejection = try await AuditEventsTests.events(cluster, ["--type=session.rejected"]).first {
                    text($0, "user") == "alice" && text($0, "server_hostname") == "web1"
                }
                if rejection == nil { try await Task.sleep(for: .milliseconds(200)) }
            }
            let event = try #require(rejection, "alice's denial on web1 is audited")
            guard case .array(let reasonValues)? = event["reasons"] else {
                Issue.record("no reasons in \(event)")
                return
            }
            let reasons = reasonValues.compactMap(\.stringValue)
            #expect(reasons.contains { $0.contains("role test-root: allow: label env=prod is not one of [\"test\"]") }, "\(reasons)")
            var portEvents: [[String: JSONValue]] = []
            for _ in 0..<100 where portEvents.isEmpty {
                portEvents = try await AuditEventsTests.events(cluster, ["--type=port"]).filter {
                    text($0, "user") == "alice" && text($0, "code") == "T3003E" && text($0, "error").contains("port_forwarding: false")
                }
                if portEvents.isEmpty { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(!portEvents.isEmpty, "alice's refused forward is audited with the role's reason")
            let explained = try await cluster.tctl(["access", "explain", "--user=alice", "--node=web1", "--login=root"])
            #expect(explained.exitCode == 0, "\(explained)")
            for reason in reasons { #expect(explained.stdout.contains(reason), "\(explained.stdout) lacks \(reason)") }
            #expect(explained.stdout.hasSuffix("Verdict: DENIED\n"), "\(explained)")
            let allowed = try await cluster.tctl(["access", "explain", "--user=bob", "--node=web1", "--login=root"])
            #expect(allowed.stdout.contains("logins [\"{{internal.logins}}\"] expand to [\"root\"]"), "\(allowed)")
            #expect(allowed.stdout.contains("role prod-root: allow: node_labels env=[\"^pro.*$\"], role=[\"web\", \"db\"] match"), "\(allowed)")
            #expect(allowed.stdout.hasSuffix("Verdict: ALLOWED\n"), "\(allowed)")

            // A role change applies to the next session, with the same certificate.
            let narrowed = Self.roles.replacingOccurrences(of: "env: test", with: "env: staging")
            try TestSupport.write(narrowed, to: rolesFile)
            #expect(try await cluster.tctl(["create", "-f", rolesFile.path]).exitCode == 0)
            var after = try await tsh(alice, ["ssh", "root@db1", "echo still-allowed"])
            for _ in 0..<50 where after.exitCode == 0 {
                try await Task.sleep(for: .milliseconds(200))
                after = try await tsh(alice, ["ssh", "root@db1", "echo still-allowed"])
            }
            #expect(after.exitCode != 0 && after.stderr.contains("access denied to alice"), "\(after)")

            // The auth API follows each user's rules: access has none, editor manages users, auditor reads events.
            let editor = try await identity("erin", logins: "erin", roles: "editor")
            let auditor = try await identity("audrey", logins: "audrey", roles: "auditor")
            let tctlBinary = try ClusterFixture.binary("tctl")
            func remoteTCTL(_ identity: String, _ arguments: [String]) async throws -> CommandResult {
                try await TestSupport.run(tctlBinary, ["--auth-server=127.0.0.1:\(cluster.authPort)", "-i", identity] + arguments)
            }
            let aliceUsers = try await remoteTCTL(alice, ["get", "users"])
            #expect(aliceUsers.exitCode != 0 && aliceUsers.stderr.contains("alice may not list user"), "\(aliceUsers)")
            let erinUsers = try await remoteTCTL(editor, ["get", "users"])
            #expect(erinUsers.exitCode == 0 && erinUsers.stdout.contains("name: alice"), "\(erinUsers)")
            let erinEvents = try await remoteTCTL(editor, ["events", "ls"])
            #expect(erinEvents.exitCode != 0 && erinEvents.stderr.contains("may not list event"), "\(erinEvents)")
            let audreyEvents = try await remoteTCTL(auditor, ["events", "ls", "--type=session.rejected"])
            #expect(audreyEvents.exitCode == 0 && audreyEvents.stdout.contains("session.rejected"), "\(audreyEvents)")
            let audreyCreate = try await remoteTCTL(auditor, ["create", "-f", rolesFile.path])
            #expect(audreyCreate.exitCode != 0 && audreyCreate.stderr.contains("may not create role"), "\(audreyCreate)")

            // client_idle_timeout: a command that reads no input and prints nothing is closed.
            let idleRole = work.appendingPathComponent("idle.yaml")
            try TestSupport.write(
                """
                kind: role
                version: v7
                metadata:
                  name: idle-12s
                spec:
                  options:
                    client_idle_timeout: 12s
                  allow:
                    logins: [root]
                    node_labels: {'*': '*'}

                """, to: idleRole)
            #expect(try await cluster.tctl(["create", idleRole.path]).exitCode == 0)
            let ivy = try await identity("ivy", logins: "root", roles: "idle-12s")
            let started = ContinuousClock.now
            // 12 s leaves room for a slow session start on a loaded machine; the cut must still come
            // long before the command's own end.
            let idle = try await tsh(ivy, ["ssh", "root@db1", "echo started; sleep 60; echo survived"])
            #expect(idle.stdout == "started\n" && idle.stderr.contains("idle too long"), "\(idle)")
            // The node's exit-signal carries the reason: shown once, no "closed without an exit status".
            #expect(idle.stderr.components(separatedBy: "idle too long").count == 2 && !idle.stderr.contains("without an exit status"), "\(idle)")
            #expect(idle.exitCode == 129, "\(idle)")
            #expect(ContinuousClock.now - started < .seconds(50))

            // A user whose roles allow no login is told so at once.
            let status = try await tsh(auditor, ["status"])
            #expect(status.stdout.contains("allow no logins"), "\(status)")
        }
    }
}
