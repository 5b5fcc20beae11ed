import Foundation
import Synchronization
import TeleportTestSupport
import Testing

/// Kubernetes access across a host CA rotation: the real `kubectl` through the proxy's web port to
/// a Kubernetes service in its own process (joined with a token, directly or through a reverse
/// tunnel), in front of the STAND-IN API server of `KubeAccessTests` (no real Kubernetes API
/// server can run here). The host CA rotates phase by phase while a loop of `kubectl get pods`
/// runs without a single failure; the service renews its identity without a restart.
///
/// kubectl checks the proxy against the CA the kubeconfig got at `tsh kube login`: the user logs in
/// again in the host CA's `init` (the profile's CA file then holds both host CAs) and the loop
/// switches to that kubeconfig; the kubeconfig of a login from before `init` stops verifying the
/// proxy once it presents its certificate of the new CA.
@Suite("CA rotation with Kubernetes access", .serialized)
struct CARotationKubeTests {
    /// Counts loop rounds and keeps the failures; `kubeconfig` is the one kubectl uses now.
    final class Loop: Sendable {
        let state: Mutex<(rounds: Int, failures: [String], stop: Bool, environment: [String: String])>
        init(_ environment: [String: String]) { state = Mutex((0, [], false, environment)) }
    }

    /// `tsh login` as bob and `tsh kube login dev-cluster` into `kubeconfig`; kubectl's environment.
    static func login(
        _ tsh: TSHRunner, cluster: ClusterFixture, kubeconfig: URL, codes: inout TSHCodes
    ) async throws -> [String: String] {
        let login = try await TSHLoginTests.login(
            tsh, ["--proxy=localhost:\(cluster.webPort)", "--user=bob", "--insecure"], user: "bob", password: TSHLoginTests.password,
            code: try await codes.next())
        try #require(login.status == 0, "\(login.transcript)")
        var environment = tsh.environment
        environment["KUBECONFIG"] = kubeconfig.path
        let kubeLogin = try await TestSupport.run(try ClusterFixture.binary("tsh"), ["kube", "login", "dev-cluster"], environment: environment)
        try #require(kubeLogin.exitCode == 0, "\(kubeLogin)")
        return environment
    }

    /// One `kubectl get pods`; a description of its failure.
    static func probe(_ environment: [String: String]) async throws -> String? {
        let pods = try await KubeAccessTests.shell("kubectl --request-timeout=30s get pods", environment: environment)
        return pods.exitCode == 0 && pods.stdout.contains("web-0") ? nil : "kubectl at \(Date()): \(pods)"
    }

