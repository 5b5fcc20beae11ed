import TeleportAPI
import TeleportAccess
import Testing

/// The role engine for databases: `db_labels` decide which databases a user sees; `db_users` and
/// `db_names` (templates expanded, `*` for any) whom and what they may connect as; deny wins.
@Suite("role engine: databases")
struct DatabaseAccessTests {
    static func role(
        _ name: String, labels: [String: [String]]? = nil, users: [String]? = nil, names: [String]? = nil,
        denyLabels: [String: [String]]? = nil, denyUsers: [String]? = nil, denyNames: [String]? = nil
    ) -> Role {
        Role(
            name: name,
            spec: .init(
                allow: .init(dbLabels: labels?.mapValues(LabelValues.init), dbUsers: users, dbNames: names),
                deny: (denyLabels == nil && denyUsers == nil && denyNames == nil)
                    ? nil : .init(dbLabels: denyLabels?.mapValues(LabelValues.init), dbUsers: denyUsers, dbNames: denyNames)))
    }

    @Test("db_labels select the databases a user sees; a deny selector hides one; no db_labels, no databases")
    func labelsSelectDatabases() throws {
        let dev = AccessChecker(roles: [Self.role("dev", labels: ["env": ["dev"]])], traits: [:])
        #expect(try dev.checkDatabaseLabels(["env": "dev"]).allowed)
        let prod = try dev.checkDatabaseLabels(["env": "prod"])
        #expect(!prod.allowed)
        #expect(prod.reasons == ["role dev: allow: label env=prod is not one of [\"dev\"]"])
        let any = AccessChecker(
            roles: [Self.role("all", labels: ["*": ["*"]]), Self.role("no-secret", denyLabels: ["tier": ["^secret.*$"]])], traits: [:])
        #expect(try any.checkDatabaseLabels(["env": "prod"]).allowed)
        let hidden = try any.checkDatabaseLabels(["tier": "secret-1"])
        #expect(!hidden.allowed)
        #expect(hidden.reasons.last?.hasPrefix("role no-secret: deny: db_labels") == true)
        let nodesOnly = AccessChecker(roles: [Role(name: "ssh", spec: .init(allow: .init(logins: ["root"], nodeLabels: ["*": LabelValues(["*"])])))], traits: [:])
        #expect(try nodesOnly.checkDatabaseLabels([:]).reasons == ["role ssh: allow: no db_labels (grants no databases)"])
    }

    @Test("db_users and db_names with templates: alice but not postgres; deny wins")
    func usersAndNames() throws {
        let role = Self.role("db", labels: ["env": ["dev"]], users: ["{{internal.db_users}}"], names: ["postgres", "{{external.db_names}}"])
        let checker = AccessChecker(roles: [role], traits: ["internal.db_users": ["alice"], "external.db_names": ["sales"]])
        #expect(try checker.checkDatabase(labels: ["env": "dev"], user: "alice", name: "postgres").allowed)
        #expect(try checker.checkDatabase(labels: ["env": "dev"], user: "alice", name: "sales").allowed)
        let asPostgres = try checker.checkDatabase(labels: ["env": "dev"], user: "postgres", name: "postgres")
        #expect(!asPostgres.allowed)
        #expect(asPostgres.reasons.last?.contains("db user postgres is not among [\"alice\"]") == true)
        let otherName = try checker.checkDatabase(labels: ["env": "dev"], user: "alice", name: "hr")
        #expect(!otherName.allowed)
        #expect(otherName.reasons.last?.contains("db name hr is not among") == true)
        #expect(try !checker.checkDatabase(labels: ["env": "prod"], user: "alice", name: "postgres").allowed)
        // An unknown trait expands to nothing, never to its literal text.
        let noTraits = AccessChecker(roles: [role], traits: [:])
        #expect(try !noTraits.checkDatabase(labels: ["env": "dev"], user: "{{internal.db_users}}", name: "postgres").allowed)

        let denied = AccessChecker(
            roles: [Self.role("any", labels: ["*": ["*"]], users: ["*"], names: ["*"]), Self.role("no-root", denyUsers: ["postgres"])], traits: [:])
        #expect(try denied.checkDatabase(labels: [:], user: "alice", name: "x").allowed)
        let deniedRoot = try denied.checkDatabase(labels: [:], user: "postgres", name: "x")
        #expect(!deniedRoot.allowed)
        #expect(deniedRoot.reasons == ["role no-root: deny: db user postgres is denied"])
    }

    @Test("no db name (a MySQL session without a default database): db_names are not checked, but a deny of * refuses")
    func noDatabaseName() throws {
        let role = Self.role("db", labels: ["env": ["dev"]], users: ["alice"], names: ["sales"])
        let checker = AccessChecker(roles: [role], traits: [:])
        let unnamed = try checker.checkDatabase(labels: ["env": "dev"], user: "alice", name: nil)
        #expect(unnamed.allowed && unnamed.reasons.last?.contains("(no db name)") == true)
        #expect(try !checker.checkDatabase(labels: ["env": "dev"], user: "bob", name: nil).allowed)
        #expect(try !checker.checkDatabase(labels: ["env": "dev"], user: "alice", name: "hr").allowed)
        let noNames = AccessChecker(roles: [role, Self.role("no-db", denyNames: ["*"])], traits: [:])
        #expect(try !noNames.checkDatabase(labels: ["env": "dev"], user: "alice", name: nil).allowed)
    }

    @Test("role validation: bad db_labels expressions and db_users/db_names templates are refused with the field named")
    func validation() throws {
        #expect(throws: Never.self) { try Self.role("ok", labels: ["env": ["^dev-.*$"]], users: ["{{internal.db_users}}", "alice", "*"], names: ["postgres"]).validate() }
        let cases: [(Role, String)] = [
            (Self.role("r", labels: ["env": ["^(dev$"]]), "spec.allow.db_labels.env"),
            (Self.role("r", users: ["{{internal.db_users"]), "spec.allow.db_users"),
            (Self.role("r", users: ["{{secret.x}}"]), "is not a template"),
            (Self.role("r", denyNames: ["two words"]), "spec.deny.db_names"),
            (Self.role("r", names: [""]), "spec.allow.db_names"),
        ]
        for (role, message) in cases {
            do {
                try role.validate()
                Issue.record("\(role.spec) was accepted")
            } catch let error as TeleportError {
                #expect(error.message.contains(message), "\(error.message)")
            }
        }
    }
}
