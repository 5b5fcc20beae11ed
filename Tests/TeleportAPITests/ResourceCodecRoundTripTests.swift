import Foundation
import TeleportAPI
import Testing

/// What `ResourceCodec` writes, it reads back unchanged.
@Suite("ResourceCodec round trips")
struct ResourceCodecRoundTripTests {
    @Test(arguments: ResourceSamples.all)
    func everySampleIsValid(resource: AnyResource) throws {
        try resource.value.validate()
    }

    @Test(arguments: ResourceSamples.all)
    func yamlRoundTrip(resource: AnyResource) throws {
        let yaml = try ResourceCodec.yaml(resource.value)
        #expect(!yaml.hasPrefix("---"))
        let decoded = try ResourceCodec.decodeDocuments(yaml, source: "out.yaml")
        #expect(decoded == [resource], "\(yaml)")
    }

    @Test(arguments: ResourceSamples.all)
    func jsonRoundTripThroughDecodeDocuments(resource: AnyResource) throws {
        let json = try ResourceCodec.json(resource.value)
        let decoded = try ResourceCodec.decodeDocuments(String(decoding: json, as: UTF8.self), source: "out.json")
        #expect(decoded == [resource])
    }

    @Test(arguments: ResourceSamples.all)
    func prettyJSONRoundTrip(resource: AnyResource) throws {
        let json = try ResourceCodec.json(resource.value, pretty: true)
        let decoded = try ResourceCodec.decodeDocuments(String(decoding: json, as: UTF8.self), source: "out.json")
        #expect(decoded == [resource])
    }

    @Test func jsonRoundTripThroughTheTypedDecoder() throws {
        let decoder = ResourceCodec.jsonDecoder()
        #expect(try decoder.decode(User.self, from: ResourceCodec.json(ResourceSamples.user)) == ResourceSamples.user)
        #expect(try decoder.decode(Role.self, from: ResourceCodec.json(ResourceSamples.role)) == ResourceSamples.role)
        #expect(try decoder.decode(ProvisionToken.self, from: ResourceCodec.json(ResourceSamples.token)) == ResourceSamples.token)
        #expect(try decoder.decode(ServerNode.self, from: ResourceCodec.json(ResourceSamples.node)) == ResourceSamples.node)
        #expect(
            try decoder.decode(CertAuthority.self, from: ResourceCodec.json(ResourceSamples.certAuthority))
                == ResourceSamples.certAuthority)
        #expect(
            try decoder.decode(ClusterNameResource.self, from: ResourceCodec.json(ResourceSamples.clusterName))
                == ResourceSamples.clusterName)
    }

    @Test func allKindsInOneMultiDocumentYAML() throws {
        let yaml = try ResourceCodec.yaml(ResourceSamples.all.map(\.value))
        #expect(yaml.split(separator: "\n").filter { $0 == "---" }.count == ResourceSamples.all.count - 1)
        let decoded = try ResourceCodec.decodeDocuments(yaml, source: "all.yaml")
        #expect(decoded == ResourceSamples.all)
        #expect(decoded.map(\.kind) == ResourceKinds.builtIn.map(\.name))  // other suites register test kinds
    }

    @Test func jsonIsStable() throws {
        let json = String(decoding: try ResourceCodec.json(ResourceSamples.clusterName), as: UTF8.self)
        #expect(
            json
                == #"{"kind":"cluster_name","metadata":{"name":"cluster-name"},"spec":{"cluster_id":"8d3895b6-e9dd-11e6-94de-40167e68e931","cluster_name":"teleport-aws-us-east-1"},"version":"v2"}"#
        )
    }

    @Test func datesAreRFC3339InJSONAndYAML() throws {
        let json = String(decoding: try ResourceCodec.json(ResourceSamples.token), as: UTF8.self)
        #expect(json.contains(#""expires":"2017-02-03T07:24:05Z""#), "\(json)")
        let yaml = try ResourceCodec.yaml(ResourceSamples.token)
        #expect(yaml.contains("2017-02-03T07:24:05Z"), "\(yaml)")
    }

    @Test func pemKeysStayMultiLine() throws {
        let yaml = try ResourceCodec.yaml(ResourceSamples.certAuthority)
        let decoded = try ResourceCodec.decodeDocuments(yaml, source: "ca.yaml")
        guard case .certAuthority(let ca) = try #require(decoded.first) else {
            Issue.record("not a cert_authority: \(decoded)")
            return
        }
        #expect(ca.spec.activeKeys.ssh.first?.privateKey == ResourceSamples.sshPrivateKey)
        #expect(ca.spec.activeKeys.tls.first?.cert == ResourceSamples.certificatePEM)
        #expect(ca.spec.activeKeys.tls.first?.key == ResourceSamples.pkcs8PEM)
        #expect(ca.withoutSecrets.spec.activeKeys.ssh.first?.privateKey == nil)
        #expect(ca.withoutSecrets.spec.activeKeys.tls.first?.key == nil)
    }

    /// Strings that YAML would otherwise read as numbers, booleans, nulls or dates stay strings.
    @Test(arguments: ["1.0", "8080", "yes", "no", "true", "null", "~", "", "0x1F", "1e3", "2017-02-03", "2017-02-03T06:54:05Z", "- x", "# c", "a: b", "*", "@x", "'q'", "\"dq\"", " padded ", "multi\nline"])
    func ambiguousStringsSurviveYAML(value: String) throws {
        var user = User(name: "joe", roles: [value.isEmpty ? "r" : value], logins: ["joe"])
        user.metadata.labels = ["value": value, value.isEmpty ? "empty" : value: "key"]
        user.metadata.description = value
        let yaml = try ResourceCodec.yaml(user)
        let decoded = try ResourceCodec.decodeDocuments(yaml, source: "u.yaml")
        #expect(decoded == [.user(user)], "\(yaml)")
    }

    @Test(arguments: [true, false])
    func booleansSurviveYAML(value: Bool) throws {
        var role = Role(name: "r", spec: Role.Spec(options: Role.Options(forwardAgent: value, portForwarding: !value)))
        role.spec.options?.disconnectExpiredCert = value
        let yaml = try ResourceCodec.yaml(role)
        #expect(try ResourceCodec.decodeDocuments(yaml, source: "r.yaml") == [.role(role)], "\(yaml)")
    }

    @Test func aFractionalExpiryRoundTripsToTheMillisecond() throws {
        var token = ResourceSamples.token
        token.metadata.expires = Date(timeIntervalSince1970: 1_486_106_645.5)
        let decoded = try ResourceCodec.decodeDocuments(ResourceCodec.yaml(token), source: "t.yaml")
        #expect(decoded == [.token(token)])
    }
}

