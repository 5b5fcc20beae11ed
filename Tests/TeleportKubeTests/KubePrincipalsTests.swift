import TeleportAPI
import TeleportAccess
import Testing

/// The Kubernetes users and groups roles grant on a cluster: kubernetes_labels select the allow
/// blocks, templates expand from the user's traits, deny blocks take principals away.
@Suite("Kubernetes principals from roles")
struct KubePrincipalsTests {
    static func role(_ name: String, allow: Role.Conditions? = nil, deny: Role.Conditions? = nil) -> Role {
        Role(name: name, spec: .init(allow: allow, deny: deny))
    }

    @Test func templatesLabelsAndDenies() throws {
        var devs = Role.Conditions()
        devs.kubernetesLabels = ["env": LabelValues(["dev"])]
        devs.kubernetesGroups = ["{{internal.kubernetes_groups}}", "viewers", "{{external.teams}}"]
        devs.kubernetesUsers = ["{{internal.logins}}"]
        var prod = Role.Conditions()
        prod.kubernetesLabels = ["env": LabelValues(["prod"])]
        prod.kubernetesGroups = ["system:masters"]
        var denyMasters = Role.Conditions()
        denyMasters.kubernetesGroups = ["system:masters", "ops"]
        let traits = ["internal.kubernetes_groups": ["ops", "builders"], "external.teams": ["blue"], "internal.logins": ["alice"]]
        let checker = AccessChecker(
            roles: [Self.role("devs", allow: devs), Self.role("prod", allow: prod), Self.role("no-masters", deny: denyMasters)], traits: traits)
        let dev = try checker.kubePrincipals(labels: ["env": "dev"])
        #expect(dev.groups == ["builders", "viewers", "blue"])
        #expect(dev.users == ["alice"])
        let production = try checker.kubePrincipals(labels: ["env": "prod"])
        #expect(production.groups.isEmpty && production.users.isEmpty)
        #expect(try checker.checkKubeLabels(["env": "dev"]).allowed)
        #expect(try !checker.checkKubeLabels(["env": "staging"]).allowed)
    }

    @Test func denyLabelsHideACluster() throws {
        var allow = Role.Conditions()
        allow.kubernetesLabels = ["*": LabelValues(["*"])]
        allow.kubernetesGroups = ["viewers"]
        var deny = Role.Conditions()
        deny.kubernetesLabels = ["env": LabelValues(["prod"])]
        let checker = AccessChecker(roles: [Self.role("r", allow: allow, deny: deny)], traits: [:])
        let refused = try checker.checkKubeLabels(["env": "prod"])
        #expect(!refused.allowed && refused.reasons.contains { $0.contains("deny") })
        #expect(try checker.checkKubeLabels(["env": "dev"]).allowed)
    }

    @Test func rolesRejectBadKubernetesValues() throws {
        var bad = Role.Conditions()
        bad.kubernetesGroups = ["{{internal.}}"]
        #expect(throws: TeleportError.self) { try Self.role("bad", allow: bad).validate() }
        var regex = Role.Conditions()
        regex.kubernetesLabels = ["env": LabelValues(["^(unclosed$"])]
        #expect(throws: TeleportError.self) { try Self.role("bad", allow: regex).validate() }
    }
}

extension KubePrincipalsTests {
    @Test func podsByNamespaceAndName() throws {
        var allow = Role.Conditions()
        allow.kubernetesLabels = ["env": LabelValues(["dev"])]
        allow.kubernetesGroups = ["viewers"]
        allow.kubernetesResources = [.init(kind: "pod", namespace: "default", name: "^web-[0-9]$"), .init(kind: "*", namespace: "tools", name: "*")]
        var deny = Role.Conditions()
        deny.kubernetesResources = [.init(kind: "pod", namespace: "default", name: "web-9")]
        let checker = AccessChecker(roles: [Self.role("pods", allow: allow, deny: deny)], traits: [:])
        let dev = ["env": "dev"]
        #expect(try checker.checkKubePod(labels: dev, namespace: "default", name: "web-0").allowed)
        #expect(try checker.checkKubePod(labels: dev, namespace: "tools", name: "anything").allowed)
        #expect(try !checker.checkKubePod(labels: dev, namespace: "default", name: "db-0").allowed)
        #expect(try !checker.checkKubePod(labels: dev, namespace: "default", name: "web-9").allowed)
        #expect(try !checker.checkKubePod(labels: ["env": "prod"], namespace: "default", name: "web-0").allowed)
        var open = Role.Conditions()
        open.kubernetesLabels = ["*": LabelValues(["*"])]
        #expect(try AccessChecker(roles: [Self.role("open", allow: open)], traits: [:]).checkKubePod(labels: dev, namespace: "x", name: "y").allowed)
        var badKind = Role.Conditions()
        badKind.kubernetesResources = [.init(kind: "deployment", namespace: "*", name: "*")]
        #expect(throws: TeleportError.self) { try Self.role("bad", allow: badKind).validate() }
    }
}
