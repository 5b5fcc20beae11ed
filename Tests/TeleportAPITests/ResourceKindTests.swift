import Foundation
import TeleportAPI
import Testing

/// A kind that only this suite knows: what a wave-2 kind (`db_server`, `app`, ...) looks like.
struct TestGadget: Resource {
    static let kind = "test_gadget"
    static let currentVersion = "v3"
    var kind: String
    var version: String
    var metadata: Metadata
    var spec: Spec

    struct Spec: Codable, Sendable, Equatable {
        var color: String
    }

    init(name: String, color: String) {
        kind = Self.kind
        version = Self.currentVersion
        metadata = Metadata(name: name)
        spec = Spec(color: color)
    }

    func validate() throws {
        try validateEnvelope()
        guard !spec.color.isEmpty else { throw TeleportError.badParameter("test_gadget \(metadata.name): spec.color is empty") }
    }
}

/// Registers ``TestGadget`` once per process (suites run in parallel in one process).
enum TestGadgetRegistration {
    static let done: Bool = {
        try? ResourceKinds.register(
            ResourceKind(
                TestGadget.self, aliases: ["test_gadgets"], storagePrefix: "/test_gadgets/", editRefusal: "test_gadget cannot be edited",
                serverKind: ServerKind(rawValue: TestGadget.kind)))
        return ResourceKinds.named(TestGadget.kind) != nil
    }()
}

@Suite("Resource kind registry")
struct ResourceKindTests {
    @Test func aNewKindIsOneRegistration() throws {
        #expect(TestGadgetRegistration.done)
        #expect(AnyResource.canonicalKind("test_gadgets") == "test_gadget")
        #expect(AnyResource.canonicalKind("TEST_GADGET") == "test_gadget")
        #expect(AnyResource.kinds.contains("test_gadget"))
        #expect(ResourceKinds.serverKinds.contains(ServerKind(rawValue: "test_gadget")))
        #expect(AnyResource.whyNotEditable("test_gadget") == "test_gadget cannot be edited")
        #expect(!AnyResource.editableKinds.contains("test_gadget"))

        // The codec needs no edit: the version defaults from the type, the strict checks apply.
        let parsed = try ResourceCodec.decodeDocuments("kind: test_gadget\nmetadata:\n  name: g1\nspec:\n  color: red\n", source: "gadget.yaml")
        #expect(parsed.count == 1)
        let gadget = try #require(parsed.first?.as(TestGadget.self))
        #expect(gadget.version == "v3")
        #expect(gadget.spec.color == "red")
        guard case .registered = try #require(parsed.first) else {
            Issue.record("a registered kind is wrapped as .registered")
            return
        }
        #expect(parsed.first == (try AnyResource(TestGadget(name: "g1", color: "red"))))
        #expect(parsed.first != (try AnyResource(TestGadget(name: "g1", color: "blue"))))

        let yaml = try ResourceCodec.yaml(gadget)
        #expect(try ResourceCodec.decodeDocuments(yaml, source: "again").first?.as(TestGadget.self) == gadget)

        #expect(throws: TeleportError.self) {
            try ResourceCodec.decodeDocuments("kind: test_gadget\nmetadata:\n  name: g1\nspec:\n  colour: red\n", source: "typo.yaml")
        }
        #expect(throws: TeleportError.self) {
            try ResourceCodec.decodeDocuments("kind: test_gadget\nmetadata:\n  name: g1\nspec:\n  color: \"\"\n", source: "empty.yaml")
        }
    }

    @Test func aClashingNameIsRefused() {
        #expect(TestGadgetRegistration.done)
        for (type, aliases) in [(TestGadget.self as any Resource.Type, ["gadgets2"]), (Lock.self, []), (TestGadget2.self, ["users"])] {
            #expect(throws: TeleportError.self) {
                try ResourceKinds.register(ResourceKind(type, aliases: aliases, storagePrefix: "/x/"))
            }
        }
    }

    @Test func unregisteredTypesAreRefused() {
        #expect(throws: TeleportError.self) { try AnyResource(TestGadget2(name: "x")) }
    }

    @Test func builtInKindsKeepTheirPolicies() {
        #expect(ResourceKinds.named("ca")?.deleteRefusal == "cert_authority cannot be deleted on a running cluster")
        #expect(ResourceKinds.named("cluster_name")?.deleteRefusal == "cluster_name cannot be deleted on a running cluster")
        #expect(ResourceKinds.named("roles")?.deleteRefusal == nil)
        #expect(ResourceKinds.builtIn.filter { !$0.inBackup }.map(\.name) == ["node", "proxy", "db_server", "app_server", "kube_server", "remote_cluster"])
        #expect(ResourceKinds.builtIn.compactMap(\.serverKind) == [.node, .proxy, .database, .app, .kube])
        #expect(AnyResource.whyNotEditable("token")?.hasPrefix("tokens cannot be edited") == true)
        for kind in ["role", "user", "lock", "node"] { #expect(AnyResource.whyNotEditable(kind) == nil) }
        #expect(AnyResource.whyNotEditable("widget")?.contains("cannot be edited (editable: ") == true)
    }
}

/// A type never registered.
struct TestGadget2: Resource {
    static let kind = "test_gadget_unregistered"
    static let currentVersion = "v1"
    var kind: String = Self.kind
    var version: String = Self.currentVersion
    var metadata: Metadata

    init(name: String) { metadata = Metadata(name: name) }

    func validate() throws { try validateEnvelope() }
}
