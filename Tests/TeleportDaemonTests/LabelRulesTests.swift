import TeleportAPI
import TeleportDaemon
import Testing

@Suite("label rules")
struct LabelRulesTests {
    @Test(arguments: ["env", "team/owner", "k8s.io:zone", "a-b_c"])
    func validKeys(key: String) throws {
        try LabelRules.check(key: key, source: "test")
    }

    @Test(arguments: ["", "has space", "semi;colon", "quote\"", String(repeating: "k", count: 64), "ünïcode"])
    func invalidKeys(key: String) {
        #expect(throws: TeleportError.self) { try LabelRules.check(key: key, source: "test") }
    }

    @Test func valuesArePrintableAndBounded() throws {
        try LabelRules.check(value: "Ubuntu 22.04 LTS", key: "os", source: "test")
        #expect(throws: TeleportError.self) { try LabelRules.check(value: "a\u{1B}[31mred", key: "k", source: "test") }
        #expect(throws: TeleportError.self) { try LabelRules.check(value: String(repeating: "v", count: 257), key: "k", source: "test") }
    }

    @Test func flagAndFileRefuseBadKeys() throws {
        let flag = #expect(throws: TeleportError.self) { try LabelFlag.parse("bad key=1") }
        #expect(flag?.message.contains("label key \"bad key\" is not valid") == true)
        let file = #expect(throws: TeleportError.self) {
            try FileConfig.parse("ssh_service:\n  labels:\n    \"bad;key\": x\n", file: "t.yaml")
        }
        #expect(file?.message.contains("t.yaml: ssh_service.labels.bad;key") == true, "\(file?.message ?? "")")
    }
}
