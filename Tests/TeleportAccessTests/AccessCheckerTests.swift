import TeleportAPI
import TeleportAccess
import Testing

/// The role engine, table by table: allow and deny, label matching, traits, TTLs and API rules.
@Suite("role engine")
struct AccessCheckerTests {
    static func role(
        _ name: String, allowLogins: [String]? = nil, allowLabels: [String: [String]]? = nil, denyLogins: [String]? = nil,
        denyLabels: [String: [String]]? = nil, ttl: String? = nil, allowRules: [Role.Rule]? = nil, denyRules: [Role.Rule]? = nil
    ) -> Role {
        Role(
            name: name,
            spec: .init(
                options: ttl.map { .init(maxSessionTTL: $0) },
                allow: .init(logins: allowLogins, nodeLabels: allowLabels?.mapValues(LabelValues.init), rules: allowRules),
                deny: (denyLogins == nil && denyLabels == nil && denyRules == nil)
                    ? nil : .init(logins: denyLogins, nodeLabels: denyLabels?.mapValues(LabelValues.init), rules: denyRules)))
    }

    static let dev = role("dev", allowLogins: ["dev", "{{internal.logins}}"], allowLabels: ["env": ["dev"]])
    static let prod = role("prod", allowLogins: ["ops"], allowLabels: ["env": ["prod"], "team": ["^db-[0-9]+$", "web"]])
    static let everything = role("all", allowLogins: ["root"], allowLabels: ["*": ["*"]])
    static let noRoot = role("no-root", denyLogins: ["root"])
    static let noProd = role("no-prod", denyLabels: ["env": ["prod"]])
    static let bare = role("bare", allowLogins: ["dev"])

    struct Case: Sendable, CustomStringConvertible {
        let roles: [Role]
        let labels: [String: String]
        let login: String
        let allowed: Bool
        let reason: String
        var description: String { "\(roles.map(\.name)) \(labels) as \(login)" }
    }

    static let cases: [Case] = [
        Case(roles: [dev], labels: ["env": "dev"], login: "dev", allowed: true, reason: "login dev is allowed"),
        Case(roles: [dev], labels: ["env": "prod"], login: "dev", allowed: false, reason: "label env=prod is not one of [\"dev\"]"),
        Case(roles: [dev], labels: ["env": "dev"], login: "joe", allowed: true, reason: "login joe is allowed"),  // {{internal.logins}}
        Case(roles: [dev], labels: ["env": "dev"], login: "root", allowed: false, reason: "login root is not among"),
        Case(roles: [dev], labels: [:], login: "dev", allowed: false, reason: "no label \"env\""),
        Case(roles: [prod], labels: ["env": "prod", "team": "db-42"], login: "ops", allowed: true, reason: "allowed"),  // regex
        Case(roles: [prod], labels: ["env": "prod", "team": "web"], login: "ops", allowed: true, reason: "allowed"),  // list
        Case(roles: [prod], labels: ["env": "prod", "team": "db-x"], login: "ops", allowed: false, reason: "team=db-x"),
        Case(roles: [prod], labels: ["env": "prod"], login: "ops", allowed: false, reason: "no label \"team\""),  // every key
        Case(roles: [everything], labels: ["anything": "goes"], login: "root", allowed: true, reason: "allowed"),
        Case(roles: [everything], labels: [:], login: "root", allowed: true, reason: "allowed"),
        Case(roles: [everything, noRoot], labels: ["env": "dev"], login: "root", allowed: false, reason: "deny: login root"),
        Case(roles: [dev, everything, noProd], labels: ["env": "prod"], login: "root", allowed: false, reason: "deny: node_labels"),
        Case(roles: [dev, everything, noProd], labels: ["env": "dev"], login: "dev", allowed: true, reason: "allowed"),
        Case(roles: [bare], labels: ["env": "dev"], login: "dev", allowed: false, reason: "grants no nodes"),
        Case(roles: [], labels: ["env": "dev"], login: "dev", allowed: false, reason: "no roles"),
    ]

