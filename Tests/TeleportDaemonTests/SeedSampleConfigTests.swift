import Foundation
import TeleportAPI
import TeleportDaemon
import Testing

/// The sample `teleport.yaml` files of the two admin manuals (the seed documents) load.
@Suite("Seed sample configurations")
struct SeedSampleConfigTests {
    /// The newer manual's sample, copied verbatim from the seed.
    @Test func newerManualSampleLoads() throws {
        let path = DaemonTestSupport.fixture("seed-v4-sample.yaml").path
        let config = try FileConfig.load(path: path)

        #expect(config.teleport.nodeName == "NODE_NAME")
        #expect(config.teleport.dataDir == "/var/lib/teleport")
        #expect(config.teleport.authToken == "xxxx-token-xxxx")
        #expect(config.teleport.caPins == ["sha256:ca-pin-hash-goes-here"])
        #expect(config.teleport.authServers == ["10.1.0.5:3025", "10.1.0.6:3025"])
        #expect(config.teleport.log.output == "stderr")
        #expect(config.teleport.log.severity == "INFO")
        #expect(config.teleport.storage.type == .sqlite)

        #expect(config.auth.enabled)
        #expect(config.auth.clusterName == "teleport-aws-us-east-1")
        #expect(config.auth.listenAddr == "0.0.0.0:3025")
        #expect(config.auth.tokens == ["proxy,node:xxxx-token-xxxx"])
        #expect(config.auth.authenticationType == "local")
        #expect(config.auth.secondFactor == "otp")

        #expect(config.ssh.enabled)
        #expect(config.ssh.listenAddr == "0.0.0.0:3022", "not in the sample: the default")
        #expect(config.ssh.labels == ["teleport": "static-label-example"])
        try #require(config.ssh.commands.count == 2)
        #expect(config.ssh.commands[0].name == "hostname")
        #expect(config.ssh.commands[0].command == ["/usr/bin/hostname"])
        #expect(config.ssh.commands[0].period == 60)
        #expect(config.ssh.commands[1].name == "arch")
        #expect(config.ssh.commands[1].command == ["/usr/bin/uname", "-p"])
        #expect(config.ssh.commands[1].period == 3600)

        #expect(config.proxy.enabled)
        #expect(config.proxy.listenAddr == "0.0.0.0:3023")
        #expect(config.proxy.webListenAddr == "0.0.0.0:3080")
        #expect(config.proxy.tunnelListenAddr == "0.0.0.0:3024")
        #expect(config.proxy.publicAddrs == ["TELEPORT_PUBLIC_DNS_NAME:3080"])
        try #require(config.proxy.httpsKeyPairs.count == 1)
        #expect(config.proxy.httpsKeyPairs[0].keyFile == "/var/lib/teleport/webproxy_key.pem")
        #expect(config.proxy.httpsKeyPairs[0].certFile == "/var/lib/teleport/webproxy_cert.pem")

        // Every key of this sample is supported: nothing to warn about.
        #expect(config.warnings == [])
    }

    /// The fixture really is the seed's text, not an edited copy.
    @Test func newerManualFixtureIsVerbatim() throws {
        let fixture = try String(contentsOf: DaemonTestSupport.fixture("seed-v4-sample.yaml"), encoding: .utf8)
        let seed = URL(fileURLWithPath: "/work/shared/seeds/003_537a3e9521cab91e.txt")
        guard let seedText = try? String(contentsOf: seed, encoding: .utf8) else { return }  // seeds not on this machine
        #expect(seedText.contains(fixture))
        #expect(fixture.contains("# Sample Teleport configuration file"))
        #expect(fixture.contains("https_keypairs:"))
    }

    /// The older manual's sample (reconstructed: the text dump lost its section headers).
    @Test func olderManualSampleLoadsWithWarnings() throws {
        let path = DaemonTestSupport.fixture("seed-v2-sample.yaml").path
        let config = try FileConfig.load(path: path)

        #expect(config.teleport.nodeName == "graviton")
        #expect(config.teleport.dataDir == "/var/lib/teleport")
        #expect(config.teleport.authToken == "xxxx-token-xxxx")
        #expect(config.teleport.advertiseIP == "10.1.0.5")
        #expect(config.teleport.authServers == ["10.1.0.5:3025", "10.1.0.6:3025"])
        #expect(config.teleport.connectionLimits.maxConnections == 1000)
        #expect(config.teleport.connectionLimits.maxUsers == 250)
        #expect(config.teleport.log.output == "stderr")
        #expect(config.teleport.log.severity == "ERROR")
        #expect(config.teleport.storage.type == .sqlite, "bolt is replaced by the embedded SQLite backend")

        #expect(config.auth.enabled)
        #expect(config.auth.authenticationType == "local")
        #expect(config.auth.secondFactor == "otp")
        #expect(config.auth.listenAddr == "0.0.0.0:3025")
        #expect(config.auth.tokens == ["proxy,node:xxxxx", "auth:yyyy"])
        #expect(config.auth.clusterName == "main")

        #expect(config.ssh.enabled)
        #expect(config.ssh.listenAddr == "0.0.0.0:3022")
        #expect(config.ssh.labels == ["role": "master", "type": "postgres"])
        #expect(config.ssh.commands.map(\.name) == ["hostname", "arch"])
        #expect(config.ssh.commands.map(\.period) == [60, 3600])

        #expect(config.proxy.enabled)
        #expect(config.proxy.listenAddr == "0.0.0.0:3023")
        #expect(config.proxy.tunnelListenAddr == "0.0.0.0:3024")
        #expect(config.proxy.webListenAddr == "0.0.0.0:3080")
        try #require(config.proxy.httpsKeyPairs.count == 1)
        #expect(config.proxy.httpsKeyPairs[0].keyFile == "/etc/teleport/teleport.key")
        #expect(config.proxy.httpsKeyPairs[0].certFile == "/etc/teleport/teleport.crt")

        // Documented but not acted on: one warning each, naming the file and the key.
        #expect(config.warnings.count == 3, "\(config.warnings)")
        for key in ["teleport.storage.type", "auth_service.dynamic_config", "auth_service.authentication.u2f"] {
            #expect(config.warnings.contains { $0.hasPrefix("\(path): \(key) ") }, "no warning for \(key): \(config.warnings)")
        }
        #expect(config.warnings.contains { $0.contains("bolt") })
    }

    /// The reconstruction keeps its note and every section of the original.
    @Test func olderManualFixtureSaysItWasReconstructed() throws {
        let text = try String(contentsOf: DaemonTestSupport.fixture("seed-v2-sample.yaml"), encoding: .utf8)
        #expect(text.hasPrefix("# RECONSTRUCTED"))
        for header in ["\nteleport:", "\nauth_service:", "\nssh_service:", "\nproxy_service:"] {
            #expect(text.contains(header))
        }
    }
}
