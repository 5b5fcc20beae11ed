import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// `tctl get roles` as a table, `tctl edit`, `tctl create` all or nothing, users' roles that must
/// exist, and roles that cannot be removed while held: against a real cluster.
@Suite("tctl resources", .serialized)
struct ResourceCommandTests {
    static let devRole = """
        kind: role
        version: v7
        metadata:
          name: dev
        spec:
          allow:
            logins: [olduser, ubuntu]
            node_labels:
              env: [staging, prod]
            rules:
            - resources: [session, node]
              verbs: [list, read]
          deny:
            logins: [root]
        """

    func errorLine(_ result: CommandResult) -> String {
        result.stderr.split(separator: "\n").last { $0.hasPrefix("ERROR: ") }.map(String.init) ?? ""
    }

    /// The cells of a table row: columns are separated by at least two spaces.
    func cells(_ line: String) -> [String] {
        line.components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func write(_ text: String, _ name: String, in cluster: ClusterFixture) throws -> String {
        let url = cluster.directory.appendingPathComponent(name)
        try TestSupport.write(text, to: url)
        return url.path
    }

    /// The stored role `name`, or nil when there is none.
    func role(_ name: String, _ cluster: ClusterFixture) async throws -> Role? {
        let result = try await cluster.tctl(["get", "role/\(name)"])
        guard result.exitCode == 0 else { return nil }
        guard case .role(let role) = try ResourceCodec.decodeDocuments(result.stdout, source: "tctl get").first else { return nil }
        return role
    }

    func roleNames(_ cluster: ClusterFixture) async throws -> [String] {
        let result = try await cluster.tctl(["get", "roles"])
        try #require(result.exitCode == 0, "\(result)")
        return try ResourceCodec.decodeDocuments(result.stdout, source: "tctl get").map(\.name).sorted()
    }

    static let connectors = """
        kind: github
        version: v3
        metadata:
          name: myteam
        spec:
          client_id: abc
          client_secret: github-secret-value
          display: GitHub
          redirect_url: https://proxy.example.com:3080/v1/webapi/github/callback
          teams_to_logins:
          - {organization: octocats, team: admins, logins: [root], kubernetes_groups: ["system:masters"]}
        ---
        kind: oidc
        version: v3
        metadata:
          name: okta
        spec:
          issuer_url: https://example.okta.com
          client_id: id
          client_secret: oidc-secret-value
          redirect_url: https://proxy.example.com:3080/v1/webapi/oidc/callback
          claims_to_roles: [{claim: groups, value: admins, roles: [access]}]
        """

    @Test("connectors: tctl create, get connectors (secrets only with --with-secrets), rm github/NAME; bad URLs refused", .timeLimit(.minutes(3)))
    func connectors() async throws {
        try await withCluster(try ClusterFixture()) { cluster in
            try await cluster.start()
            let created = try await cluster.tctl(["create", try write(Self.connectors, "connectors.yaml", in: cluster)])
            #expect(created.exitCode == 0, "\(created)")
            let listed = try await cluster.tctl(["get", "connectors"])
            #expect(listed.exitCode == 0 && listed.stdout.contains("name: myteam") && listed.stdout.contains("name: okta"), "\(listed)")
            #expect(!listed.stdout.contains("secret-value"), "client secrets are hidden: \(listed.stdout)")
            let secrets = try await cluster.tctl(["get", "oidc/okta", "--with-secrets"])
            #expect(secrets.stdout.contains("oidc-secret-value"), "\(secrets)")
            let removed = try await cluster.tctl(["rm", "github/myteam"])
            #expect(removed.exitCode == 0, "\(removed)")
            let after = try await cluster.tctl(["get", "connectors"])
            #expect(!after.stdout.contains("myteam") && after.stdout.contains("okta"), "\(after)")
            let insecure = Self.connectors.replacingOccurrences(of: "https://example.okta.com", with: "http://example.okta.com")
                .replacingOccurrences(of: "name: myteam", with: "name: other")
            let refused = try await cluster.tctl(["create", try write(insecure, "insecure.yaml", in: cluster)])
            #expect(refused.exitCode != 0 && errorLine(refused).contains("issuer_url") && errorLine(refused).contains("https"), "\(refused)")
        }
    }

    @Test("tctl get roles --format text prints the seed's table; the default stays YAML", .timeLimit(.minutes(3)))
    func rolesTable() async throws {
        try await withCluster(try ClusterFixture()) { cluster in
            try await cluster.start()
            #expect(try await cluster.tctl(["create", try write(Self.devRole, "dev.yaml", in: cluster)]).exitCode == 0)

            let table = try await cluster.tctl(["get", "roles", "--format", "text"])
            #expect(table.exitCode == 0, "\(table)")
            let lines = table.stdout.split(separator: "\n").map(String.init)
            try #require(lines.count >= 4, "\(table.stdout)")
            let headers = ["Role", "Allowed to login as", "Node Labels", "Access to resources"]
            #expect(cells(lines[0]) == headers, "\(table.stdout)")
            #expect(cells(lines[1]).map(\.count) == headers.map(\.count), "a dashed rule under each header")
            let access = try #require(lines.first { $0.hasPrefix("access ") })
            #expect(cells(access) == ["access", "{{internal.logins}}", "<all nodes>"], "\(access)")
            #expect(lines.allSatisfy { !$0.hasSuffix(" ") }, "no trailing spaces: \(table.stdout)")
            let dev = try #require(lines.first { $0.hasPrefix("dev ") })
            #expect(cells(dev) == ["dev", "olduser,ubuntu", "env=staging|prod", "node:list,read,session:list,read"], "\(dev)")
            // Columns line up under their headers.
            let column = try #require(lines[0].range(of: "Access to resources")).lowerBound.utf16Offset(in: lines[0])
            #expect(dev.dropFirst(column).hasPrefix("node:list,read"), "\(table.stdout)")

            let yaml = try await cluster.tctl(["get", "roles"])
            #expect(yaml.stdout.hasPrefix("kind: role\n"), "\(yaml.stdout)")
            let names = try ResourceCodec.decodeDocuments(yaml.stdout, source: "yaml").map(\.name)
            #expect(names.contains("access") && names.contains("dev"), "\(names)")
            let one = try await cluster.tctl(["get", "role/dev", "--format", "text"])
            #expect(one.stdout.split(separator: "\n").count == 3 && one.stdout.contains("olduser,ubuntu"), "\(one)")
            await cluster.stop()
        }
    }

    @Test("tctl edit: saves a change, writes nothing for an unchanged file or a bad edit, refuses a concurrent change",
        .timeLimit(.minutes(3)))
    func edit() async throws {
        try await withCluster(try ClusterFixture()) { cluster in
            try await cluster.start()
            #expect(try await cluster.tctl(["create", try write(Self.devRole, "dev.yaml", in: cluster)]).exitCode == 0)
            let work = cluster.directory.path
            let tctl = try ClusterFixture.binary("tctl")
            func edit(_ script: String, _ reference: String = "role/dev") async throws -> CommandResult {
                let path = try write("#!/bin/sh\nset -e\n" + script, "editor.sh", in: cluster)
                try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: path)
                return try await TestSupport.run(
                    tctl, ["-c", cluster.configURL.path, "edit", reference],
                    environment: ["EDITOR": path, "WORK": work, "TCTL": tctl, "CONFIG": cluster.configURL.path, "TMPDIR": work])
            }

            // A change is saved; the file was private and is gone afterwards.
            let saved = try await edit(
                """
                echo "$1" > "$WORK/edited-path"
                stat -c %a "$1" > "$WORK/file-mode"
                stat -c %a "$(dirname "$1")" > "$WORK/dir-mode"
                sed -i 's/olduser/newuser/' "$1"
                """)
            #expect(saved.exitCode == 0, "\(saved)")
            #expect(saved.stdout == "role \"dev\" has been updated\n")
            #expect(try await role("dev", cluster)?.spec.allow?.logins == ["newuser", "ubuntu"])
            #expect(try TestSupport.read(cluster.directory.appendingPathComponent("file-mode")).hasPrefix("600"))
            #expect(try TestSupport.read(cluster.directory.appendingPathComponent("dir-mode")).hasPrefix("700"))
            let editedPath = try TestSupport.read(cluster.directory.appendingPathComponent("edited-path"))
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(editedPath.hasPrefix(work + "/tctl-edit-") && editedPath.hasSuffix("/role-dev.yaml"), "\(editedPath)")
            #expect(!FileManager.default.fileExists(atPath: editedPath))

            // Unchanged: nothing is written (the revision stays).
            let before = try #require(try await role("dev", cluster))
            let unchanged = try await edit("true")
            #expect(unchanged.exitCode == 0, "\(unchanged)")
            #expect(unchanged.stdout == "no changes made to role \"dev\"\n")
            let reformatted = try await edit("echo '# a comment changes the text, not the role' >> \"$1\"")
            #expect(reformatted.stdout == "no changes made to role \"dev\"\n", "\(reformatted)")
            #expect(try await role("dev", cluster)?.metadata.revision == before.metadata.revision)

            // A bad edit is refused with the create checks, names the cause, keeps the copy.
            let bad = try await edit("sed -i 's/node_labels:/nodes_labels:/' \"$1\"")
            #expect(bad.exitCode != 0)
            #expect(errorLine(bad).contains("unknown field \"spec.allow.nodes_labels\""), "\(bad)")
            #expect(errorLine(bad).contains("your edited copy is kept in "), "\(bad)")
            let renamed = try await edit("sed -i 's/name: dev/name: dev2/' \"$1\"")
            #expect(renamed.exitCode != 0)
            #expect(errorLine(renamed).contains("must hold role \"dev\" alone"), "\(renamed)")
            let failing = try await edit("sed -i 's/newuser/lost/' \"$1\"; exit 3")
            #expect(failing.exitCode != 0)
            #expect(errorLine(failing).contains("exited with status 3; nothing was saved"), "\(failing)")
            #expect(try await role("dev", cluster)?.metadata.revision == before.metadata.revision)

            // Someone else changes the role while the editor is open: the save is refused.
            let other = Self.devRole.replacingOccurrences(of: "[olduser, ubuntu]", with: "[otheruser]")
            let otherPath = try write(other, "other.yaml", in: cluster)
            let conflict = try await edit(
                """
                "$TCTL" -c "$CONFIG" create -f \(otherPath) > /dev/null
                sed -i 's/newuser/mine/' "$1"
                """)
            #expect(conflict.exitCode != 0)
            let line = errorLine(conflict)
            #expect(line.contains("role \"dev\" was changed on the server while it was being edited; nothing was saved"), "\(conflict)")
            #expect(conflict.stderr.split(separator: "\n").count == 1, "one line: \(conflict.stderr)")
            #expect(try await role("dev", cluster)?.spec.allow?.logins == ["otheruser"], "the other change stays")
            let kept = try #require(line.range(of: "kept in ").map { String(line[$0.upperBound...]).dropLast() })
            #expect(try TestSupport.read(URL(fileURLWithPath: String(kept))).contains("- mine"), "\(kept)")

            // The check is by revision: a rewrite with the same content while the editor is open
            // is a change too (the server compares and swaps on the revision that was read).
            let rewrite = try await edit(
                """
                "$TCTL" -c "$CONFIG" get role/dev > "$WORK/same.yaml"
                "$TCTL" -c "$CONFIG" create -f "$WORK/same.yaml" > /dev/null
                sed -i 's/otheruser/mine/' "$1"
                """)
            #expect(rewrite.exitCode != 0)
            #expect(errorLine(rewrite).contains("was changed on the server while it was being edited"), "\(rewrite)")
            #expect(try await role("dev", cluster)?.spec.allow?.logins == ["otheruser"])

            // Kinds that cannot be edited, and names that do not exist.
            let ca = try await edit("true", "cert_authority/user")
            #expect(ca.exitCode != 0 && errorLine(ca).contains("cert_authority cannot be edited"), "\(ca)")
            let missing = try await edit("true", "role/nosuch")
            #expect(missing.exitCode != 0 && errorLine(missing).contains("role \"nosuch\" is not found"), "\(missing)")
            await cluster.stop()
        }
    }