    @Test(arguments: cases)
    func sshAccess(_ test: Case) throws {
        let checker = AccessChecker(roles: test.roles, traits: ["internal.logins": ["joe"]])
        let decision = try checker.checkSSH(labels: test.labels, login: test.login)
        #expect(decision.allowed == test.allowed, "\(decision.reasons)")
        #expect(decision.reasons.joined(separator: "\n").contains(test.reason), "\(decision.reasons)")
    }

    @Test func dynamicLabelsCountLikeStaticOnes() throws {
        // A node's labels as the engine sees them: static and command labels merged (ServerNode.allLabels).
        var node = ServerNode(uuid: "u", hostname: "h", addr: "a:1", labels: ["env": "dev"])
        node.spec.cmdLabels = ["team": .init(period: "1m0s", command: ["echo"], result: "db-7")]
        let checker = AccessChecker(roles: [Self.prod], traits: [:])
        #expect(try checker.checkSSH(labels: node.allLabels.merging(["env": "prod"]) { $1 }, login: "ops").allowed)
    }

    @Test func traitsExpandOrVanish() {
        let checker = AccessChecker(roles: [], traits: ["internal.logins": ["joe", "ubuntu"], "external.groups": ["admins"]])
        #expect(checker.expand(["{{internal.logins}}", "root", "{{ external.groups }}"]) == ["joe", "ubuntu", "root", "admins"])
        #expect(checker.expand(["{{internal.nothing}}", "{{oops", "a{{b}}"]) == [], "unknown traits and half templates expand to nothing")
    }

    @Test func invalidRegularExpressionIsAClearError() {
        let broken = Self.role("broken", allowLogins: ["x"], allowLabels: ["env": ["^(unclosed$"]])
        #expect(throws: TeleportError.self) { try AccessChecker(roles: [broken], traits: [:]).checkSSH(labels: ["env": "x"], login: "x") }
    }

    @Test func shortestMaxSessionTTLWins() {
        let long = Self.role("long", ttl: "30h")
        let short = Self.role("short", ttl: "2h")
        #expect(AccessChecker(roles: [long, short], traits: [:]).maxSessionTTL(fallback: 12 * 3600) == 2 * 3600)
        #expect(AccessChecker(roles: [long], traits: [:]).maxSessionTTL(fallback: 12 * 3600) == 12 * 3600)
        #expect(AccessChecker(roles: [Self.dev], traits: [:]).maxSessionTTL(fallback: 3600) == 3600)
    }

    @Test func apiRulesDenyWins() {
        let editor = Self.role("editor", allowRules: [.init(resources: ["user", "role"], verbs: ["*"])])
        let auditor = Self.role("auditor", allowRules: [.init(resources: ["event", "session"], verbs: ["list", "read"])])
        let noDelete = Self.role("no-delete", denyRules: [.init(resources: ["*"], verbs: ["delete"])])
        let checker = AccessChecker(roles: [editor, auditor, noDelete], traits: [:])
        #expect(checker.checkRule(kind: "user", verb: "create").allowed)
        #expect(!checker.checkRule(kind: "user", verb: "delete").allowed)
        #expect(checker.checkRule(kind: "event", verb: "list").allowed)
        #expect(!checker.checkRule(kind: "event", verb: "update").allowed)
        #expect(!checker.checkRule(kind: "token", verb: "read").allowed, "nothing is allowed by default")
    }

    @Test func certificateLoginsAreTheAllowedLessTheDenied() {
        let traits = ["internal.logins": ["joe", "root"]]
        #expect(AccessChecker(roles: [Self.dev, Self.prod], traits: traits).allowedLogins == ["dev", "joe", "root", "ops"])
        #expect(AccessChecker(roles: [Self.dev, Self.noRoot], traits: traits).allowedLogins == ["dev", "joe"], "deny takes a login away")
        #expect(AccessChecker(roles: [], traits: traits).allowedLogins.isEmpty, "no roles, no logins")
        #expect(AccessChecker(roles: [Self.dev], traits: [:]).allowedLogins == ["dev"], "an unknown trait expands to nothing")
    }

