import Foundation
@testable import TeleportClient
import Testing

/// Trusted clusters (issue 20): the `tsh config` blocks for leaf clusters (pure parts).
@Suite("trusted clusters: tsh config blocks for leaf clusters (pure)")
struct TrustedClusterConfigTests {
    @Test("a leaf's block matches NODE.LEAF and goes through tsh proxy ssh and tsh known-hosts with --cluster=LEAF")
    func leafBlock() {
        let setting = TSHCommands.ConfigSetting(key: "/k", certificate: "/k-cert.pub", home: "/h", tsh: "/bin/tsh", proxy: "root:3080")
        let block = TSHCommands.hostBlock(pattern: "leaf.example", cluster: "leaf.example", setting)
        #expect(block.hasPrefix("Host *.leaf.example\n"), "\(block)")
        #expect(block.contains("proxy ssh --cluster=leaf.example %r@%h:%p\n"), "\(block)")
        #expect(block.contains("known-hosts --cluster=leaf.example %H\n"), "\(block)")
        #expect(block.contains("StrictHostKeyChecking yes") && block.contains("--proxy=root:3080"), "\(block)")
    }

    @Test("cluster names that could break ssh_config are left out")
    func safeNames() {
        for name in ["leaf.example", "leaf-1.example", "LEAF_2"] { #expect(TSHCommands.isPatternSafe(name), "\(name)") }
        for name in ["", "leaf example", "leaf\n  ProxyCommand x", "*", "le\"af", "lëaf", "a,b", "!x"] {
            #expect(!TSHCommands.isPatternSafe(name), "\(name.debugDescription)")
        }
    }
}