    @Test("tctl create refuses bad resources with one line naming the cause and applies nothing", .timeLimit(.minutes(3)))
    func createBadInput() async throws {
        try await withCluster(try ClusterFixture()) { cluster in
            try await cluster.start()
            let presets = try await roleNames(cluster)
            let role = { (name: String, allow: String) in
                "kind: role\nversion: v7\nmetadata:\n  name: \(name)\nspec:\n  allow:\n\(allow)"
            }
            let bomb = TestSupport.billionLaughsYAML
            let huge = role("huge", "    logins: [a]\n") + "\n" + String(repeating: "# ten megabytes of comments\n", count: 10 * 1024 * 1024 / 28)
            let cases: [(name: String, yaml: String, expected: [String])] = [
                ("unknown-field", role("r1", "    nodes_labels:\n      env: prod\n"), ["unknown field \"spec.allow.nodes_labels\""]),
                ("labels-list", role("r1", "    node_labels: [a, b]\n"), ["spec.allow.node_labels: expected a mapping"]),
                ("bad-regex", role("r1", "    node_labels:\n      env: '^(prod$'\n"), ["spec.allow.node_labels.env", "not a valid regular expression"]),
                ("unknown-kind", "kind: frobnicator\nmetadata:\n  name: f\nspec: {}\n", ["unknown resource kind \"frobnicator\""]),
                ("bomb", bomb, ["anchors and aliases", "not accepted"]),
                ("huge", huge, ["larger than 1048576 bytes"]),
                (
                    "third-invalid",
                    [role("r1", "    logins: [a]\n"), role("r2", "    logins: [b]\n"), role("r3", "    logins: x\n")].joined(separator: "---\n"),
                    ["(document 3)", "spec.allow.logins: expected a list"]
                ),
                (
                    "third-unknown-role",
                    [role("r1", "    logins: [a]\n"), role("r2", "    logins: [b]\n"),
                     "kind: user\nmetadata:\n  name: u3\nspec:\n  roles: [r1, ghost]\n  traits: {logins: [u3]}\n"].joined(separator: "---\n"),
                    ["document 3 of 3: ", "user \"u3\": role \"ghost\" does not exist", "tctl get roles", "nothing was written"]
                ),
                (
                    "third-exists",
                    [role("r1", "    logins: [a]\n"), role("r2", "    logins: [b]\n"), role("access", "    logins: [c]\n")].joined(separator: "---\n"),
                    ["document 3 of 3: role \"access\" already exists", "nothing was written"]
                ),
            ]
            for (name, yaml, expected) in cases {
                let path = try write(yaml, "\(name).yaml", in: cluster)
                let started = ContinuousClock.now
                let result = try await cluster.tctl(["create", path])
                #expect(ContinuousClock.now - started < .seconds(10), "\(name) took too long")
                #expect(result.exitCode != 0, "\(name): \(result)")
                #expect(result.stderr.split(separator: "\n").count == 1, "\(name): one line: \(result.stderr)")
                for fragment in expected {
                    #expect(errorLine(result).contains(fragment), "\(name): \(fragment) missing in \(result)")
                }
                #expect(try await roleNames(cluster) == presets, "\(name) wrote something")
            }
            #expect(try await cluster.tctl(["get", "user/u3"]).exitCode != 0, "no user was written")

            // The same multi-document file with the role defined is created whole, users after roles.
            let good = [role("r1", "    logins: [a]\n"), role("ghost", "    logins: [b]\n"),
                        "kind: user\nmetadata:\n  name: u3\nspec:\n  roles: [r1, ghost]\n  traits: {logins: [u3]}\n"].joined(separator: "---\n")
            let created = try await cluster.tctl(["create", try write(good, "good.yaml", in: cluster)])
            #expect(created.exitCode == 0, "\(created)")
            #expect(created.stdout == "role \"r1\" has been created\nrole \"ghost\" has been created\nuser \"u3\" has been created\n")
            #expect(try await roleNames(cluster) == (presets + ["ghost", "r1"]).sorted())
            let again = try await cluster.tctl(["create", "-f", try write(good, "good.yaml", in: cluster)])
            #expect(again.stdout.contains("role \"r1\" has been updated"), "\(again)")
            await cluster.stop()
        }
    }

