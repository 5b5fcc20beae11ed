import Foundation
import TeleportAPI
import Testing

@Suite("trusted clusters: role mapping and the trusted_cluster resource")
struct TrustedClusterTests {
    typealias Mapping = TrustedCluster.RoleMapping

    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let remote: [String]
        let map: [Mapping]
        let expected: [String]
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "exact name", remote: ["admin"], map: [Mapping(remote: "admin", local: ["access"])], expected: ["access"]),
        Case(name: "exact name does not match another", remote: ["dev"], map: [Mapping(remote: "admin", local: ["access"])], expected: []),
        Case(name: "no mapping gives nothing, never the root role itself", remote: ["access", "editor"], map: [], expected: []),
        Case(name: "* maps every role", remote: ["a", "b"], map: [Mapping(remote: "*", local: ["guest"])], expected: ["guest"]),
        Case(
            name: "regex with $1", remote: ["team-db", "team-web", "other"], map: [Mapping(remote: "^team-(.*)$", local: ["leaf-$1"])],
            expected: ["leaf-db", "leaf-web"]),
        Case(
            name: "regex must match the whole name", remote: ["xteam-db"], map: [Mapping(remote: "^team-(.*)$", local: ["leaf-$1"])],
            expected: []),
        Case(name: "$$ is a dollar, a missing group is empty", remote: ["r-1"], map: [Mapping(remote: "^r-(\\d)$", local: ["x$$", "y$2z"])], expected: ["x$", "yz"]),
        Case(
            name: "several mappings, duplicates once, order kept", remote: ["admin", "dev"],
            map: [Mapping(remote: "admin", local: ["access", "editor"]), Mapping(remote: "dev", local: ["access"])],
            expected: ["access", "editor"]),
        Case(name: "a regex matching to nothing", remote: ["dev"], map: [Mapping(remote: "^(.*)$", local: ["$1"])], expected: ["dev"]),
    ]

    @Test("RoleMap.map", arguments: cases)
    func roleMap(_ test: Case) {
        #expect(RoleMap.map(test.remote, with: test.map) == test.expected)
    }

    static func resource(_ remote: String, local: [String] = ["access"]) -> TrustedCluster {
        TrustedCluster(
            name: "root.example", spec: .init(token: "t", webProxyAddr: "root.example:3080", roleMap: [Mapping(remote: remote, local: local)]))
    }

    @Test("an invalid regex is refused at create, naming the field")
    func invalidRegex() {
        #expect(throws: TeleportError.self) { try Self.resource("^team-(.*$").validate() }
        do {
            try Self.resource("^team-(.*$").validate()
        } catch let error as TeleportError {
            #expect(error.message.contains("spec.role_map[0].remote"))
            #expect(error.message.contains("not a valid regular expression"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(throws: TeleportError.self) { try Self.resource("a b").validate() }
        #expect(throws: TeleportError.self) { try Self.resource("admin", local: []).validate() }
        #expect(throws: Never.self) { try Self.resource("^team-(.*)$").validate() }
        #expect(throws: Never.self) { try Self.resource("*").validate() }
    }

    @Test("YAML: defaults, keys, and the stored form without the token")
    func yaml() throws {
        let text = """
            kind: trusted_cluster
            version: v2
            metadata:
              name: root.example
            spec:
              token: 0123456789abcdef0123456789abcdef
              web_proxy_addr: root.example:3080
              role_map:
                - remote: admin
                  local: [access]
            """
        let decoded = try ResourceCodec.decodeDocuments(text, source: "test")
        let trusted = try #require(decoded.first?.value as? TrustedCluster)
        #expect(trusted.spec.enabled)
        #expect(trusted.spec.roleMap == [Mapping(remote: "admin", local: ["access"])])
        #expect(trusted.withoutToken.spec.token == nil)
        #expect(!(try ResourceCodec.yaml([trusted.withoutToken])).contains("0123456789abcdef"))
        #expect(ResourceKinds.named("tc")?.name == TrustedCluster.kind)
        #expect(ResourceKinds.named("rc")?.name == RemoteCluster.kind)
        let bad = text.replacingOccurrences(of: "remote: admin", with: "remote: ^(x$")
        #expect(throws: TeleportError.self) { try ResourceCodec.decodeDocuments(bad, source: "test") }
    }
}