    @Test func reachableNodesForTSHList() {
        let checker = AccessChecker(roles: [Self.dev, Self.noProd], traits: ["internal.logins": ["joe"]])
        #expect(checker.canReach(labels: ["env": "dev"], logins: ["joe"]))
        #expect(!checker.canReach(labels: ["env": "prod"], logins: ["joe", "dev"]))
        #expect(!checker.canReach(labels: ["env": "dev"], logins: ["ops"]), "a login the role does not allow")
    }

    /// The list's fast path (no reason text) must answer as the engine does, for every case of
    /// the table, with several logins at once, and with a pattern that is not a valid expression.
    @Test(arguments: cases)
    func reachabilityAgreesWithTheEngine(_ test: Case) throws {
        let checker = AccessChecker(roles: test.roles, traits: ["internal.logins": ["joe"]])
        #expect(NodeReachability(checker: checker, logins: [test.login]).allows(labels: test.labels) == test.allowed)
        for logins in [[test.login, "nobody"], ["nobody", test.login], ["dev", "ops", "root", "joe"], []] {
            #expect(
                NodeReachability(checker: checker, logins: logins).allows(labels: test.labels)
                    == checker.canReach(labels: test.labels, logins: logins), "\(logins)")
        }
    }

    @Test func reachabilityWithABrokenExpression() {
        let broken = Self.role("broken", allowLogins: ["x"], allowLabels: ["env": ["^(unclosed$"]])
        let brokenDeny = Self.role("broken-deny", denyLabels: ["b": ["^(unclosed$"], "a": ["no"]])
        for roles in [[broken], [broken, Self.everything], [Self.everything, broken], [brokenDeny, Self.everything]] {
            let checker = AccessChecker(roles: roles, traits: [:])
            for labels in [["env": "x"], ["a": "no", "b": "x"], ["a": "yes", "b": "x"], [:]] {
                for logins in [["x"], ["root"], ["x", "root"]] {
                    #expect(
                        NodeReachability(checker: checker, logins: logins).allows(labels: labels)
                            == checker.canReach(labels: labels, logins: logins), "\(roles.map(\.name)) \(labels) \(logins)")
                }
            }
        }
    }

    @Test func sessionOptionsTakeAwayButNeverGrant() {
        let noCopy = Role(name: "no-copy", spec: .init(options: Role.Options(portForwarding: false)))
        var fileCopyOff = noCopy
        fileCopyOff.spec.options?.sshFileCopy = false
        #expect(AccessChecker(roles: [Self.dev], traits: [:]).permitsFileCopy)
        #expect(!AccessChecker(roles: [Self.dev, fileCopyOff], traits: [:]).permitsFileCopy)
        #expect(!AccessChecker(roles: [Self.dev, noCopy], traits: [:]).permitsPortForwarding)
        #expect(AccessChecker(roles: [Self.dev], traits: [:]).permitsPortForwarding)
        let agent = Role(name: "agent", spec: .init(options: Role.Options(forwardAgent: true)))
        #expect(AccessChecker(roles: [agent], traits: [:]).permitsAgentForwarding)
        #expect(!AccessChecker(roles: [Self.dev], traits: [:]).permitsAgentForwarding, "forward_agent must be granted")
    }

    @Test func traitNamesOfUsersBecomeInternalTraits() {
        #expect(AccessChecker.templateTraits(["logins": ["a"], "external.groups": ["g"]]) == ["internal.logins": ["a"], "external.groups": ["g"]])
    }

    @Test func explanationsShowTheTemplateExpansion() throws {
        let decision = try AccessChecker(roles: [Self.dev], traits: ["internal.logins": ["joe"]]).checkSSH(labels: ["env": "dev"], login: "joe")
        #expect(decision.reasons == [
            "role dev: allow: node_labels env=[\"dev\"] match and login joe is allowed (logins [\"dev\", \"{{internal.logins}}\"] expand to [\"dev\", \"joe\"])"
        ])
    }
}