    @Test("users add/update refuse roles that do not exist; rm of a role that users hold is refused", .timeLimit(.minutes(3)))
    func usersAndRoleReferences() async throws {
        try await withCluster(try ClusterFixture()) { cluster in
            try await cluster.start()
            let presets = try await roleNames(cluster)
            #expect(try await cluster.tctl(["create", try write(Self.devRole, "dev.yaml", in: cluster)]).exitCode == 0)
            let unused = "kind: role\nmetadata:\n  name: unused\nspec:\n  allow:\n    logins: [x]\n"
            #expect(try await cluster.tctl(["create", try write(unused, "unused.yaml", in: cluster)]).exitCode == 0)

            let ghost = try await cluster.tctl(["users", "add", "ann", "--roles=dev,ghost"])
            #expect(ghost.exitCode != 0)
            #expect(errorLine(ghost) == "ERROR: user \"ann\": role \"ghost\" does not exist; create it first (tctl get roles lists the existing roles)", "\(ghost)")
            let users = try await cluster.tctl(["users", "ls"])
            #expect(!users.stdout.contains("ann"), "nothing was created: \(users)")

            let joe = try await cluster.tctl(["users", "add", "joe", "root,admin", "--roles=access,dev"])
            #expect(joe.exitCode == 0, "\(joe)")
            let listed = try await cluster.tctl(["users", "ls"])
            let joeLine = try #require(listed.stdout.split(separator: "\n").first { $0.hasPrefix("joe ") })
            #expect(joeLine.split(separator: " ").map(String.init) == ["joe", "root,admin", "access,dev"], "\(listed)")
            #expect(try await cluster.tctl(["users", "add", "kim", "--roles=dev"]).exitCode == 0)

            let badUpdate = try await cluster.tctl(["users", "update", "joe", "--set-roles=dev,ghost,phantom"])
            #expect(badUpdate.exitCode != 0)
            #expect(errorLine(badUpdate).contains("roles \"ghost\", \"phantom\" do not exist"), "\(badUpdate)")
            #expect(errorLine(badUpdate).contains("tctl get roles"))
            #expect(try await cluster.tctl(["users", "ls"]).stdout.contains("access,dev"), "joe is unchanged")

            // A held role cannot go; the message names the holders and how to move them.
            let held = try await cluster.tctl(["rm", "role/dev"])
            #expect(held.exitCode != 0)
            #expect(errorLine(held).contains("role \"dev\" is still held by users joe, kim"), "\(held)")
            #expect(errorLine(held).contains("tctl users update NAME --set-roles"), "\(held)")
            let preset = try await cluster.tctl(["rm", "role/access"])
            #expect(preset.exitCode != 0)
            #expect(errorLine(preset).contains("role \"access\" is still held by user joe;"), "\(preset)")
            #expect(try await roleNames(cluster) == (presets + ["dev", "unused"]).sorted())

            // Unused roles go; after moving the holders, so does dev.
            let removed = try await cluster.tctl(["rm", "role/unused"])
            #expect(removed.exitCode == 0 && removed.stdout == "role \"unused\" has been deleted\n", "\(removed)")
            #expect(try await cluster.tctl(["users", "update", "joe", "--set-roles=access"]).exitCode == 0)
            #expect(try await cluster.tctl(["users", "update", "kim", "--set-roles=access"]).exitCode == 0)
            let moved = try await cluster.tctl(["rm", "role/dev"])
            #expect(moved.exitCode == 0, "\(moved)")
            #expect(try await roleNames(cluster) == presets)
            await cluster.stop()
        }
    }
}
