public import TeleportAPI
import TeleportAccess
import TeleportAuthClient

/// `tctl access explain`: why a user may or may not log in to a node as a login, role by role.
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
        var roles: [Role] = []
        var missing: [String] = []
        for roleName in user.spec.roles {
            if case .role(let role)? = try? await client.resource(kind: Role.kind, name: roleName) {
                roles.append(role)
            } else {
                missing.append(roleName)
            }
        }
        let checker = AccessChecker(roles: roles, traits: AccessChecker.templateTraits(user.spec.traits))
        let labels = node.allLabels
        let decision = try checker.checkSSH(labels: labels, login: login)
        return render(
            user: user, node: node, labels: labels, login: login, missing: missing, decision: decision,
            certificateLogins: checker.allowedLogins)
    }

    static func render(
        user: User, node: ServerNode, labels: [String: String], login: String, missing: [String], decision: AccessChecker.Decision,
        certificateLogins: [String]
    ) -> String {
        let labelText = labels.isEmpty ? "no labels" : labels.keys.sorted().map { "\($0)=\(labels[$0] ?? "")" }.joined(separator: ", ")
        var lines = [
            "User:    \(user.name) (roles: \(user.spec.roles.isEmpty ? "none" : user.spec.roles.joined(separator: ", ")))",
            "Traits:  " + (user.spec.traits.isEmpty
                ? "none" : user.spec.traits.keys.sorted().map { "internal.\($0)=\(user.spec.traits[$0] ?? [])" }.joined(separator: ", ")),
            "Node:    \(node.spec.hostname) (\(node.name)): \(labelText)",
            "Login:   \(login)",
            "",
        ]
        for name in missing { lines.append("  role \(name): does not exist (grants nothing)") }
        lines += decision.reasons.map { "  " + $0 }
        if !certificateLogins.contains(login), decision.allowed == false {
            lines.append("  (certificates list the logins \(certificateLogins))")
        }
        lines.append("")
        lines.append("Verdict: " + (decision.allowed ? "ALLOWED" : "DENIED"))
        // Names, traits and labels come from the cluster: each line is shown escaped.
        return lines.map(TerminalText.escape).joined(separator: "\n") + "\n"
    }
}
