import Foundation
import TeleportAPI
import Testing

@Suite("SystemRole")
struct SystemRoleTests {
    @Test(arguments: [
        ("node", SystemRole.node), ("Node", .node), ("NODE", .node), ("proxy", .proxy), ("Proxy", .proxy),
        ("auth", .auth), ("AUTH", .auth), ("admin", .admin), ("Admin", .admin),
    ])
    func caseInsensitive(text: String, role: SystemRole) {
        #expect(SystemRole(caseInsensitive: text) == role)
    }

    @Test(arguments: ["", "nodes", "bogus", " node", "trusted_clusters"])
    func unknownNames(text: String) {
        #expect(SystemRole(caseInsensitive: text) == nil)
    }

    @Test func codableUsesTheCapitalizedName() throws {
        let data = try JSONEncoder().encode([SystemRole.node, .proxy])
        #expect(String(decoding: data, as: UTF8.self) == #"["Node","Proxy"]"#)
        #expect(try JSONDecoder().decode([SystemRole].self, from: Data(#"["node","AUTH"]"#.utf8)) == [.node, .auth])
        #expect(throws: (any Error).self) { try JSONDecoder().decode([SystemRole].self, from: Data(#"["bogus"]"#.utf8)) }
    }

    @Test func sortedByName() {
        #expect([SystemRole.proxy, .node, .auth, .admin].sorted() == [.admin, .auth, .node, .proxy])
    }
}
