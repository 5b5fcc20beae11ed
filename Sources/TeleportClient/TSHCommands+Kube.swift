import Foundation
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import X509
import Yams

#if canImport(Glibc)
    import Glibc
#endif

extension TSHCommands {
    /// `tsh kube ls`: the Kubernetes clusters your roles' `kubernetes_labels` allow.
    public static func listKubeClusters(_ options: ClientOptions, labels: String, json: Bool, context: ClientContext) async throws -> Outcome {
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        let clusters = try await web.kubeClusters(labels: labels)
        if json {
            let trees = try clusters.map { try JSONSerialization.jsonObject(with: ResourceCodec.json($0)) }
            let data = try JSONSerialization.data(withJSONObject: trees, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            return Outcome(output: String(decoding: data, as: UTF8.self) + "\n")
        }
        let selected = (try? KubeConfigWriter.currentContext(path: KubeConfigWriter.path(context.environment))) ?? nil
        let rows = clusters.map { cluster in
            [
                cluster.name, cluster.allLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "),
                selected == KubeConfigWriter.contextName(teleportCluster: session.cluster, kubeCluster: cluster.name) ? "*" : "",
            ]
        }
        return Outcome(output: Table.render(headers: ["Kube Cluster Name", "Labels", "Selected"], rows: rows))
    }

    /// The current profile's Kubernetes certificates: `keys/HOST/USER-kube/NAME-x509.pem` (0600).
    static func kubeFiles(_ options: ClientOptions, context: ClientContext) throws -> DatabaseFiles {
        guard options.identityFile == nil else {
            throw TeleportError.badParameter("tsh kube needs a tsh login profile, not -i (identity files hold no Kubernetes certificates)")
        }
        guard let name = try context.store.currentProfileName() else {
            throw TeleportError.accessDenied("not logged in: run tsh login --proxy=HOST first")
        }
        let profile = try context.store.loadProfile(name)
        let paths = context.store.keyPaths(profile: name, user: profile.user)
        return DatabaseFiles(profile: profile, paths: paths, directory: paths.directory.appendingPathComponent("\(profile.user)-kube"))
    }

    /// Asks the proxy for a certificate with the cluster's route and stores it.
    static func issueKubeCertificate(_ options: ClientOptions, name: String, files: DatabaseFiles, context: ClientContext) async throws -> String {
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        let issued = try await web.kubeLogin(name: name)
        try context.store.makePrivateDirectory(files.directory)
        try SecureFile.write(Data(issued.certificatePEM.utf8), to: files.certificate(name), mode: 0o600)
        return issued.certificatePEM
    }

    /// `tsh kube login NAME`: a certificate for the cluster, and a kubeconfig context (in
    /// `$KUBECONFIG` or `~/.kube/config`) that points kubectl at the proxy's web port, trusts the
    /// cluster's host CA and gets its credentials from `tsh kube credentials` (so they renew
    /// after `tsh login`).
    public static func kubeLogin(_ options: ClientOptions, name: String, context: ClientContext) async throws -> Outcome {
        let files = try kubeFiles(options, context: context)
        _ = try await issueKubeCertificate(options, name: name, files: files, context: context)
        let session = try session(options, context: context)
        let caText = (try? String(contentsOf: files.paths.caCertificates, encoding: .utf8)) ?? ""
        let path = KubeConfigWriter.path(context.environment)
        let contextName = KubeConfigWriter.contextName(teleportCluster: session.cluster, kubeCluster: name)
        var environment: [[String: String]] = []
        if let home = context.environment["TELEPORT_HOME"] { environment.append(["name": "TELEPORT_HOME", "value": home]) }
        try KubeConfigWriter.write(
            path: path,
            entry: KubeConfigWriter.Entry(
                teleportCluster: session.cluster, contextName: contextName, server: files.profile.webProxyAddress.url,
                caPEM: caText, tshPath: KubeConfigWriter.tshPath(), kubeCluster: name, environment: environment))
        return Outcome(output: "Logged into Kubernetes cluster \(name). Try 'kubectl version' to test the connection.\n")
    }

    /// After a plain `tsh login` (the seed: it retrieves "credentials for both SSH and Kubernetes
    /// API", and `kubectl get pods` works after it): when the user's roles allow Kubernetes
    /// clusters, logs in to the one named like the Teleport cluster, else the first by name, as
    /// `tsh kube login` does. Nothing when there is none; a failure is a note, never a failed login.
    public static func defaultKubeLogin(_ options: ClientOptions, context: ClientContext) async -> String {
        guard options.identityFile == nil else { return "" }
        let clusters: [KubeServer]
        let teleportCluster: String
        do {
            let session = try session(options, context: context)
            let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
            clusters = try await web.kubeClusters(labels: "")
            teleportCluster = session.cluster
        } catch {
            return ""
        }
        guard let chosen = clusters.first(where: { $0.name == teleportCluster }) ?? clusters.min(by: { $0.name < $1.name }) else { return "" }
        do {
            return try await kubeLogin(options, name: chosen.name, context: context).output
        } catch {
            return "Note: not logged into Kubernetes cluster \(chosen.name): \((error as? TeleportError)?.message ?? "\(error)") (tsh kube login \(chosen.name))\n"
        }
    }

    /// `tsh kube credentials --kube-cluster NAME`: the `ExecCredential` kubectl's exec plugin
    /// reads: the cluster's certificate and the profile's key, re-issued when it has expired
    /// (after a new `tsh login`).
    public static func kubeCredentials(_ options: ClientOptions, name: String, context: ClientContext) async throws -> Outcome {
        let files = try kubeFiles(options, context: context)
        var pem = try? String(contentsOf: files.certificate(name), encoding: .utf8)
        var expires = pem.flatMap { try? Certificate.fromPEM($0).notValidAfter }
        if expires.map({ $0 <= context.clock.now().addingTimeInterval(60) }) ?? true {
            pem = try await issueKubeCertificate(options, name: name, files: files, context: context)
            expires = pem.flatMap { try? Certificate.fromPEM($0).notValidAfter }
        }
        let key = try String(contentsOf: files.paths.tlsKey, encoding: .utf8)
        var status: [String: Any] = ["clientCertificateData": pem ?? "", "clientKeyData": key]
        if let expires { status["expirationTimestamp"] = RFC3339.format(expires) }
        let object: [String: Any] = ["apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential", "status": status]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return Outcome(output: String(decoding: data, as: UTF8.self) + "\n")
    }

    /// `tsh kube logout [NAME]`: removes the cluster's certificate (all without NAME) and its
    /// kubeconfig context.
    public static func kubeLogout(_ options: ClientOptions, name: String?, context: ClientContext) throws -> Outcome {
        let files = try kubeFiles(options, context: context)
        let names = name.map { [$0] } ?? files.loggedIn()
        guard !names.isEmpty else { return Outcome(output: "Not logged into any Kubernetes cluster.\n") }
        var lines = ""
        for cluster in names {
            let url = files.certificate(cluster)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw TeleportError.notFound("not logged into Kubernetes cluster \(cluster) (tsh kube login \(cluster))")
            }
            try FileManager.default.removeItem(at: url)
            try KubeConfigWriter.remove(
                path: KubeConfigWriter.path(context.environment),
                contextName: KubeConfigWriter.contextName(teleportCluster: files.profile.cluster, kubeCluster: cluster))
            lines += "Logged out of Kubernetes cluster \(cluster).\n"
        }
        return Outcome(output: lines)
    }

