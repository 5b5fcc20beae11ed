import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// YAML anchors and aliases are refused before anything is expanded, so that a small "billion
/// laughs" document cannot make the reader walk an exponential tree.
@Suite("ResourceCodec anchors and aliases")
struct ResourceCodecAliasTests {
    /// Nine levels of nine aliases each (shared with the tctl test).
    static let billionLaughs = TestSupport.billionLaughsYAML

    @Test(.timeLimit(.minutes(1)))
    func aBillionLaughsDocumentIsRefusedQuickly() throws {
        let started = ContinuousClock.now
        let error = #expect(throws: TeleportError.self) { try ResourceCodec.decodeDocuments(Self.billionLaughs, source: "bomb.yaml") }
        #expect(error?.code == .badParameter)
        #expect(error?.message.hasPrefix("bomb.yaml: ") == true, "\(String(describing: error))")
        #expect(error?.message.contains("anchors and aliases") == true, "\(String(describing: error))")
        #expect(ContinuousClock.now - started < .seconds(2))
    }

    /// Every anchor and alias is refused, harmless ones too (on a mapping, a scalar, a key):
    /// resource files never need them.
    @Test(arguments: [
        "kind: role\nmetadata:\n  name: r\nspec:\n  allow: &x\n    logins: [a]\n  deny: *x\n",
        "kind: role\nmetadata:\n  name: r\n  labels: {env: &v prod, tier: *v}\nspec: {}\n",
        "kind: role\nmetadata: &m\n  name: r\nspec: {}\n",
        "kind: role\nmetadata:\n  name: r\n  labels:\n    &k key: value\nspec: {}\n",
    ])
    func anyAnchorOrAliasIsRefused(text: String) throws {
        let error = #expect(throws: TeleportError.self) { try ResourceCodec.decodeDocuments(text, source: "r.yaml") }
        #expect(error?.message.contains("YAML anchors and aliases (&name, *name) are not accepted") == true, "\(String(describing: error))")
    }

    @Test func quotedStarsAndAmpersandsAreStrings() throws {
        let yaml = "kind: role\nmetadata:\n  name: r\n  description: '&not an anchor *or alias'\nspec:\n  allow:\n    node_labels:\n      '*': '*'\n"
        guard case .role(let role) = try #require(try ResourceCodec.decodeDocuments(yaml, source: "r.yaml").first) else {
            Issue.record("not a role")
            return
        }
        #expect(role.metadata.description == "&not an anchor *or alias")
        #expect(role.spec.allow?.nodeLabels?["*"] == LabelValues(["*"]))
    }
}