    @Test(.timeLimit(.minutes(5)), arguments: [false, true])
    func kubectlAcrossAHostRotation(tunnel: Bool) async throws {
        let cluster = try ClusterFixture(
            clusterName: "rotate-kube.example", authSection: "  tokens: [\"kube:\(KubeAccessTests.token)\"]",
            proxySection: "  public_addr: localhost")
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            let standIn = try await KubeAccessTests.StandIn.start()
            let agent: KubeAccessTests.KubeAgent
            do {
                agent = try KubeAccessTests.KubeAgent.start(cluster: cluster, standIn: standIn, tunnel: tunnel)
            } catch {
                await standIn.stop()
                try? FileManager.default.removeItem(at: standIn.directory)
                throw error
            }
            do {
                try await exercise(cluster, agent: agent)
            } catch {
                Issue.record("kube agent log:\n\(agent.log.split(separator: "\n").filter { !$0.contains("DEBU") }.suffix(40).joined(separator: "\n"))")
                await agent.stop()
                await standIn.stop()
                try? FileManager.default.removeItem(at: standIn.directory)
                throw error
            }
            await agent.stop()
            await standIn.stop()
            try? FileManager.default.removeItem(at: standIn.directory)
        }
    }

    func exercise(_ cluster: ClusterFixture, agent: KubeAccessTests.KubeAgent) async throws {
        let dir = try TestSupport.makeTemporaryDirectory(prefix: "rotate-kube")
        defer { try? FileManager.default.removeItem(at: dir) }
        let rolesFile = dir.appendingPathComponent("roles.yaml")
        try TestSupport.write(KubeAccessTests.role, to: rolesFile)
        let created = try await cluster.tctl(["create", rolesFile.path])
        try #require(created.exitCode == 0, "\(created)")
        let added = try await cluster.tctl(["users", "add", "bob", "--roles=kube-viewers"])
        try #require(added.exitCode == 0, "\(added)")
        let enrolled = try await SignupHelper.enrol(
            WebDriver(cluster: cluster), try SignupHelper.link(in: added.stdout, kind: "newuser"), password: TSHLoginTests.password)
        var codes = TSHCodes(secret: enrolled.secret, usedAt: enrolled.time)
        var registered = try await cluster.tctl(["get", "kube_server"])
        for _ in 0..<60 where !registered.stdout.contains("dev-cluster") {
            try await Task.sleep(for: .milliseconds(500))
            registered = try await cluster.tctl(["get", "kube_server"])
        }
        try #require(registered.stdout.contains("dev-cluster"), "\(registered)\n\(agent.log.suffix(3000))")
        let first = try TSHRunner()
        let second = try TSHRunner()
        defer {
            first.cleanUp()
            second.cleanUp()
        }
        let before = try await Self.login(first, cluster: cluster, kubeconfig: dir.appendingPathComponent("kubeconfig.before"), codes: &codes)
        var ready = try await Self.probe(before)
        for _ in 0..<40 where ready != nil {
            // A tunnelled service may still be connecting.
            try await Task.sleep(for: .milliseconds(500))
            ready = try await Self.probe(before)
        }
        try #require(ready == nil, "\(ready ?? "")")

        let loop = Loop(before)
        let task = Task {
            while !loop.state.withLock({ $0.stop }) {
                let failure = try await Self.probe(loop.state.withLock { $0.environment })
                loop.state.withLock {
                    $0.rounds += 1
                    if let failure { $0.failures.append(failure) }
                }
            }
        }
        func phase(_ name: String) async throws {
            let moved = try await cluster.tctl(["auth", "rotate", "--manual", "--type=host", "--phase=\(name)"])
            try #require(moved.exitCode == 0, "\(moved)")
            // Agents look every 2 s; an administrator moves phases minutes apart.
            try await Task.sleep(for: .seconds(8))
        }
        do {
            try await phase("init")
            let during = try await Self.login(second, cluster: cluster, kubeconfig: dir.appendingPathComponent("kubeconfig.during"), codes: &codes)
            let switched = loop.state.withLock {
                $0.environment = during
                return $0.rounds
            }
            // A probe that started with the old kubeconfig may still be running (kubectl starts
            // slowly on a loaded machine): it must end before the proxy presents its new certificate.
            let deadline = Date().addingTimeInterval(120)
            while loop.state.withLock({ $0.rounds }) < switched + 2, Date() < deadline {
                try await Task.sleep(for: .milliseconds(200))
            }
            for name in ["update_clients", "update_servers", "standby"] { try await phase(name) }
        } catch {
            loop.state.withLock { $0.stop = true }
            _ = try? await task.value
            throw error
        }
        loop.state.withLock { $0.stop = true }
        try await task.value
        let (rounds, failures, _, _) = loop.state.withLock { $0 }
        #expect(rounds >= 8, "only \(rounds) rounds")
        #expect(failures.isEmpty, "\(failures.count) failures in \(rounds) rounds:\n\(failures.prefix(4).joined(separator: "\n"))")
        #expect(agent.log.contains("renewed this host's identity"), "the Kubernetes service did not renew")
        // The kubeconfig from before init trusts only the old host CA: kubectl refuses the proxy.
        let stale = try await KubeAccessTests.shell("kubectl --request-timeout=30s get pods", environment: before)
        #expect(stale.exitCode != 0 && stale.stderr.contains("certificate"), "\(stale)")
        // A new login after standby works (its kubeconfig holds the new CA only), exec included.
        let after = try await Self.login(first, cluster: cluster, kubeconfig: dir.appendingPathComponent("kubeconfig.after"), codes: &codes)
        let exec = try await KubeAccessTests.shell("kubectl exec web-0 -- sh -c 'echo from-pod; exit 3'", environment: after)
        #expect(exec.exitCode == 3 && exec.stdout.contains("from-pod"), "\(exec)")
    }
}
