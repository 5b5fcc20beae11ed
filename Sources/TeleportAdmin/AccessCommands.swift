public import TeleportAPI
import TeleportAccess
import TeleportAuthClient

/// `tctl access explain`: why a user may or may not log in to a node as a login, connect to a
/// database as a database user, or open an app, role by role.
public enum AccessCommands {
    /// The explanation as text, and whether access is allowed.
    public static func explain(_ options: AdminConnection.Options, user name: String, node reference: String, login: String) async throws -> String {
        let client = try AdminConnection.client(options)
        guard case .user(let user) = try await client.resource(kind: User.kind, name: name) else {
            throw TeleportError.notFound("no user \(name.debugDescription)")
        }
        let nodes = try await client.nodes()
        let matches = nodes.filter { $0.name == reference || $0.spec.hostname == reference }
        guard let node = matches.first else {
            throw TeleportError.notFound("no registered node is named \(reference.debugDescription) (tctl nodes ls lists them)")
        }
        guard matches.count == 1 else {
            throw TeleportError.badParameter(
                "\(reference.debugDescription) matches \(matches.count) nodes (\(matches.map(\.name).joined(separator: ", "))); use the node's UUID")
        }
        let (checker, missing) = try await checker(for: user, client)
        let labels = node.allLabels
        let decision = try checker.checkSSH(labels: labels, login: login)
        var notes: [String] = []
        if !checker.allowedLogins.contains(login), decision.allowed == false {
            notes.append("(certificates list the logins \(checker.allowedLogins))")
        }
        return render(
            user: user, target: ["Node:    \(node.spec.hostname) (\(node.name)): \(labelText(labels))", "Login:   \(login)"],
            missing: missing, decision: decision, notes: notes)
    }

    /// Why `user` may or may not connect to the registered database `database` as the database user
    /// `dbUser` (and database `dbName`; PostgreSQL's default is the database named like the user), with
    /// the same rules the database service applies (`db_labels`, `db_users`, `db_names`, deny first).
    public static func explainDatabase(
        _ options: AdminConnection.Options, user name: String, database reference: String, dbUser: String, dbName: String?
    ) async throws -> String {
        let client = try AdminConnection.client(options)
        guard case .user(let user) = try await client.resource(kind: User.kind, name: name) else {
            throw TeleportError.notFound("no user \(name.debugDescription)")
        }
        guard let database = try await client.databases().first(where: { $0.name == reference }) else {
            throw TeleportError.notFound("no registered database is named \(reference.debugDescription) (tsh db ls or tctl get db_server lists them)")
        }
        let (checker, missing) = try await checker(for: user, client)
        let labels = database.allLabels
        let resolvedName = dbName ?? (database.spec.protocol == .postgres ? dbUser : "")
        let visible = try checker.checkDatabaseLabels(labels)
        let decision = try checker.checkDatabase(labels: labels, user: dbUser, name: resolvedName)
        var notes: [String] = []
        if !visible.allowed { notes.append("(the database is not in the user's tsh db ls: no role's db_labels match it)") }
        return render(
            user: user,
            target: [
                "Database: \(database.name) (\(database.spec.protocol.rawValue)): \(labelText(labels))",
                "DB user: \(dbUser)", "DB name: \(resolvedName.isEmpty ? "(none)" : resolvedName)",
            ],
            missing: missing, decision: decision, notes: notes)
    }

    /// Why `user` may or may not open the registered app `app` (`tsh apps login`, the browser
    /// launch, each connection through the proxy and the application service): the roles'
    /// `app_labels` against the app's labels, deny first, as `AccessChecker.checkAppLabels` decides
    /// it everywhere.
    public static func explainApp(_ options: AdminConnection.Options, user name: String, app reference: String) async throws -> String {
        let client = try AdminConnection.client(options)
        guard case .user(let user) = try await client.resource(kind: User.kind, name: name) else {
            throw TeleportError.notFound("no user \(name.debugDescription)")
        }
        guard let app = try await client.apps().first(where: { $0.name == reference }) else {
            throw TeleportError.notFound("no registered app is named \(reference.debugDescription) (tctl get app_server lists them)")
        }
        let (checker, missing) = try await checker(for: user, client)
        let labels = app.allLabels
        let decision = try checker.checkAppLabels(labels)
        let kind = AppURI.isTCP(app.spec.uri) ? "TCP app" : "web app"
        return render(
            user: user,
            target: ["App:     \(app.name) (\(kind) at \(app.spec.publicAddr)): \(labelText(labels))"],
            missing: missing, decision: decision, notes: [])
    }

