extension AnyResource {
    /// The kinds that can be replaced in place (`tctl edit`, conditional updates).
    public static let editableKinds: [String] = [Role.kind, User.kind, Lock.kind, ServerNode.kind]

    /// Why `kind` cannot be edited in place, with what to do instead; nil when it can.
    public static func whyNotEditable(_ kind: String) -> String? {
        switch kind {
        case let kind where editableKinds.contains(kind): nil
        case CertAuthority.kind: "cert_authority cannot be edited: its private keys are never sent out to be edited"
        case ClusterNameResource.kind: "cluster_name cannot be edited: a cluster's name is fixed at its first start"
        case ProvisionToken.kind:
            "tokens cannot be edited: only their hashes are stored; add a new one (tctl tokens add) and revoke the old one (tctl tokens rm)"
        default: "\(kind) cannot be edited (editable: \(editableKinds.joined(separator: ", ")))"
        }
    }
}
