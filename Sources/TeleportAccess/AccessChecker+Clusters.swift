public import TeleportAPI

extension AccessChecker {
    /// May the user see and reach a leaf cluster with these labels (trusted clusters)? A leaf
    /// without labels is open to every user of the root; a labelled one needs some role's
    /// `allow.cluster_labels` to match, and no `deny.cluster_labels` may match.
    public func checkClusterLabels(_ labels: [String: String]) throws -> Decision {
        var reasons: [String] = []
        for role in roles {
            if let selector = role.spec.deny?.clusterLabels, !selector.isEmpty {
                let (matched, why) = try labelsMatch(selector, labels, field: "cluster_labels", noun: "cluster")
                if matched {
                    reasons.append("role \(role.name): deny: \(why)")
                    return Decision(allowed: false, reasons: reasons)
                }
            }
        }
        if labels.isEmpty {
            reasons.append("the leaf cluster has no labels: every user may reach it")
            return Decision(allowed: true, reasons: reasons)
        }
        for role in roles {
            let (matched, why) = try labelsMatch(role.spec.allow?.clusterLabels ?? [:], labels, field: "cluster_labels", noun: "cluster")
            reasons.append("role \(role.name): allow: \(why)")
            if matched { return Decision(allowed: true, reasons: reasons) }
        }
        if roles.isEmpty { reasons.append("the user has no roles") }
        return Decision(allowed: false, reasons: reasons)
    }
}
