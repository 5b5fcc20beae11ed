import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Kubernetes access through the proxy's web port with the real `kubectl`. No real Kubernetes API
/// server can run here: the API server is a STAND-IN (`Tests/fixtures/kube_apiserver_standin.py`,
/// real HTTPS with a required client certificate; discovery, pods list/get/watch, logs -f, exec
/// over WebSocket v5/v4 backed by a real process on a PTY). A Kubernetes service in its own
/// process joins with a `kube` token and reads a kubeconfig pointing at the stand-in; a user logs
/// in with `tsh login` and `tsh kube login`, and kubectl runs against the kubeconfig tsh wrote.
@Suite("Kubernetes access: kubectl through the proxy", .serialized)
struct KubeAccessTests {
    static let token = "kube0123456789abcdef0123456789ab"
    static let standIn = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures").appendingPathComponent("kube_apiserver_standin.py")
    static let role = """
        kind: role
        version: v5
        metadata:
          name: kube-viewers
        spec:
          allow:
            kubernetes_labels:
              env: dev
              tier: gold
            kubernetes_groups: [viewers]
            kubernetes_resources:
            - kind: pod
              namespace: default
              name: "^web-[0-4]$"

        """

    /// The stand-in API server with its CA, server and client certificates (openssl).
    struct StandIn {
        let directory: URL
        let port: UInt16
        var pid: pid_t
        var log: URL { directory.appendingPathComponent("requests.jsonl") }

        static func start() async throws -> StandIn {
            let directory = try TestSupport.makeTemporaryDirectory(prefix: "kubeapi")
            let script = """
                set -e
                cd '\(directory.path)'
                openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=standin-ca
                openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=kube-apiserver
                printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext
                openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext
                openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key -out client.csr -subj /CN=teleport-kube-service
                openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2
                """
            let made = try await TestSupport.run("/bin/sh", ["-c", script])
            try #require(made.exitCode == 0, "\(made)")
            let port = try TestSupport.freeLoopbackPort()
            var standIn = StandIn(directory: directory, port: port, pid: 0)
            try await standIn.launch()
            return standIn
        }

        mutating func launch() async throws {
            pid = try TestSupport.spawnDaemon(
                "/usr/bin/python3",
                [KubeAccessTests.standIn.path, "--port", "\(port)", "--cert", directory.appendingPathComponent("server.pem").path,
                 "--key", directory.appendingPathComponent("server.key").path, "--client-ca", directory.appendingPathComponent("ca.pem").path,
                 "--log", log.path],
                logPath: directory.appendingPathComponent("standin.out").path)
            let listening = await TestSupport.waitForPort(port)
            try #require(listening, "the stand-in API server did not listen")
        }

        /// The kubeconfig the Kubernetes service uses (context `dev-cluster`).
        var kubeconfig: String {
            """
            apiVersion: v1
            kind: Config
            clusters:
            - name: standin
              cluster:
                server: https://127.0.0.1:\(port)
                certificate-authority: ca.pem
            users:
            - name: teleport
              user:
                client-certificate: client.pem
                client-key: client.key
            contexts:
            - name: dev-cluster
              context: {cluster: standin, user: teleport}
            current-context: dev-cluster

            """
        }

        /// The requests the stand-in received.
        var requests: [[String: Any]] {
            ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
            }
        }

