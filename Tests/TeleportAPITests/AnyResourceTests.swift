import TeleportAPI
import Testing

@Suite("AnyResource")
struct AnyResourceTests {
    @Test(arguments: [
        ("user", "user"), ("users", "user"), ("User", "user"), ("USERS", "user"),
        ("role", "role"), ("roles", "role"),
        ("token", "token"), ("tokens", "token"),
        ("node", "node"), ("nodes", "node"),
        ("cert_authority", "cert_authority"), ("cert_authorities", "cert_authority"), ("ca", "cert_authority"),
        ("cas", "cert_authority"), ("CA", "cert_authority"),
        ("cluster_name", "cluster_name"), ("cluster_names", "cluster_name"),
    ])
    func canonicalKindAliases(typed: String, canonical: String) {
        #expect(AnyResource.canonicalKind(typed) == canonical)
    }

    @Test(arguments: ["", "all", "widget", "usr", "trusted_clusterz", "saml", "user "])
    func unknownKinds(typed: String) {
        #expect(AnyResource.canonicalKind(typed) == nil)
    }

    @Test func everyKnownKindIsItsOwnCanonicalName() {
        // Other suites register kinds of their own in this process; the built-in ones come first.
        #expect(
            ResourceKinds.builtIn.map(\.name) == [
                "cluster_name", "cert_authority", "role", "user", "token", "node", "lock", "proxy", "db_server", "app_server", "kube_server", "oidc",
                "github", "trusted_cluster", "remote_cluster",
            ])
        #expect(Array(AnyResource.kinds.prefix(8)) == ["cluster_name", "cert_authority", "role", "user", "token", "node", "lock", "proxy"])
        for kind in AnyResource.kinds { #expect(AnyResource.canonicalKind(kind) == kind) }
    }

    @Test(arguments: ResourceSamples.all)
    func wrapAndUnwrap(resource: AnyResource) throws {
        #expect(try AnyResource(resource.value) == resource)
        #expect(resource.kind == type(of: resource.value).kind)
        #expect(resource.name == resource.value.metadata.name)
    }
}
