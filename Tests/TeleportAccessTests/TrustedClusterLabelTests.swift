import Foundation
import TeleportAPI
import TeleportAccess
import Testing

/// Which leaf clusters a root user sees and reaches (trusted clusters, issue 20): the leaf's labels
/// against the roles' `cluster_labels`.
@Suite("trusted clusters: cluster_labels (table)")
struct TrustedClusterLabelTests {
    static func role(_ name: String, allow: [String: [String]]? = nil, deny: [String: [String]]? = nil) -> Role {
        var allowBlock = Role.Conditions(logins: ["root"])
        allowBlock.clusterLabels = allow?.mapValues { LabelValues($0) }
        var denyBlock: Role.Conditions?
        if let deny {
            var block = Role.Conditions()
            block.clusterLabels = deny.mapValues { LabelValues($0) }
            denyBlock = block
        }
        return Role(name: name, spec: .init(allow: allowBlock, deny: denyBlock))
    }

    @Test("a leaf's labels against the roles", arguments: [
        // An unlabelled leaf: every user, even with no cluster_labels.
        ([role("plain")], [:], true),
        ([], [:], true),
        // A labelled leaf needs a matching allow selector.
        ([role("plain")], ["env": "prod"], false),
        ([role("prod", allow: ["env": ["prod"]])], ["env": "prod"], true),
        ([role("prod", allow: ["env": ["prod"]])], ["env": "dev"], false),
        ([role("any", allow: ["*": ["*"]])], ["env": "dev"], true),
        ([role("re", allow: ["env": ["^pr.*$"]])], ["env": "prod"], true),
        ([role("plain"), role("prod", allow: ["env": ["prod"]])], ["env": "prod"], true),
        // A matching deny wins, labelled or not.
        ([role("any", allow: ["*": ["*"]]), role("no-prod", deny: ["env": ["prod"]])], ["env": "prod"], false),
        ([role("no-any", deny: ["*": ["*"]])], [:], false),
    ] as [([Role], [String: String], Bool)])
    func visibility(roles: [Role], labels: [String: String], allowed: Bool) throws {
        let decision = try AccessChecker(roles: roles, traits: [:]).checkClusterLabels(labels)
        #expect(decision.allowed == allowed, "\(decision.reasons)")
        #expect(!decision.reasons.isEmpty)
    }

    @Test("an invalid cluster_labels regex is refused at create, naming the field")
    func invalidRegex() {
        let role = Self.role("bad", allow: ["env": ["^(unclosed$"]])
        let error = #expect(throws: TeleportError.self) { try role.validate() }
        #expect(error?.message.contains("spec.allow.cluster_labels.env") == true, "\(String(describing: error))")
    }
}