        func stop() async { await TestSupport.stopDaemon(pid) }
    }

    /// The Kubernetes service's process: `teleport start -c FILE` with only `kubernetes_service`.
    struct KubeAgent {
        let directory: URL
        let pid: pid_t
        var log: String { (try? TestSupport.read(directory.appendingPathComponent("teleport.log"))) ?? "" }

        static func start(cluster: ClusterFixture, standIn: StandIn, tunnel: Bool = false) throws -> KubeAgent {
            let directory = try TestSupport.makeTemporaryDirectory(prefix: "kubeagent")
            let kubeconfig = standIn.directory.appendingPathComponent("kubeconfig")
            try TestSupport.write(standIn.kubeconfig, to: kubeconfig)
            let port = try TestSupport.freeLoopbackPort()
            let join = tunnel ? "proxy_server: 127.0.0.1:\(cluster.webPort)" : "auth_servers: [127.0.0.1:\(cluster.authPort)]"
            let config = """
                version: v3
                teleport:
                  nodename: kubehost
                  data_dir: \(directory.appendingPathComponent("data").path)
                  auth_token: \(KubeAccessTests.token)
                  \(join)
                  log:
                    severity: DEBUG
                auth_service:
                  enabled: false
                proxy_service:
                  enabled: false
                ssh_service:
                  enabled: false
                kubernetes_service:
                  enabled: true
                  \(tunnel ? "" : "listen_addr: 127.0.0.1:\(port)")
                  kubeconfig_file: \(kubeconfig.path)
                  labels:
                    env: dev
                  commands:
                  - name: tier
                    command: ["/bin/echo", "gold"]
                    period: 1m

                """
            let file = directory.appendingPathComponent("teleport.yaml")
            try TestSupport.write(config, to: file)
            let pid = try TestSupport.spawnDaemon(
                try ClusterFixture.binary("teleport"), ["start", "-c", file.path], logPath: directory.appendingPathComponent("teleport.log").path,
                environment: ["TELEPORT_UNSTABLE_TUNNEL_KEEPALIVE": "2"])
            return KubeAgent(directory: directory, pid: pid)
        }

        func stop() async {
            await TestSupport.stopDaemon(pid)
            try? FileManager.default.removeItem(at: directory)
        }
    }

    static func shell(_ line: String, environment: [String: String]) async throws -> CommandResult {
        try await TestSupport.run("/bin/sh", ["-c", line], environment: environment, timeout: .seconds(60))
    }

    @Test(.timeLimit(.minutes(6)), arguments: [false, true])
    func kubectlThroughTheProxy(tunnel: Bool) async throws {
        let kubePort = try TestSupport.freeLoopbackPort()
        let cluster = try ClusterFixture(
            clusterName: "kube.example", authSection: "  tokens: [\"kube:\(Self.token)\"]",
            proxySection: "  public_addr: localhost\n  kube_listen_addr: 127.0.0.1:\(kubePort)")
        try await withCluster(cluster) { cluster in
            try await cluster.start()
            var standIn = try await StandIn.start()
            let agent: KubeAgent
            do {
                agent = try KubeAgent.start(cluster: cluster, standIn: standIn, tunnel: tunnel)
            } catch {
                await standIn.stop()
                throw error
            }
            do {
                try await exercise(cluster, standIn: &standIn, agent: agent, tunnel: tunnel, kubePort: kubePort)
            } catch {
                Issue.record("kube agent log:\n\(agent.log.suffix(6000))")
                for (name, log) in [("agent", agent.log), ("cluster", cluster.log)] {
                    let crash = log.split(separator: "\n").filter { $0.contains("Fatal") || $0.contains("crashed") || $0.contains("at /work/main/Sources") }
                    if !crash.isEmpty { Issue.record("\(name) crash:\n\(crash.prefix(40).joined(separator: "\n"))") }
                }
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

    /// The seed's configuration (Teleport 3/4): `proxy_service.kubernetes` with a kubeconfig (no
    /// kubernetes_service), `tctl users add joe --k8s-groups=system:masters` with the preset access
    /// role, and a plain `tsh login` after which `kubectl get pods` works.
    @Test(.timeLimit(.minutes(4)))
    func seedProxyKubernetesSectionAndK8sGroups() async throws {
        var standIn = try await StandIn.start()
        defer { try? FileManager.default.removeItem(at: standIn.directory) }
        let kubeconfig = standIn.directory.appendingPathComponent("kubeconfig")
        try TestSupport.write(standIn.kubeconfig, to: kubeconfig)
        let kubePort = try TestSupport.freeLoopbackPort()
        let cluster = try ClusterFixture(
            clusterName: "seed-kube.example",
            proxySection: """
                  public_addr: localhost
                  kubernetes:
                    enabled: yes
                    listen_addr: 127.0.0.1:\(kubePort)
                    kubeconfig_file: \(kubeconfig.path)
                """)
        do {
            try await withCluster(cluster) { cluster in
                try await cluster.start()
                let added = try await cluster.tctl(["users", "add", "joe", "--k8s-groups=system:masters"])
                try #require(added.exitCode == 0, "\(added)")
                let enrolled = try await SignupHelper.enrol(
                    WebDriver(cluster: cluster), try SignupHelper.link(in: added.stdout, kind: "newuser"), password: TSHLoginTests.password)
                var codes = TSHCodes(secret: enrolled.secret, usedAt: enrolled.time)
                var registered = try await cluster.tctl(["get", "kube_server"])
                for _ in 0..<60 where !registered.stdout.contains("dev-cluster") {
                    try await Task.sleep(for: .milliseconds(500))
                    registered = try await cluster.tctl(["get", "kube_server"])
                }
                try #require(registered.stdout.contains("dev-cluster"), "\(registered)\n\(cluster.log.suffix(3000))")
                let tsh = try TSHRunner()
                defer { tsh.cleanUp() }
                let login = try await TSHLoginTests.login(
                    tsh, ["--proxy=localhost:\(cluster.webPort)", "--user=joe", "--insecure"], user: "joe", password: TSHLoginTests.password,
                    code: try await codes.next())
                try #require(login.status == 0, "\(login.transcript)")
                #expect(login.transcript.contains("Logged into Kubernetes cluster dev-cluster"), "\(login.transcript)")
                // kubectl with ~/.kube/config as tsh login wrote it, on the web port and on listen_addr.
                let pods = try await Self.shell("kubectl get pods", environment: tsh.environment)
                #expect(pods.exitCode == 0 && pods.stdout.contains("web-0") && pods.stdout.contains("db-0"), "\(pods)\n\(cluster.log.suffix(3000))")
                let ownPort = try await Self.shell("kubectl --server=https://localhost:\(kubePort) get pods", environment: tsh.environment)
                #expect(ownPort.exitCode == 0 && ownPort.stdout.contains("web-1"), "\(ownPort)")
                let seen = standIn.requests.last { ($0["path"] as? String)?.hasPrefix("/api/v1/namespaces/default/pods") == true }
                #expect(seen?["impersonate_user"] as? [String] == ["joe"], "\(String(describing: seen))")
                #expect(seen?["impersonate_group"] as? [String] == ["system:masters"], "\(String(describing: seen))")
                // A user without kubernetes_groups or kubernetes_users gets a clear refusal.
                let plain = try await cluster.tctl(["access", "explain", "--user=joe", "--kube-cluster=dev-cluster"])
                #expect(plain.stdout.contains("in groups system:masters") && plain.stdout.contains("Verdict: ALLOWED"), "\(plain)")
            }
        } catch {
            await standIn.stop()
            throw error
        }
        await standIn.stop()
    }

    func exercise(_ cluster: ClusterFixture, standIn: inout StandIn, agent: KubeAgent, tunnel: Bool, kubePort: UInt16) async throws {
        let dir = try TestSupport.makeTemporaryDirectory(prefix: "kube")
        defer { try? FileManager.default.removeItem(at: dir) }
        let rolesFile = dir.appendingPathComponent("roles.yaml")
        try TestSupport.write(Self.role, to: rolesFile)
        let created = try await cluster.tctl(["create", rolesFile.path])
        try #require(created.exitCode == 0, "\(created)")
        let added = try await cluster.tctl(["users", "add", "bob", "--roles=kube-viewers"])
        try #require(added.exitCode == 0, "\(added)")
        let enrolled = try await SignupHelper.enrol(
            WebDriver(cluster: cluster), try SignupHelper.link(in: added.stdout, kind: "newuser"), password: TSHLoginTests.password)
        var codes = TSHCodes(secret: enrolled.secret, usedAt: enrolled.time)
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        // tsh login --kube-cluster logs in to the cluster too (~/.kube/config without KUBECONFIG).
        var registered = try await cluster.tctl(["get", "kube_server"])
        for _ in 0..<60 where !registered.stdout.contains("dev-cluster") {
            try await Task.sleep(for: .milliseconds(500))
            registered = try await cluster.tctl(["get", "kube_server"])
        }
        let login = try await TSHLoginTests.login(
            tsh, ["--proxy=localhost:\(cluster.webPort)", "--user=bob", "--insecure", "--kube-cluster=dev-cluster"], user: "bob",
            password: TSHLoginTests.password, code: try await codes.next())
        try #require(login.status == 0, "\(login.transcript)")
        let defaultConfig = (try? TestSupport.read(tsh.home.appendingPathComponent(".kube/config"))) ?? ""
        #expect(defaultConfig.contains("current-context: kube.example-dev-cluster"), "\(defaultConfig)\n\(login.transcript)")

        // The service heartbeats its cluster (directly, or with its tunnel to the proxy).
        var listed = try await tsh.run(["kube", "ls"])
        for _ in 0..<60 where !listed.stdout.contains("dev-cluster") {
            try await Task.sleep(for: .milliseconds(500))
            listed = try await tsh.run(["kube", "ls"])
        }
        #expect(listed.exitCode == 0 && listed.stdout.contains("dev-cluster") && listed.stdout.contains("env=dev"), "\(listed)\n\(agent.log.suffix(3000))")
        // kubernetes_service.commands: a dynamic label (the role needs tier=gold, so everything below depends on it).
        #expect(listed.stdout.contains("tier=gold"), "\(listed)")
        let recordJSON = try await cluster.tctl(["get", "kube_server/dev-cluster", "--format=json"])
        #expect(recordJSON.stdout.contains("dynamic_labels") && recordJSON.stdout.contains("gold"), "\(recordJSON)")
        if tunnel {
            let record = try await cluster.tctl(["get", "kube_server/dev-cluster", "--format=json"])
            #expect(record.stdout.contains("\"use_tunnel\" : true"), "\(record)")
        }

        // tsh kube login writes the kubeconfig; kubectl reaches the stand-in as bob in group viewers.
        let kubeconfig = dir.appendingPathComponent("kubeconfig")
        var environment = tsh.environment
        environment["KUBECONFIG"] = kubeconfig.path
        let kubeLogin = try await TestSupport.run(
            try ClusterFixture.binary("tsh"), ["kube", "login", "dev-cluster"], environment: environment)
        try #require(kubeLogin.exitCode == 0, "\(kubeLogin)")
        let written = try TestSupport.read(kubeconfig)
        #expect(written.contains("kube-teleport-proxy-alpn.teleport.cluster.local") && written.contains("credentials"), "\(written)")
        let selected = try await TestSupport.run(try ClusterFixture.binary("tsh"), ["kube", "ls"], environment: environment)
        #expect(selected.stdout.contains("*"), "\(selected)")

        var pods = try await Self.shell("kubectl get pods", environment: environment)
        for _ in 0..<20 where pods.exitCode != 0 && tunnel {
            // The tunnel may still be coming up.
            try await Task.sleep(for: .milliseconds(500))
            pods = try await Self.shell("kubectl get pods", environment: environment)
        }
        try #require(pods.exitCode == 0 && pods.stdout.contains("web-0") && pods.stdout.contains("Running"), "\(pods)\n\(agent.log.suffix(4000))")
        let listRequest = standIn.requests.last { ($0["path"] as? String)?.hasPrefix("/api/v1/namespaces/default/pods") == true }
        #expect(listRequest?["impersonate_user"] as? [String] == ["bob"], "\(String(describing: listRequest))")
        #expect(listRequest?["impersonate_group"] as? [String] == ["viewers"], "\(String(describing: listRequest))")
        #expect(listRequest?["client_cn"] as? String == "teleport-kube-service", "\(String(describing: listRequest))")

        // kubernetes_resources narrow lists and watches: the stand-in has db-0, the role allows web-0..4.
        #expect(!pods.stdout.contains("db-0"), "\(pods)")
        let asJSON = try await Self.shell("kubectl get pods -o json", environment: environment)
        #expect(asJSON.exitCode == 0 && asJSON.stdout.contains("web-1") && !asJSON.stdout.contains("db-0"), "\(asJSON)")
        let direct = try await Self.shell(
            "curl -sk --cert \(standIn.directory.path)/client.pem --key \(standIn.directory.path)/client.key -H 'Impersonate-User: bob' "
                + "https://127.0.0.1:\(standIn.port)/api/v1/namespaces/default/pods", environment: environment)
        #expect(direct.stdout.contains("db-0"), "the stand-in serves db-0 to a direct client: \(direct)")

        // proxy_service.kube_listen_addr serves kubectl the same way, and /webapi/ping names it.
        let ping = try await Self.shell("curl -sk https://localhost:\(cluster.webPort)/webapi/ping", environment: environment)
        let pinged = (try? JSONSerialization.jsonObject(with: Data(ping.stdout.utf8))) as? [String: Any]
        let kubeBlock = (pinged?["proxy"] as? [String: Any])?["kube"] as? [String: Any]
        #expect(kubeBlock?["listen_addr"] as? String == "127.0.0.1:\(kubePort)" && kubeBlock?["enabled"] as? Bool == true, "\(ping)")
        let ownPort = try await Self.shell("kubectl --server=https://localhost:\(kubePort) get pods", environment: environment)
        #expect(ownPort.exitCode == 0 && ownPort.stdout.contains("web-1"), "\(ownPort)")

        // Impersonation the roles do not grant is refused before the API server, and audited.
        let admin = try await Self.shell("kubectl --as=system:admin get pods", environment: environment)
        #expect(admin.exitCode != 0 && admin.stderr.contains("system:admin") && admin.stderr.contains("not allowed"), "\(admin)")
        let masters = try await Self.shell("kubectl --as=bob --as-group=system:masters get pods", environment: environment)
        #expect(masters.exitCode != 0 && masters.stderr.contains("system:masters"), "\(masters)")
        #expect(!standIn.requests.contains { ($0["impersonate_user"] as? [String]) == ["system:admin"] })

        // A watch streams events as they come.
        let watchLog = dir.appendingPathComponent("watch.out")
        let watcher = try TestSupport.spawnDaemon("/bin/sh", ["-c", "exec kubectl get pods -w"], logPath: watchLog.path, environment: environment)
        var watched = ""
        for _ in 0..<80 where !watched.contains("web-4") {
            try await Task.sleep(for: .milliseconds(250))
            watched = (try? TestSupport.read(watchLog)) ?? ""
        }
        await TestSupport.stopDaemon(watcher)
        #expect(watched.contains("web-0") && watched.contains("web-2") && watched.contains("web-4"), "\(watched)")
        #expect(!watched.contains("db-0"), "\(watched)")

        // logs -f streams; a command's exit code comes back.
        let logs = try await Self.shell("kubectl logs -f web-0", environment: environment)
        #expect(logs.exitCode == 0 && logs.stdout.contains("web-0 log line 3"), "\(logs)")
        let exec = try await Self.shell("kubectl exec web-0 -- sh -c 'echo from-pod; exit 3'", environment: environment)
        #expect(exec.exitCode == 3 && exec.stdout.contains("from-pod"), "\(exec)")
        // A non-interactive exec is not recorded but audited as `exec` with its command and exit code.
        var execEvents: [[String: JSONValue]] = []
        for _ in 0..<60 where execEvents.isEmpty {
            execEvents = try await AuditEventsTests.events(cluster, ["--type=exec"]).filter { $0["proto"] == .string("kube") }
            if execEvents.isEmpty { try await Task.sleep(for: .milliseconds(250)) }
        }
        #expect(
            execEvents.contains {
                $0["exitCode"] == .int(3) && $0["user"] == .string("bob") && $0["kubernetes_pod_name"] == .string("web-0")
                    && $0["command"] == .string("sh -c echo from-pod; exit 3")
            }, "\(execEvents)")

        // kubectl port-forward: SPDY inside a WebSocket (kubectl 1.31+), then kubectl's plain SPDY
        // fallback; curl through it to the pod's port 80 (the stand-in serves that port). This
        // machine's kubectl is Google's dispatcher, which runs the kubectl matching the server's
        // version (the stand-in says 1.30): the WebSocket round names 1.32 itself.
        let modern = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
        let rounds = [
            ("websocket", FileManager.default.isExecutableFile(atPath: modern) ? modern : "kubectl", [String: String]()),
            ("spdy", "kubectl", ["KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"]),
        ]
        for (transport, kubectl, extra) in rounds {
            let localPort = try TestSupport.freeLoopbackPort()
            let forwardLog = dir.appendingPathComponent("port-forward-\(transport).out")
            let forwarder = try TestSupport.spawnDaemon(
                "/bin/sh", ["-c", "exec \(kubectl) port-forward -v=6 web-0 \(localPort):80"], logPath: forwardLog.path,
                environment: environment.merging(extra) { $1 })
            var forwarding = ""
            for _ in 0..<80 where !forwarding.contains("Forwarding from") {
                try await Task.sleep(for: .milliseconds(250))
                forwarding = (try? TestSupport.read(forwardLog)) ?? ""
            }
            let fetched = try await Self.shell("curl -s -m 20 http://127.0.0.1:\(localPort)/", environment: environment)
            let bulk = try await Self.shell("curl -s -m 60 http://127.0.0.1:\(localPort)/bytes/5000000 | wc -c", environment: environment)
            await TestSupport.stopDaemon(forwarder)
            #expect(fetched.stdout.contains("hello from the pod's port 80"), "\(transport): \(fetched)\n\(forwarding)")
            #expect(bulk.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "5000000", "\(transport): \(bulk)\n\(forwarding)")
            #expect(standIn.requests.contains { $0["portforward"] as? Bool == true && $0["transport"] as? String == transport }, "\(transport)\n\(forwarding.suffix(3000))")
        }
        // exec over SPDY (kubectl before 1.30) could not be recorded: refused with the reason.
        let spdyExec = try await Self.shell("KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false kubectl exec web-0 -- true", environment: environment)
        #expect(spdyExec.exitCode != 0 && spdyExec.stderr.contains("SPDY"), "\(spdyExec)")

        // A pod outside the role's kubernetes_resources: refused before the API server.
        let outside = try await Self.shell("kubectl exec web-9 -- true", environment: environment)
        #expect(outside.exitCode != 0 && outside.stderr.contains("web-9") && outside.stderr.contains("denied"), "\(outside)")
        let outsideForward = try await Self.shell("timeout 30 kubectl port-forward web-9 \(try TestSupport.freeLoopbackPort()):80", environment: environment)
        #expect(outsideForward.exitCode != 0 && outsideForward.stderr.contains("web-9"), "\(outsideForward)")
        #expect(!standIn.requests.contains { ($0["path"] as? String)?.contains("web-9") == true })

        // tctl access explain agrees with what the proxy and the service did.
        let explained = try await cluster.tctl(["access", "explain", "--user=bob", "--kube-cluster=dev-cluster"])
        #expect(
            explained.exitCode == 0 && explained.stdout.contains("Verdict: ALLOWED") && explained.stdout.contains("in groups viewers")
                && explained.stdout.contains("env=dev") && explained.stdout.contains("tier=gold"), "\(explained)")
        let explainedPod = try await cluster.tctl(["access", "explain", "--user=bob", "--kube-cluster=dev-cluster", "--kube-pod=default/web-9"])
        #expect(
            explainedPod.stdout.contains("Verdict: DENIED") && explainedPod.stdout.contains("no kubernetes_resources entry matches pod default/web-9"),
            "\(explainedPod)")
        let explainedOK = try await cluster.tctl(["access", "explain", "--user=bob", "--kube-cluster=dev-cluster", "--kube-pod=default/web-0"])
        #expect(explainedOK.stdout.contains("Verdict: ALLOWED"), "\(explainedOK)")
        let explainedNone = try await cluster.tctl(["access", "explain", "--user=bob", "--kube-cluster=nosuch"])
        #expect(explainedNone.exitCode != 0 && explainedNone.stderr.contains("no registered Kubernetes cluster"), "\(explainedNone)")
        let explainedBad = try await cluster.tctl(["access", "explain", "--user=bob", "--kube-cluster=dev-cluster", "--kube-pod=web-0"])
        #expect(explainedBad.exitCode != 0 && explainedBad.stderr.contains("NAMESPACE/NAME"), "\(explainedBad)")

        // An interactive exec through a pseudo-terminal: output, resize, exit code; recorded.
        let terminal = try TSHTerminal("/usr/bin/kubectl", ["exec", "-it", "web-0", "--", "sh"], environment: environment)
        try await terminal.expect("$ ")
        terminal.sendLine("echo kube-$((6*7))")
        try await terminal.expect("kube-42")
        terminal.resize(rows: 33, columns: 101)
        try await Task.sleep(for: .milliseconds(300))
        terminal.sendLine("stty size")
        try await terminal.expect("33 101")
        terminal.sendLine("exit 7")
        let status = try await terminal.wait()
        #expect(status == 7)
        var recordings = try await tsh.run(["recordings", "ls"])
        for _ in 0..<60 where !recordings.stdout.contains("dev-cluster") {
            try await Task.sleep(for: .milliseconds(500))
            recordings = try await tsh.run(["recordings", "ls"])
        }
        let row = recordings.stdout.split(separator: "\n").first { $0.contains("dev-cluster") }.map(String.init) ?? ""
        #expect(row.contains("bob"), "\(recordings)\n\(agent.log.suffix(3000))")
        if let sid = row.split(separator: " ").first(where: { $0.count == 36 }) {
            let played = try await tsh.run(["play", "--format=text", String(sid)])
            #expect(played.exitCode == 0 && played.stdout.contains("kube-42"), "\(played)")
        }

        // Attacks at the proxy and the service, with the real curl.
        let keys = tsh.tshHome.appendingPathComponent("keys/localhost")
        let routed = keys.appendingPathComponent("bob-kube/dev-cluster-x509.pem").path
        let key = keys.appendingPathComponent("bob.tls.key").path
        let base = "https://\(Self.serverName):\(cluster.webPort)"
        let connect = "--connect-to \(Self.serverName):\(cluster.webPort):127.0.0.1:\(cluster.webPort)"
        // The login certificate carries no cluster route.
        let plain = try await Self.shell(
            "curl -sk \(connect) -w '\\n%{http_code}' --cert \(keys.path)/bob-x509.pem --key \(key) \(base)/api/v1/namespaces/default/pods",
            environment: environment)
        #expect(plain.stdout.hasSuffix("403") && plain.stdout.contains("no Kubernetes cluster route"), "\(plain)")
        // No certificate at all.
        let anonymous = try await Self.shell("curl -sk \(connect) -w '\\n%{http_code}' \(base)/api", environment: environment)
        #expect(anonymous.stdout.hasSuffix("401"), "\(anonymous)")
        // A certificate of another CA fails the handshake.
        let foreign = try await Self.shell(
            "curl -sk \(connect) --cert \(standIn.directory.path)/client.pem --key \(standIn.directory.path)/client.key \(base)/api",
            environment: environment)
        #expect(foreign.exitCode != 0, "\(foreign)")
        // An expired certificate of the user CA fails the handshake too.
        let expiredID = dir.appendingPathComponent("expired.id")
        let signed = try await cluster.tctl(["auth", "sign", "--user=bob", "--out=\(expiredID.path)", "--ttl=2s"])
        #expect(signed.exitCode == 0, "\(signed)")
        let splitter = dir.appendingPathComponent("split.py")
        try TestSupport.write(
            """
            import re, sys
            text = open(sys.argv[1]).read()
            blocks = re.findall(r"(-----BEGIN ([A-Z ]+)-----\\n.*?-----END \\2-----\\n?)", text, re.S)
            open(sys.argv[2], "w").write(next(b for b, kind in blocks if kind == "PRIVATE KEY"))
            open(sys.argv[3], "w").write(next(b for b, kind in blocks if kind == "CERTIFICATE"))

            """, to: splitter)
        let split = try await TestSupport.run(
            "/usr/bin/python3", [splitter.path, expiredID.path, dir.appendingPathComponent("expired.key").path, dir.appendingPathComponent("expired.pem").path])
        #expect(split.exitCode == 0, "\(split)")
        try await Task.sleep(for: .seconds(3))
        let expired = try await Self.shell(
            "curl -sk \(connect) --cert \(dir.path)/expired.pem --key \(dir.path)/expired.key \(base)/api", environment: environment)
        #expect(expired.exitCode != 0 && !expired.stdout.contains("APIVersions"), "\(expired)")
        // A cluster that is not registered.
        let unknown = try await TestSupport.run(try ClusterFixture.binary("tsh"), ["kube", "login", "no-such-cluster"], environment: environment)
        #expect(unknown.exitCode != 0 && unknown.stderr.contains("not registered"), "\(unknown)")
        // A malformed upgrade (an unknown WebSocket subprotocol; upgrades are HTTP/1.1).
        let upgrade = try await Self.shell(
            "curl -sk --http1.1 \(connect) -w '\\n%{http_code}' --cert \(routed) --key \(key) -H 'Connection: Upgrade' -H 'Upgrade: websocket' "
                + "-H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H 'Sec-WebSocket-Protocol: chat' "
                + "'\(base)/api/v1/namespaces/default/pods/web-0/exec?command=sh&stdin=true&tty=true'",
            environment: environment)
        #expect(upgrade.stdout.hasSuffix("400") && upgrade.stdout.contains("malformed upgrade"), "\(upgrade)")
        // HTTP/2 (ALPN h2) and HTTP/1.1 both reach the API server.
        for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
            let got = try await Self.shell(
                "curl -sk \(flag) \(connect) -w '\\n%{http_version} %{http_code}' --cert \(routed) --key \(key) \(base)/api/v1/namespaces/default/pods",
                environment: environment)
            #expect(got.stdout.hasSuffix("\n\(version) 200") && got.stdout.contains("web-0"), "\(flag): \(got)")
        }
        // HTTP/2 floods: rapid resets and streams past the limit end the connection (GOAWAY);
        // the proxy stays up and its memory bounded. Only streams it admitted reach the API server.
        if let pid = cluster.pid {
            let before = SessionLifetimeTests.residentKiB(pid)
            let requestsBefore = standIn.requests.count
            let flood = try await TestSupport.run(
                "/usr/bin/env",
                ["python3", Self.fixtures.appendingPathComponent("kube_h2_flood.py").path, "127.0.0.1", "\(cluster.webPort)", Self.serverName, routed, key,
                 "/api/v1/namespaces/default/pods"],
                environment: environment)
            let report = (try? JSONSerialization.jsonObject(with: Data(flood.stdout.utf8))) as? [String: Any] ?? [:]
            print("HTTP/2 floods at the proxy (tunnel: \(tunnel)): \(flood.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
            let rapid = report["rapid_reset"] as? [String: Any] ?? [:]
            let many = report["flood"] as? [String: Any] ?? [:]
            #expect(report["alpn"] as? String == "h2" && report["normal"] as? String == "200", "\(flood)")
            #expect(rapid["goaway"] as? Bool == true || rapid["closed"] as? Bool == true, "\(flood)")
            #expect((rapid["sent"] as? Int ?? 0) < 2000 || rapid["goaway"] as? Bool == true, "\(flood)")
            #expect(many["goaway"] as? Bool == true || (many["refused"] as? Int ?? 0) >= 1, "\(flood)")
            // Streams past the limit are refused (a stream that ended frees its place, so a few more may be answered).
            #expect((many["answered"] as? Int ?? 1000) <= 3 * KubeAccessTests.maxStreams, "\(flood)")
            #expect(report["after"] as? String == "200", "\(flood)\nagent:\n\(agent.log.suffix(4000))\ncluster:\n\(cluster.log.suffix(4000))")
            let grown = SessionLifetimeTests.residentKiB(pid) - before
            #expect(grown < 64 * 1024, "the proxy grew by \(grown) KiB under the HTTP/2 floods")
            let reached = standIn.requests.count - requestsBefore
            print("HTTP/2 floods: the proxy grew by \(grown) KiB; \(reached) requests reached the API server")
            #expect(reached <= 2 + 3 * KubeAccessTests.maxStreams + 200, "\(reached) requests reached the API server\n\(flood)")
        }
        // A 100 MB body is refused from its Content-Length, not buffered.
        let big = dir.appendingPathComponent("big.bin")
        try Data(count: 100 << 20).write(to: big)
        let posted = try await Self.shell(
            "curl -sk \(connect) -w '\\n%{http_code}' --cert \(routed) --key \(key) -H 'Content-Type: application/json' "
                + "--data-binary @\(big.path) \(base)/api/v1/namespaces/default/pods",
            environment: environment)
        #expect(posted.stdout.hasSuffix("413"), "\(posted)")
        #expect(!standIn.requests.contains { ($0["body"] as? Int ?? 0) > 1 << 20 })

        // The audit log holds the requests and the refusals with their reasons.
        let lines = try await DatabaseAccessPostgresTests.auditLines(cluster) { lines in
            lines.contains { $0.contains("\"kube.request\"") && $0.contains("system:admin") }
                && lines.contains { $0.contains("\"kube.request\"") && $0.contains("\"response_code\":200") }
        }
        #expect(lines.contains { $0.contains("\"kube.request\"") && $0.contains("T3009W") && $0.contains("system:admin") }, "\(lines.suffix(20))")
        #expect(lines.contains { $0.contains("\"kube.request\"") && $0.contains("\"verb\":\"list\"") && $0.contains("\"kubernetes_groups\":[\"viewers\"]") })

        // The API server down: kubectl gets a line naming it.
        await standIn.stop()
        let down = try await Self.shell("kubectl get pods", environment: environment)
        #expect(down.exitCode != 0 && down.stderr.contains("cannot reach the Kubernetes API server"), "\(down)")
        try await standIn.launch()

        // tsh kube logout removes the certificate and the context.
        let logout = try await TestSupport.run(try ClusterFixture.binary("tsh"), ["kube", "logout"], environment: environment)
        #expect(logout.exitCode == 0 && !FileManager.default.fileExists(atPath: routed), "\(logout)")
    }

    static let serverName = "kube-teleport-proxy-alpn.teleport.cluster.local"
    /// The proxy's limit of concurrent HTTP/2 streams on one connection (KubeHTTP2.maxConcurrentStreams).
    static let maxStreams = 100
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("fixtures")
}
