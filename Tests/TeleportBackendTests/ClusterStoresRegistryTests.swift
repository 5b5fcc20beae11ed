import Foundation
import TeleportAPI
import TeleportBackend
import TeleportServices
import Testing

/// A kind the stores were never told about, only registered.
struct TestSprocket: Resource {
    static let kind = "test_sprocket"
    static let currentVersion = "v1"
    var kind: String = Self.kind
    var version: String = Self.currentVersion
    var metadata: Metadata
    var teeth: Int

    init(name: String, teeth: Int) {
        metadata = Metadata(name: name)
        self.teeth = teeth
    }

    func validate() throws {
        try validateEnvelope()
        guard teeth > 0 else { throw TeleportError.badParameter("test_sprocket \(metadata.name): teeth must be positive") }
    }
}

@Suite("Cluster stores over the kind registry")
struct ClusterStoresRegistryTests {
    static let registered: Bool = {
        try? ResourceKinds.register(ResourceKind(TestSprocket.self, aliases: ["test_sprockets"], storagePrefix: "/test_sprockets/"))
        return ResourceKinds.named(TestSprocket.kind) != nil
    }()

    @Test(arguments: BackendKind.enabled)
    func aRegisteredKindIsStoredWithoutEditingTheStores(backend kind: BackendKind) async throws {
        #expect(Self.registered)
        try await kind.withBackend { backend, _ in
            let stores = ClusterStores(backend: backend)
            try await stores.put(try AnyResource(TestSprocket(name: "s1", teeth: 12)), upsert: false)
            await #expect(throws: TeleportError.self) { try await stores.put(try AnyResource(TestSprocket(name: "s1", teeth: 3)), upsert: false) }
            await #expect(throws: TeleportError.self) { try await stores.put(try AnyResource(TestSprocket(name: "s2", teeth: 0)), upsert: true) }
            let read = try #require(try await stores.get(kind: "test_sprockets", name: "s1") as? TestSprocket)
            #expect(read.teeth == 12)
            #expect(try await backend.get("/test_sprockets/s1").key == "/test_sprockets/s1")
            #expect(try await stores.list(kind: TestSprocket.kind).count == 1)

            var changed = read
            changed.teeth = 14
            try await stores.update(try AnyResource(changed))
            await #expect(throws: TeleportError.self) { try await stores.update(try AnyResource(changed)) }  // stale revision
            #expect((try await stores.get(kind: TestSprocket.kind, name: "s1") as? TestSprocket)?.teeth == 14)

            try await stores.delete(kind: TestSprocket.kind, name: "s1")
            #expect(try await stores.exists(kind: TestSprocket.kind, name: "s1") == false)
            await #expect(throws: TeleportError.self) { try await stores.list(kind: "test_unknown_kind") }
        }
    }

    @Test func builtInStoresUseTheRegistryPrefixes() {
        let stores = ClusterStores(backend: MemoryBackend(clock: ManualClock()))
        let prefixes: [String: String] = [
            User.kind: stores.users.prefix, Role.kind: stores.roles.prefix, ProvisionToken.kind: stores.tokens.prefix,
            ServerNode.kind: stores.nodes.prefix, CertAuthority.kind: stores.certAuthorities.prefix,
            ClusterNameResource.kind: stores.clusterName.prefix, Lock.kind: stores.locks.prefix,
            ServerProxy.kind: ServerProxy.storagePrefix, DatabaseServer.kind: DatabaseServer.storagePrefix, AppServer.kind: AppServer.storagePrefix,
            KubeServer.kind: KubeServer.storagePrefix,
            TrustedCluster.kind: TrustedCluster.storagePrefix, RemoteCluster.kind: RemoteCluster.storagePrefix,
            // SSO connectors: no store of their own; the kind registry is the only place naming their keys.
            OIDCConnector.kind: "/connectors/oidc/", GitHubConnector.kind: "/connectors/github/",
        ]
        for entry in ResourceKinds.builtIn { #expect(prefixes[entry.name] == entry.storagePrefix, "\(entry.name)") }
    }
}
