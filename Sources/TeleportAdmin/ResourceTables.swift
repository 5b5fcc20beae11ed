import Foundation
import TeleportAPI
import TeleportCrypto

/// `--format=text` tables of each kind.
enum ResourceTables {
    static func render(_ resources: [AnyResource]) -> String {
        var users: [[String]] = []
        var roles: [[String]] = []
        var tokens: [[String]] = []
        var nodes: [[String]] = []
        var cas: [[String]] = []
        var names: [[String]] = []
        var locks: [[String]] = []
        var others: [[String]] = []
        for resource in resources {
            switch resource {
            case .user(let user): users.append([user.name, user.logins.joined(separator: ","), user.spec.roles.joined(separator: ",")])
            case .role(let role): roles.append(roleRow(role))
            case .token(let token):
                tokens.append([
                    token.name, token.spec.roles.map(\.rawValue).joined(separator: ","),
                    token.metadata.expires.map(RFC3339.format) ?? "never",
                ])
            case .node(let node):
                let labels = node.allLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                nodes.append([node.spec.hostname, node.name, node.displayAddress, labels])
            case .certAuthority(let ca):
                let fingerprints = ca.spec.activeKeys.ssh.compactMap { try? SSHPublicKey(authorizedKeyLine: $0.publicKey).fingerprintSHA256 }
                cas.append([ca.spec.clusterName, ca.spec.type.rawValue, fingerprints.joined(separator: ",")])
            case .clusterName(let name): names.append([name.spec.clusterName, name.spec.clusterID])
            case .lock(let lock):
                locks.append([lock.name, lock.spec.target.description, lock.spec.message ?? "", lock.metadata.expires.map(RFC3339.format) ?? "never"])
            case .registered(let value):
                let labels = (value.metadata.labels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                others.append([value.kind, value.name, labels])
            }
        }
        var out: [String] = []
        if !names.isEmpty { out.append(TextTable.render(headers: ["Cluster Name", "Cluster ID"], rows: names)) }
        if !cas.isEmpty { out.append(TextTable.render(headers: ["Cluster Name", "CA Type", "Fingerprint"], rows: cas)) }
        if !roles.isEmpty {
            out.append(TextTable.render(headers: ["Role", "Allowed to login as", "Node Labels", "Access to resources"], rows: roles))
        }
        if !users.isEmpty { out.append(TextTable.render(headers: ["User", "Allowed Logins", "Roles"], rows: users)) }
        if !tokens.isEmpty { out.append(TextTable.render(headers: ["Token", "Type", "Expiry Time"], rows: tokens)) }
        if !nodes.isEmpty { out.append(TextTable.render(headers: ["Node Name", "Node ID", "Address", "Labels"], rows: nodes)) }
        if !locks.isEmpty { out.append(TextTable.render(headers: ["ID", "Target", "Message", "Expires"], rows: locks)) }
        if !others.isEmpty { out.append(TextTable.render(headers: ["Kind", "Name", "Labels"], rows: others)) }
        return out.joined(separator: "\n")
    }

    /// A row of the seed's `tctl get roles` table: the role, the logins it allows, the nodes it
    /// reaches (`<all nodes>` for `'*': '*'`) and its API rules as `resource:verb,verb` pairs.
    static func roleRow(_ role: Role) -> [String] {
        let allow = role.spec.allow
        let logins = allow?.logins?.joined(separator: ",") ?? ""
        return [role.name, logins, nodeLabelsCell(allow?.nodeLabels ?? [:]), rulesCell(allow?.rules ?? [])]
    }

    static func nodeLabelsCell(_ labels: [String: LabelValues]) -> String {
        if labels.count == 1, labels["*"]?.values == ["*"] { return "<all nodes>" }
        return labels.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value.values.joined(separator: "|"))" }.joined(separator: ",")
    }

    /// `node:list,read,session:read`: each resource with its verbs, sorted by resource.
    static func rulesCell(_ rules: [Role.Rule]) -> String {
        rules.flatMap { rule in rule.resources.map { (resource: $0, verbs: rule.verbs.joined(separator: ",")) } }
            .sorted { $0.resource < $1.resource }
            .map { "\($0.resource):\($0.verbs)" }.joined(separator: ",")
    }
}
