import Foundation
import TeleportAPI
import Testing

/// `ResourceCodec.decodeDocuments`: strict reading of YAML and JSON resource files.
@Suite("ResourceCodec decoding")
struct ResourceCodecDecodeTests {
    static let userYAML = """
        kind: user
        version: v2
        metadata:
          name: joe
        spec:
          roles: [admin]
          traits:
            logins: [joe, root]
        """

    static func decodeError(_ text: String, source: String = "in.yaml", sourceLocation: SourceLocation = #_sourceLocation)
        throws -> TeleportError
    {
        let error = #expect(throws: TeleportError.self, sourceLocation: sourceLocation) {
            try ResourceCodec.decodeDocuments(text, source: source)
        }
        return try #require(error, sourceLocation: sourceLocation)
    }

    @Test func decodesAUserFromYAML() throws {
        let resources = try ResourceCodec.decodeDocuments(Self.userYAML, source: "joe.yaml")
        #expect(resources == [.user(User(name: "joe", roles: ["admin"], logins: ["joe", "root"]))])
        #expect(resources.first?.kind == "user")
        #expect(resources.first?.name == "joe")
    }

    @Test func decodesFromJSON() throws {
        let json = #"{"kind":"role","version":"v7","metadata":{"name":"dev"},"spec":{"allow":{"logins":["dev"],"node_labels":{"env":"staging","region":["us-east-1","us-west-2"]}}}}"#
        let resources = try ResourceCodec.decodeDocuments(json, source: "dev.json")
        guard case .role(let role) = try #require(resources.first) else {
            Issue.record("not a role: \(resources)")
            return
        }
        #expect(resources.count == 1)
        #expect(role.spec.allow?.logins == ["dev"])
        #expect(role.spec.allow?.nodeLabels?["env"] == LabelValues(["staging"]))
        #expect(role.spec.allow?.nodeLabels?["region"] == LabelValues(["us-east-1", "us-west-2"]))
        #expect(role.spec.deny == nil)
    }

    @Test("a role with an invalid regular expression or TTL is refused, naming the field")
    func invalidRoles() throws {
        let badRegex = """
            kind: role
            metadata:
              name: broken
            spec:
              allow:
                logins: [dev]
                node_labels:
                  env: '^(dev$'
            """
        #expect(throws: TeleportError.self) { try ResourceCodec.decodeDocuments(badRegex, source: "r.yaml") }
        do {
            _ = try ResourceCodec.decodeDocuments(badRegex, source: "r.yaml")
        } catch let error as TeleportError {
            #expect(error.message.contains("spec.allow.node_labels.env") && error.message.contains("not a valid regular expression"), "\(error.message)")
        }
        let badTTL = "kind: role\nmetadata:\n  name: r\nspec:\n  options:\n    max_session_ttl: forever\n"
        #expect(throws: TeleportError.self) { try ResourceCodec.decodeDocuments(badTTL, source: "r.yaml") }
        let good = "kind: role\nmetadata:\n  name: r\nspec:\n  options:\n    max_session_ttl: 8h\n  allow:\n    node_labels:\n      env: '^db-[0-9]+$'\n"
        #expect(try ResourceCodec.decodeDocuments(good, source: "r.yaml").count == 1)
    }

    @Test func aMissingVersionGetsTheCurrentOne() throws {
        let yaml = "kind: token\nmetadata:\n  name: abc\nspec:\n  roles: [node]\n"
        let resources = try ResourceCodec.decodeDocuments(yaml, source: "t.yaml")
        #expect(resources == [.token(ProvisionToken(name: "abc", roles: [.node]))])
        #expect(resources.first?.value.version == ProvisionToken.currentVersion)
    }

    @Test(arguments: [("User", "user"), ("ROLE", "role"), ("Cert_Authority", "cert_authority")])
    func kindIsCaseInsensitive(typed: String, canonical: String) throws {
        let yaml: String
        switch canonical {
        case "user": yaml = Self.userYAML.replacingOccurrences(of: "kind: user", with: "kind: \(typed)")
        case "role": yaml = "kind: \(typed)\nmetadata:\n  name: r\nspec: {}\n"
        default:
            yaml = try ResourceCodec.yaml(ResourceSamples.certAuthority)
                .replacingOccurrences(of: "kind: cert_authority", with: "kind: \(typed)")
        }
        #expect(try ResourceCodec.decodeDocuments(yaml, source: "x").first?.kind == canonical)
    }

    @Test func multiDocumentFiles() throws {
        let yaml = """
            ---
            \(Self.userYAML)
            ---
            kind: role
            metadata:
              name: admin
            spec:
              allow:
                logins: [root]
            ---
            # an empty document is skipped
            ---
            kind: token
            metadata:
              name: abc123
            spec:
              roles: [Node, proxy]
            """
        let resources = try ResourceCodec.decodeDocuments(yaml, source: "all.yaml")
        #expect(resources.map(\.kind) == ["user", "role", "token"])
        #expect(resources.map(\.name) == ["joe", "admin", "abc123"])
        #expect(resources.last == .token(ProvisionToken(name: "abc123", roles: [.node, .proxy])))
    }

    @Test func anErrorInALaterDocumentNamesIt() throws {
        let yaml = "\(Self.userYAML)\n---\nkind: role\nmetadata:\n  name: r\nspec:\n  alow:\n    logins: [root]\n"
        let error = try Self.decodeError(yaml, source: "all.yaml")
        #expect(error.code == .badParameter)
        #expect(error.message.contains("all.yaml (document 2)"), "\(error.message)")
        #expect(error.message.contains("spec.alow"), "\(error.message)")
    }

    @Test func aSyntaxErrorInALaterDocumentIsReported() throws {
        let error = try Self.decodeError("\(Self.userYAML)\n---\nkind: [role\n", source: "all.yaml")
        #expect(error.code == .badParameter)
        #expect(error.message.hasPrefix("all.yaml: not valid YAML"), "\(error.message)")
    }

    @Test(arguments: ["", "# nothing\n", "---\n---\n"])
    func noDocumentIsAnError(text: String) throws {
        let error = try Self.decodeError(text)
        #expect(error.code == .badParameter)
        #expect(error.message.contains("no resource found"))
    }

    @Test(arguments: ["- kind: user\n", "just a string\n", "42\n"])
    func aDocumentMustBeAMapping(text: String) throws {
        let error = try Self.decodeError(text)
        #expect(error.message.contains("must be a mapping"), "\(error.message)")
    }

    @Test func aMissingKindIsNamed() throws {
        let error = try Self.decodeError("metadata:\n  name: joe\n")
        #expect(error.message.contains("\"kind\" is missing"))
    }

    @Test(arguments: ["widget", "users", "saml_cluster", "ca"])
    func unknownKindIsRefused(kind: String) throws {
        let error = try Self.decodeError("kind: \(kind)\nmetadata:\n  name: x\nspec: {}\n", source: "w.yaml")
        #expect(error.code == .badParameter)
        #expect(error.message.hasPrefix("w.yaml: unknown resource kind \"\(kind)\""), "\(error.message)")
        #expect(error.message.contains("user"))
    }

    @Test(arguments: [
        ("kind: user\nversion: v2\nmetadata:\n  name: joe\nspec:\n  roles: [a]\n  traits: {}\nstatus: x\n", "status"),
        ("kind: user\nmetadata:\n  name: joe\n  labls: {a: b}\nspec:\n  roles: [a]\n  traits: {}\n", "metadata.labls"),
        ("kind: user\nmetadata:\n  name: joe\nspec:\n  roles: [a]\n  traits: {}\n  rolez: [b]\n", "spec.rolez"),
        ("kind: user\nmetadata:\n  name: joe\nspec:\n  roles: [a]\n  traits: {}\n  status:\n    is_locked: true\n    locked: now\n", "spec.status.locked"),
        ("kind: role\nmetadata:\n  name: r\nspec:\n  allow:\n    login: [root]\n", "spec.allow.login"),
        ("kind: role\nmetadata:\n  name: r\nspec:\n  allow:\n    rules:\n    - resources: [node]\n      verbs: [list]\n    - resources: [role]\n      verbs: [read]\n      where: x\n", "spec.allow.rules[1].where"),
        ("kind: role\nmetadata:\n  name: r\nspec:\n  options:\n    max_session_tll: 8h\n", "spec.options.max_session_tll"),
        ("kind: node\nmetadata:\n  name: n\nspec:\n  addr: a:1\n  hostname: h\n  cmd_labels:\n    arch:\n      period: 1m\n      command: [uname]\n      result: x\n      extra: 1\n", "spec.cmd_labels.arch.extra"),
        ("kind: cluster_name\nmetadata:\n  name: cluster-name\nspec:\n  cluster_name: c\n  cluster_id: i\n  clusterid: j\n", "spec.clusterid"),
        ("{\"kind\":\"token\",\"metadata\":{\"name\":\"t\"},\"spec\":{\"roles\":[\"node\"],\"ttl\":\"1h\"}}", "spec.ttl"),
    ])
    func unknownFieldsAreNamedByPath(text: String, path: String) throws {
        let error = try Self.decodeError(text, source: "r.yaml")
        #expect(error.code == .badParameter)
        #expect(error.message.hasPrefix("r.yaml: "), "\(error.message)")
        #expect(error.message.contains("unknown field \"\(path)\""), "\(error.message)")
    }

    /// An unknown field is refused whatever its value, also an empty list or mapping.
    @Test(
        arguments: [
            ("kind: role\nmetadata:\n  name: r\nspec:\n  allow:\n    login: []\n", "spec.allow.login"),
            ("kind: user\nmetadata:\n  name: joe\n  lables: {}\nspec:\n  roles: [a]\n  traits: {}\n", "metadata.lables"),
        ])
    func unknownFieldsWithEmptyValuesAreRefused(text: String, path: String) throws {
        let error = try Self.decodeError(text, source: "r.yaml")
        #expect(error.message.contains("unknown field \"\(path)\""), "\(error.message)")
    }

    @Test(arguments: [
        ("kind: user\nmetadata:\n  name: joe\nspec:\n  roles: admin\n  traits: {}\n", "spec.roles: expected a list"),
        ("kind: user\nmetadata:\n  name: joe\nspec:\n  roles: [admin]\n  traits: [a]\n", "spec.traits: expected a mapping"),
        ("kind: user\nmetadata:\n  name: joe\nspec:\n  roles: [admin]\n  traits:\n    logins: joe\n", "spec.traits.logins: expected a list"),
        ("kind: user\nmetadata:\n  name: [joe]\nspec:\n  roles: [admin]\n  traits: {}\n", "metadata.name: expected a string"),
        ("kind: user\nmetadata:\n  name: joe\nspec:\n  roles: [admin, [x]]\n  traits: {}\n", "spec.roles[1]: expected a string"),
        ("kind: user\nmetadata: joe\nspec:\n  roles: [admin]\n  traits: {}\n", "metadata: expected a mapping"),
        ("kind: user\nmetadata:\n  name: joe\nspec:\n  roles: [a]\n  traits: {}\n  status:\n    is_locked: maybe\n", "spec.status.is_locked: expected true or false"),
        ("kind: role\nmetadata:\n  name: r\nspec:\n  options:\n    forward_agent: sometimes\n", "spec.options.forward_agent: expected true or false"),
        ("kind: token\nmetadata:\n  name: t\nspec:\n  roles: node\n", "spec.roles: expected a list"),
        ("kind: node\nmetadata:\n  name: n\nspec:\n  addr: [a]\n  hostname: h\n", "spec.addr: expected a string"),
    ])
    func wrongTypesNameTheFieldAndTheExpectation(text: String, fragment: String) throws {
        let error = try Self.decodeError(text, source: "r.yaml")
        #expect(error.code == .badParameter)
        #expect(error.message.contains(fragment), "\(error.message)")
        #expect(error.message.hasPrefix("r.yaml: "), "\(error.message)")
    }

    @Test(arguments: [
        ("kind: user\nspec:\n  roles: [a]\n  traits: {}\n", "metadata: required field is missing"),
        ("kind: user\nmetadata: {}\nspec:\n  roles: [a]\n  traits: {}\n", "metadata.name: required field is missing"),
        ("kind: user\nmetadata:\n  description: x\nspec:\n  roles: [a]\n  traits: {}\n", "metadata.name: required field is missing"),
        ("kind: user\nmetadata:\n  name: joe\n", "spec: required field is missing"),
        ("kind: user\nmetadata:\n  name: joe\nspec:\n  traits: {}\n", "spec.roles: required field is missing"),
        ("kind: user\nmetadata:\n  name: \"\"\nspec:\n  roles: [a]\n  traits: {}\n", "metadata.name is missing"),
        ("kind: token\nmetadata:\n  name: \"\"\nspec:\n  roles: [node]\n", "metadata.name is missing"),
    ])
    func missingFieldsAreNamed(text: String, fragment: String) throws {
        let error = try Self.decodeError(text)
        #expect(error.code == .badParameter)
        #expect(error.message.contains(fragment), "\(error.message)")
    }

    @Test(arguments: ["../x", ".hidden", "a b", "a/b", "x\ty", "é", String(repeating: "a", count: 254)])
    func invalidNamesAreRefused(name: String) throws {
        let quoted = name.replacingOccurrences(of: "\t", with: "\\t")
        for kind in ["user", "role", "node"] {
            let spec: String
            switch kind {
            case "user": spec = "  roles: [a]\n  traits: {}\n"
            case "role": spec = "  allow: {}\n"
            default: spec = "  addr: 10.0.0.1:3022\n  hostname: h\n"
            }
            let yaml = "kind: \(kind)\nmetadata:\n  name: \"\(quoted)\"\nspec:\n\(spec)"
            let error = try Self.decodeError(yaml, source: "n.yaml")
            #expect(error.code == .badParameter)
            #expect(error.message.hasPrefix("n.yaml: \(kind): metadata.name"), "\(error.message)")
        }
    }

    @Test(arguments: ["joe", "joe.smith@example.com", "a-b_c:d+e", "A1", String(repeating: "a", count: 253)])
    func validNamesAreAccepted(name: String) throws {
        let yaml = "kind: role\nmetadata:\n  name: \"\(name)\"\nspec: {}\n"
        #expect(try ResourceCodec.decodeDocuments(yaml, source: "x").first?.name == name)
    }

    @Test func certAuthorityNameMustBeItsType() throws {
        let yaml = try ResourceCodec.yaml(ResourceSamples.certAuthority).replacingOccurrences(of: "name: host", with: "name: user")
        let error = try Self.decodeError(yaml)
        #expect(error.message.contains("metadata.name must equal spec.type"), "\(error.message)")
    }

    @Test func unknownCATypeIsRefused() throws {
        let yaml = try ResourceCodec.yaml(ResourceSamples.certAuthority).replacingOccurrences(of: "type: host", with: "type: db")
        let error = try Self.decodeError(yaml)
        #expect(error.code == .badParameter)
        #expect(error.message.contains("spec.type"), "\(error.message)")
    }

    @Test func unknownSystemRoleInATokenIsRefused() throws {
        let error = try Self.decodeError("kind: token\nmetadata:\n  name: t\nspec:\n  roles: [node, wizard]\n", source: "t.yaml")
        #expect(error.code == .badParameter)
        #expect(error.message.hasPrefix("t.yaml: token: "), "\(error.message)")
        #expect(error.message.contains("wizard"), "\(error.message)")
    }

    @Test func aBadLoginIsRefused() throws {
        let yaml = Self.userYAML.replacingOccurrences(of: "[joe, root]", with: "[\"joe smith\"]")
        let error = try Self.decodeError(yaml)
        #expect(error.message.contains("is not a valid OS login"), "\(error.message)")
    }

    @Test func aBadDateIsRefused() throws {
        let yaml = "kind: role\nmetadata:\n  name: r\n  expires: next week\nspec: {}\n"
        let error = try Self.decodeError(yaml)
        #expect(error.code == .badParameter)
        #expect(error.message.contains("metadata.expires"), "\(error.message)")
    }

    @Test func yamlTimestampsAreDates() throws {
        let yaml = "kind: role\nmetadata:\n  name: r\n  expires: 2017-02-03T06:54:05Z\nspec: {}\n"
        let resource = try #require(try ResourceCodec.decodeDocuments(yaml, source: "x").first)
        #expect(resource.value.metadata.expires == Date(timeIntervalSince1970: 1_486_104_845))
    }

    @Test func nullOptionalFieldsAreAccepted() throws {
        let yaml = "kind: role\nmetadata:\n  name: r\n  description: null\n  labels: ~\nspec:\n  allow: null\n"
        let resources = try ResourceCodec.decodeDocuments(yaml, source: "x")
        #expect(resources == [.role(Role(name: "r", spec: Role.Spec()))])
    }

    @Test func aDocumentOverOneMebibyteIsRefused() throws {
        let padding = String(repeating: "# padding line of a large file\n", count: ResourceCodec.maxDocumentBytes / 31 + 2)
        let text = Self.userYAML + "\n" + padding
        #expect(text.utf8.count > ResourceCodec.maxDocumentBytes)
        let error = try Self.decodeError(text, source: "big.yaml")
        #expect(error.code == .limitExceeded)
        #expect(error.message.contains("big.yaml"))
    }

    @Test func aDocumentJustUnderTheLimitIsRead() throws {
        let head = Self.userYAML + "\n"
        let padding = String(repeating: "#", count: ResourceCodec.maxDocumentBytes - head.utf8.count)
        let text = head + padding
        #expect(text.utf8.count == ResourceCodec.maxDocumentBytes)
        #expect(try ResourceCodec.decodeDocuments(text, source: "x").count == 1)
    }
}