    /// `tsh kubectl ARGS...`: runs the real `kubectl` (from `PATH`) with the arguments, in place
    /// of this process; `KUBECONFIG` is passed on as it is.
    public static func kubectl(_ arguments: [String], environment: [String: String]) throws -> Never {
        guard let path = ProgramPath.find("kubectl", environment: environment) else {
            throw TeleportError.notFound("kubectl is not on PATH: install it (Debian: apt-get install kubernetes-client)")
        }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        throw TeleportError.connectionProblem("cannot run \(path): \(String(cString: strerror(errno)))")
    }
}

extension WebClient {
    /// `GET /webapi/kube`: the Kubernetes clusters the user may use whose labels match `labels`.
    func kubeClusters(labels: String) async throws -> [KubeServer] {
        try decode([KubeServer].self, try await transport.get("/webapi/kube?labels=\(Self.escape(labels))"), what: "Kubernetes cluster list")
    }

    /// `POST /webapi/kube/login`: the caller's certificate with a Kubernetes cluster route.
    func kubeLogin(name: String) async throws -> AuthAPI.DatabaseRouteCertResponse {
        let body = try JSONSerialization.data(withJSONObject: ["name": name])
        return try decode(AuthAPI.DatabaseRouteCertResponse.self, try await transport.post("/webapi/kube/login", body: body), what: "Kubernetes login")
    }
}

