public import TeleportAPI
import TeleportAccess
import TeleportAuthClient

extension AccessCommands {
    /// `tctl access explain --root-cluster=ROOT --user=NAME --roles=R1,R2 [--logins=L1,L2]
    /// --node=N --login=L`, on a leaf cluster (trusted clusters, issue 20): why a user of the root
    /// cluster ROOT with those root roles (and login traits) may or may not log in to this
    /// cluster's node, as the leaf decides it: the trust must be enabled, the `trusted_cluster`'s
    /// `role_map` turns the root roles into this cluster's roles (nothing matched: no access), and
    /// those roles are checked against the node as for a local user.
    public static func explainRootUser(
        _ options: AdminConnection.Options, rootCluster: String, user name: String, rootRoles: [String], logins: [String], node reference: String,
        login: String
    ) async throws -> String {
        let client = try AdminConnection.client(options)
        let trusted: TrustedCluster
        do {
            guard let found = try await client.resource(kind: TrustedCluster.kind, name: rootCluster).value as? TrustedCluster else {
                throw TeleportError.notFound("")
            }
            trusted = found
        } catch let error as TeleportError where error.code == .notFound {
            throw TeleportError.notFound(
                "this cluster trusts no root cluster \(rootCluster.debugDescription) (tctl get trusted_cluster lists the roots it trusts)")
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
        let mapped = RoleMap.map(rootRoles, with: trusted.spec.roleMap)
        var roles: [Role] = []
        var missing: [String] = []
        for roleName in mapped {
            if case .role(let role)? = try? await client.resource(kind: Role.kind, name: roleName) {
                roles.append(role)
            } else {
                missing.append(roleName)
            }
        }
        let traits: [String: [String]] = logins.isEmpty ? [:] : ["logins": logins]
        let checker = AccessChecker(roles: roles, traits: AccessChecker.templateTraits(traits))
        let labels = node.allLabels
        let mapText = trusted.spec.roleMap.map { "\($0.remote) -> \($0.local.joined(separator: ","))" }.joined(separator: "; ")
        var lines = [
            "User:    \(name) of root cluster \(trusted.name) (root roles: \(rootRoles.isEmpty ? "none" : rootRoles.joined(separator: ", ")))",
            "Traits:  " + (logins.isEmpty ? "none" : "internal.logins=\(logins)"),
            "Trust:   \(trusted.spec.enabled ? "enabled" : "disabled"); role_map: \(mapText.isEmpty ? "empty" : mapText)",
            "Mapped:  " + (mapped.isEmpty ? "no roles" : mapped.joined(separator: ", ")),
            "Node:    \(node.spec.hostname) (\(node.name)): \(labelText(labels))", "Login:   \(login)", "",
        ]
        var allowed = false
        if !trusted.spec.enabled {
            lines.append("  the trust with \(trusted.name) is disabled: this cluster accepts none of its users (tctl create -f with enabled: true)")
        } else if mapped.isEmpty {
            lines.append("  role_map maps none of the root roles to a role of this cluster: the user is refused here (audited as trusted_cluster.user.denied)")
        } else {
            for name in missing { lines.append("  role \(name): does not exist here (grants nothing)") }
            if roles.isEmpty {
                lines.append("  no mapped role exists here: the user is refused")
            } else {
                let decision = try checker.checkSSH(labels: labels, login: login)
                lines += decision.reasons.map { "  " + $0 }
                if !checker.allowedLogins.contains(login), !decision.allowed {
                    lines.append("  (the mapped roles allow the logins \(checker.allowedLogins))")
                }
                allowed = decision.allowed
            }
        }
        lines.append("")
        lines.append("Verdict: " + (allowed ? "ALLOWED" : "DENIED"))
        return lines.map(TerminalText.escape).joined(separator: "\n") + "\n"
    }
}