/// Unquoted YAML scalars that YAML reads as another type.
@Suite("ResourceCodec implicit YAML types")
struct ResourceCodecImplicitTypeTests {
    @Test func aBooleanWhereAStringIsExpectedIsRefused() throws {
        let yaml = "kind: role\nmetadata:\n  name: r\n  labels:\n    prod: true\nspec: {}\n"
        let error = #expect(throws: TeleportError.self) { try ResourceCodec.decodeDocuments(yaml, source: "r.yaml") }
        #expect(error?.message.contains("metadata.labels.prod: expected a string") == true, "\(String(describing: error))")
    }

    @Test func aNumberWhereAStringIsExpectedIsRefused() throws {
        let yaml = "kind: role\nmetadata:\n  name: 42\nspec: {}\n"
        let error = #expect(throws: TeleportError.self) { try ResourceCodec.decodeDocuments(yaml, source: "r.yaml") }
        #expect(error?.message.contains("metadata.name: expected a string") == true, "\(String(describing: error))")
    }

    /// A date-like label value is a string field: it keeps its text or is refused, never rewritten.
    @Test
    func aDateLikeStringIsNotRewritten() throws {
        let yaml = "kind: role\nmetadata:\n  name: r\n  labels:\n    released: 2017-02-03\nspec: {}\n"
        guard let resources = try? ResourceCodec.decodeDocuments(yaml, source: "r.yaml") else { return }
        #expect(resources.first?.value.metadata.labels?["released"] == "2017-02-03")
    }
}