/// Reads and writes kubeconfig files for `tsh kube login`/`logout`: one cluster entry per
/// Teleport cluster (the proxy's web address, `tls-server-name`
/// ``AuthAPI/kubeProxyServerName``, the host CA), and one user and context per Kubernetes
/// cluster, whose credentials come from `tsh kube credentials`. Other entries are kept.
enum KubeConfigWriter {
    /// One context to write.
    struct Entry {
        var teleportCluster: String
        var contextName: String
        var server: String
        var caPEM: String
        var tshPath: String
        var kubeCluster: String
        var environment: [[String: String]]
    }

    /// The first file of `$KUBECONFIG`, else `~/.kube/config`.
    static func path(_ environment: [String: String]) -> String {
        if let list = environment["KUBECONFIG"], let first = list.split(separator: ":").first, !first.isEmpty { return String(first) }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.kube/config"
    }

    /// `TELEPORT_CLUSTER-KUBE_CLUSTER`.
    static func contextName(teleportCluster: String, kubeCluster: String) -> String { "\(teleportCluster)-\(kubeCluster)" }

    /// This program's absolute path (the exec plugin's command).
    static func tshPath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    static func load(path: String) throws -> [String: Any] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            return ["apiVersion": "v1", "kind": "Config", "preferences": [String: Any]()]
        }
        guard let root = try Yams.load(yaml: text) as? [String: Any] else {
            throw TeleportError.badParameter("\(path) is not a kubeconfig (a YAML mapping); move it aside or set KUBECONFIG")
        }
        return root
    }

    static func currentContext(path: String) throws -> String? { try load(path: path)["current-context"] as? String }

    static func save(_ root: [String: Any], path: String) throws {
        let text = try Yams.dump(object: root)
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try SecureFile.write(Data(text.utf8), to: url, mode: 0o600)
    }

    /// Replaces the entry named `name` of list `key` (or appends it).
    static func upsert(_ root: inout [String: Any], _ key: String, name: String, _ value: [String: Any]) {
        var list = (root[key] as? [[String: Any]]) ?? []
        list.removeAll { ($0["name"] as? String) == name }
        list.append(value)
        root[key] = list
    }

    static func write(path: String, entry: Entry) throws {
        var root = try load(path: path)
        upsert(
            &root, "clusters", name: entry.teleportCluster,
            [
                "name": entry.teleportCluster,
                "cluster": [
                    "server": entry.server, "tls-server-name": AuthAPI.kubeProxyServerName,
                    "certificate-authority-data": Data(entry.caPEM.utf8).base64EncodedString(),
                ],
            ])
        var exec: [String: Any] = [
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": entry.tshPath,
            "args": ["kube", "credentials", "--kube-cluster=\(entry.kubeCluster)"], "interactiveMode": "IfAvailable",
        ]
        if !entry.environment.isEmpty { exec["env"] = entry.environment }
        upsert(&root, "users", name: entry.contextName, ["name": entry.contextName, "user": ["exec": exec]])
        upsert(
            &root, "contexts", name: entry.contextName,
            ["name": entry.contextName, "context": ["cluster": entry.teleportCluster, "user": entry.contextName]])
        root["current-context"] = entry.contextName
        try save(root, path: path)
    }

    static func remove(path: String, contextName: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        var root = try load(path: path)
        for key in ["users", "contexts"] {
            root[key] = ((root[key] as? [[String: Any]]) ?? []).filter { ($0["name"] as? String) != contextName }
        }
        if root["current-context"] as? String == contextName { root["current-context"] = "" }
        try save(root, path: path)
    }
}