    /// Why `user` may or may not use the registered Kubernetes cluster `cluster` (`tsh kube login`,
    /// kubectl through the proxy): the roles' `kubernetes_labels` against the cluster's labels,
    /// deny first, then the Kubernetes users and groups the requests would be impersonated as
    /// (`kubernetes_users`/`kubernetes_groups`, templates expanded, less denied ones), and with
    /// `pod` (`NAMESPACE/NAME`) the roles' `kubernetes_resources` for that pod, as the proxy and the
    /// Kubernetes service decide it.
    public static func explainKube(
        _ options: AdminConnection.Options, user name: String, kubeCluster reference: String, pod: String?
    ) async throws -> String {
        var podName: (namespace: String, name: String)?
        if let pod {
            let parts = pod.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TeleportError.badParameter("--kube-pod takes NAMESPACE/NAME, e.g. default/web-0 (got \(pod.debugDescription))")
            }
            podName = (parts[0], parts[1])
        }
        let client = try AdminConnection.client(options)
        guard case .user(let user) = try await client.resource(kind: User.kind, name: name) else {
            throw TeleportError.notFound("no user \(name.debugDescription)")
        }
        guard let cluster = try await client.kubeServers().first(where: { $0.name == reference }) else {
            throw TeleportError.notFound(
                "no registered Kubernetes cluster is named \(reference.debugDescription) (tsh kube ls or tctl get kube_server lists them)")
        }
        let (checker, missing) = try await checker(for: user, client)
        let labels = cluster.allLabels
        var decision = try checker.checkKubeLabels(labels)
        var notes: [String] = []
        var target = ["Kubernetes cluster: \(cluster.name): \(labelText(labels))"]
        if decision.allowed {
            let principals = try checker.kubePrincipals(labels: labels)
            notes.append(
                "requests go as Kubernetes user \(principals.users.isEmpty ? "(the Teleport user's name)" : principals.users.joined(separator: ", "))"
                    + " in groups \(principals.groups.isEmpty ? "(none)" : principals.groups.joined(separator: ", "))")
            if principals.users.isEmpty && principals.groups.isEmpty {
                decision = AccessChecker.Decision(
                    allowed: false, reasons: decision.reasons + ["no role grants kubernetes_users or kubernetes_groups on this cluster"])
            }
        }
        if let podName {
            target.append("Pod:     \(podName.namespace)/\(podName.name)")
            if decision.allowed {
                let pod = try checker.checkKubePod(labels: labels, namespace: podName.namespace, name: podName.name)
                decision = AccessChecker.Decision(allowed: pod.allowed, reasons: decision.reasons + pod.reasons)
            }
        }
        return render(user: user, target: target, missing: missing, decision: decision, notes: notes)
    }

    /// The user's roles as they are now (a role that no longer exists grants nothing and is named).
    static func checker(for user: User, _ client: AuthClient) async throws -> (AccessChecker, missing: [String]) {
        var roles: [Role] = []
        var missing: [String] = []
        for roleName in user.spec.roles {
            if case .role(let role)? = try? await client.resource(kind: Role.kind, name: roleName) {
                roles.append(role)
            } else {
                missing.append(roleName)
            }
        }
        return (AccessChecker(roles: roles, traits: AccessChecker.templateTraits(user.spec.traits)), missing)
    }

    static func labelText(_ labels: [String: String]) -> String {
        labels.isEmpty ? "no labels" : labels.keys.sorted().map { "\($0)=\(labels[$0] ?? "")" }.joined(separator: ", ")
    }

    static func render(user: User, target: [String], missing: [String], decision: AccessChecker.Decision, notes: [String]) -> String {
        var lines = [
            "User:    \(user.name) (roles: \(user.spec.roles.isEmpty ? "none" : user.spec.roles.joined(separator: ", ")))",
            "Traits:  " + (user.spec.traits.isEmpty
                ? "none" : user.spec.traits.keys.sorted().map { "internal.\($0)=\(user.spec.traits[$0] ?? [])" }.joined(separator: ", ")),
        ] + target + [""]
        for name in missing { lines.append("  role \(name): does not exist (grants nothing)") }
        lines += decision.reasons.map { "  " + $0 }
        lines += notes.map { "  " + $0 }
        lines.append("")
        lines.append("Verdict: " + (decision.allowed ? "ALLOWED" : "DENIED"))
        // Names, traits and labels come from the cluster: each line is shown escaped.
        return lines.map(TerminalText.escape).joined(separator: "\n") + "\n"
    }
}
