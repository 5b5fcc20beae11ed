import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// `tsh join` of a live Kubernetes session: the owner runs the real `kubectl exec -it` through
/// the proxy (against the STAND-IN API server of `KubeAccessTests`, see there); another user
/// whose role allows `join` on `session` finds it with `tsh sessions ls` and joins it with the
/// real `tsh` on a pseudo-terminal, as an observer (sees the output, typing goes nowhere) and as
/// a peer (typing reaches the pod); a user who may list sessions but not join them is refused by
/// the Kubernetes service, audited.
@Suite("Kubernetes access: tsh join of a live kubectl exec session", .serialized)
struct KubeJoinTests {
    static let roles = KubeAccessTests.role + """
        ---
        kind: role
        version: v5
        metadata:
          name: session-joiner
        spec:
          allow:
            rules:
            - resources: [session]
              verbs: [list, read, join]
        ---
        kind: role
        version: v5
        metadata:
          name: session-lister
        spec:
          allow:
            rules:
            - resources: [session]
              verbs: [list, read]

        """

    @Test(.timeLimit(.minutes(6)))
    func joinAsObserverAndPeer() async throws {
        let cluster = try ClusterFixture(
            clusterName: "kubejoin.example", authSection: "  tokens: [\"kube:\(KubeAccessTests.token)\"]", proxySection: "  public_addr: localhost")
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            let standIn = try await KubeAccessTests.StandIn.start()
            let agent: KubeAccessTests.KubeAgent
            do {
                agent = try KubeAccessTests.KubeAgent.start(cluster: cluster, standIn: standIn)
            } catch {
                await standIn.stop()
                throw error
            }
            defer { try? FileManager.default.removeItem(at: standIn.directory) }
            do {
                try await exercise(cluster, agent: agent)
            } catch {
                Issue.record("kube agent log:\n\(agent.log.suffix(6000))")
                await agent.stop()
                await standIn.stop()
                throw error
            }
            await agent.stop()
            await standIn.stop()
        }
    }

    /// A user logged in with `tsh login` and `tsh kube login dev-cluster` (its own home and kubeconfig).
    struct User {
        let name: String
        let tsh: TSHRunner
        let environment: [String: String]
    }

    func user(_ cluster: ClusterFixture, _ name: String, roles: String, dir: URL) async throws -> User {
        let added = try await cluster.tctl(["users", "add", name, "--roles=\(roles)"])
        try #require(added.exitCode == 0, "\(added)")
        let enrolled = try await SignupHelper.enrol(
            WebDriver(cluster: cluster), try SignupHelper.link(in: added.stdout, kind: "newuser"), password: TSHLoginTests.password)
        var codes = TSHCodes(secret: enrolled.secret, usedAt: enrolled.time)
        let tsh = try TSHRunner()
        let login = try await TSHLoginTests.login(
            tsh, ["--proxy=localhost:\(cluster.webPort)", "--user=\(name)", "--insecure"], user: name, password: TSHLoginTests.password,
            code: try await codes.next())
        try #require(login.status == 0, "\(login.transcript)")
        var environment = tsh.environment
        environment["KUBECONFIG"] = dir.appendingPathComponent("\(name).kubeconfig").path
        environment["TERM"] = "xterm"
        return User(name: name, tsh: tsh, environment: environment)
    }

    func exercise(_ cluster: ClusterFixture, agent: KubeAccessTests.KubeAgent) async throws {
        let dir = try TestSupport.makeTemporaryDirectory(prefix: "kubejoin")
        defer { try? FileManager.default.removeItem(at: dir) }
        let rolesFile = dir.appendingPathComponent("roles.yaml")
        try TestSupport.write(Self.roles, to: rolesFile)
        let created = try await cluster.tctl(["create", rolesFile.path])
        try #require(created.exitCode == 0, "\(created)")
        let bob = try await user(cluster, "bob", roles: "kube-viewers", dir: dir)
        let carol = try await user(cluster, "carol", roles: "kube-viewers,session-joiner", dir: dir)
        let dave = try await user(cluster, "dave", roles: "kube-viewers,session-lister", dir: dir)
        defer { for user in [bob, carol, dave] { user.tsh.cleanUp() } }
        var listed = try await bob.tsh.run(["kube", "ls"])
        for _ in 0..<80 where !listed.stdout.contains("tier=gold") {
            try await Task.sleep(for: .milliseconds(250))
            listed = try await bob.tsh.run(["kube", "ls"])
        }
        let kubeLogin = try await TestSupport.run(try ClusterFixture.binary("tsh"), ["kube", "login", "dev-cluster"], environment: bob.environment)
        try #require(kubeLogin.exitCode == 0, "\(kubeLogin)")

        // bob's interactive exec is listed for those who may list sessions.
        let owner = try TSHTerminal("/usr/bin/kubectl", ["exec", "-it", "web-0", "--", "sh"], environment: bob.environment)
        try await owner.expect("$ ")
        owner.sendLine("echo before-join")
        try await owner.expect("before-join")
        var sid = ""
        var sessions = CommandResult(exitCode: 1, stdout: "", stderr: "")
        for _ in 0..<80 where sid.isEmpty {
            sessions = try await carol.tsh.run(["sessions", "ls", "--format=json"])
            let list = (try? ResourceCodec.jsonDecoder().decode([AuthAPI.ActiveSession].self, from: Data(sessions.stdout.utf8))) ?? []
            if let found = list.first(where: { $0.isKube && $0.user == "bob" }) {
                #expect(found.kubeCluster == "dev-cluster" && found.serverHostname == "dev-cluster/default/web-0", "\(found)")
                sid = found.sid
            } else {
                try await Task.sleep(for: .milliseconds(250))
            }
        }
        try #require(!sid.isEmpty, "the kube session is not listed: \(sessions)")
        let table = try await carol.tsh.run(["sessions", "ls"])
        #expect(table.stdout.contains(sid) && table.stdout.contains("dev-cluster/default/web-0"), "\(table)")

        /// Waits for `count` session.join events of the session (the joiner is attached from then on).
        func joins(_ count: Int) async throws {
            for _ in 0..<150 {
                let joined = try await AuditEventsTests.events(cluster, ["--type=session.join"]).filter { $0["sid"] == .string(sid) }
                if joined.count >= count { return }
                try await Task.sleep(for: .milliseconds(200))
            }
            Issue.record("\(count) joins were not reported")
        }
        // carol watches: bob's output reaches her; her typing does not reach the pod.
        let observer = try TSHTerminal(try ClusterFixture.binary("tsh"), ["join", sid], environment: carol.environment)
        try await observer.expect("as observer")
        try await joins(1)
        owner.sendLine("echo seen-$((40+2))")
        try await observer.expect("seen-42")
        observer.sendLine("echo observer-typed-$((1+1))")
        try await Task.sleep(for: .milliseconds(500))
        #expect(!owner.transcript.contains("observer-typed-2"), "an observer's typing must not reach the session")

        // carol types as a peer (tsh kube join): bob and the observer see it.
        let peer = try TSHTerminal(try ClusterFixture.binary("tsh"), ["kube", "join", "--mode=peer", sid], environment: carol.environment)
        try await peer.expect("as peer")
        try await joins(2)
        peer.sendLine("echo from-peer-$((2+5))")
        try await owner.expect("from-peer-7")
        try await observer.expect("from-peer-7")

        // dave may list sessions but not join them: the Kubernetes service refuses, audited.
        let refused = try await TestSupport.run(try ClusterFixture.binary("tsh"), ["join", sid], environment: dave.environment)
        #expect(refused.exitCode != 0 && refused.stderr.contains("join on session") && refused.stderr.contains("403"), "\(refused)")
        // An SSH-only join of a Kubernetes session id through tsh kube join of an unknown id.
        let unknown = try await TestSupport.run(
            try ClusterFixture.binary("tsh"), ["kube", "join", "00000000-0000-4000-8000-000000000000"], environment: carol.environment)
        #expect(unknown.exitCode != 0 && unknown.stderr.contains("no live session"), "\(unknown)")

        // bob ends the session: both joiners' tsh end with its exit code.
        owner.sendLine("exit 4")
        #expect(try await owner.wait() == 4)
        #expect(try await observer.wait(timeout: .seconds(30)) == 4, "the observer's tsh ends with the session:\n\(observer.transcript)")
        #expect(try await peer.wait(timeout: .seconds(30)) == 4, "\(peer.transcript)")

        var events: [[String: JSONValue]] = []
        for _ in 0..<100 {
            events = try await AuditEventsTests.events(cluster, ["--type=session.join,session.leave,kube.request"])
            if events.filter({ $0["event"] == .string("session.leave") && $0["sid"] == .string(sid) }).count >= 2 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(
            events.contains { $0["event"] == .string("session.join") && $0["user"] == .string("carol") && $0["mode"] == .string("peer") },
            "\(events)")
        #expect(events.filter { $0["event"] == .string("session.leave") && $0["sid"] == .string(sid) }.count == 2, "\(events)")
        #expect(
            events.contains {
                guard case .string(let path)? = $0["request_path"] else { return false }
                return $0["user"] == .string("dave") && $0["response_code"] == .int(403) && path.contains(sid)
            }, "the refused join is audited: \(events.filter { $0["user"] == .string("dave") })")
        var ends: [[String: JSONValue]] = []
        for _ in 0..<50 {
            ends = try await AuditEventsTests.events(cluster, ["--type=session.end"]).filter { $0["sid"] == .string(sid) }
            if !ends.isEmpty { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(ends.first?["participants"] == .array([.string("bob"), .string("carol")]), "\(ends)")
        // The session is no longer listed.
        var after = try await carol.tsh.run(["sessions", "ls", "--format=json"])
        for _ in 0..<40 where after.stdout.contains(sid) {
            try await Task.sleep(for: .milliseconds(250))
            after = try await carol.tsh.run(["sessions", "ls", "--format=json"])
        }
        #expect(!after.stdout.contains(sid), "\(after)")
    }
}