/// Role trait templates (`{{internal.logins}}`) are plain strings; YAML output must quote them.
@Suite("ResourceCodec trait templates")
struct ResourceCodecTemplateTests {
    static var templateRole: Role {
        Role(
            name: "access",
            spec: Role.Spec(allow: Role.Conditions(logins: ["{{internal.logins}}", "{{external.unix_login}}"])))
    }

    @Test
    func roleWithTraitTemplatesSurvivesYAML() throws {
        let role = Self.templateRole
        let yaml = try ResourceCodec.yaml(role)
        #expect(try ResourceCodec.decodeDocuments(yaml, source: "access.yaml") == [.role(role)], "\(yaml)")
    }

    @Test func roleWithTraitTemplatesSurvivesJSON() throws {
        let role = Self.templateRole
        let json = String(decoding: try ResourceCodec.json(role), as: UTF8.self)
        #expect(try ResourceCodec.decodeDocuments(json, source: "access.json") == [.role(role)])
    }

    @Test func quotedTemplatesInYAMLInputAreStrings() throws {
        let yaml = "kind: role\nmetadata:\n  name: access\nspec:\n  allow:\n    logins: ['{{internal.logins}}', \"{{external.unix_login}}\"]\n"
        #expect(try ResourceCodec.decodeDocuments(yaml, source: "access.yaml") == [.role(Self.templateRole)])
    }

    /// A mapping used as a key (an unquoted template, `? [a]`) is an error, not a crash.
    @Test(
        arguments: [
            "kind: role\nmetadata:\n  name: access\nspec:\n  allow:\n    logins: [{{internal.logins}}]\n",
            "kind: role\nmetadata:\n  name: r\n? [a, b]\n: c\n",
        ])
    func nonScalarKeysAreRefused(yaml: String) throws {
        let error = #expect(throws: TeleportError.self) { try ResourceCodec.decodeDocuments(yaml, source: "bad.yaml") }
        #expect(error?.code == .badParameter)
        #expect(error?.message.hasPrefix("bad.yaml: ") == true)
    }
}
