import Foundation
import TeleportDaemon
import Testing

/// `teleport configure` prints a sample that loads as it is.
@Suite("teleport configure sample")
struct SampleConfigTests {
    @Test(arguments: [
        ("graviton", "/var/lib/teleport", "main"),
        ("node-1", "/home/alice/.local/share/teleport", "teleport-aws-us-east-1"),
        ("db.example", "/srv/my teleport", "example.com"),
    ])
    func sampleParsesWithTheGivenValues(nodeName: String, dataDir: String, clusterName: String) throws {
        let text = SampleConfig.text(nodeName: nodeName, dataDir: dataDir, clusterName: clusterName)
        let config = try FileConfig.parse(text, file: "sample.yaml")

        #expect(config.teleport.nodeName == nodeName)
        #expect(config.teleport.dataDir == dataDir)
        #expect(config.auth.clusterName == clusterName)
        #expect(config.teleport.storage.type == .sqlite)
        #expect(config.teleport.storage.auditEventsURIs == ["file://\(dataDir)/log"])
        #expect(config.teleport.log.output == "stderr")
        #expect(config.teleport.log.severity == "INFO")
        #expect(config.teleport.connectionLimits.maxConnections == 15000)
        #expect(config.teleport.connectionLimits.maxUsers == 250)
        #expect(config.teleport.authToken == nil, "joining settings are commented out")
        #expect(config.teleport.authServers == [])

        #expect(config.auth.enabled && config.ssh.enabled && config.proxy.enabled)
        #expect(config.auth.listenAddr == "0.0.0.0:3025")
        #expect(config.auth.tokens == [])
        #expect(config.auth.secondFactor == "otp")
        #expect(config.ssh.listenAddr == "0.0.0.0:3022")
        #expect(config.ssh.labels == ["env": "example"])
        #expect(config.ssh.commands.map(\.name) == ["hostname"])
        #expect(config.ssh.commands.first?.command == ["hostname"])
        #expect(config.ssh.commands.first?.period == 60)
        #expect(config.proxy.listenAddr == "0.0.0.0:3023")
        #expect(config.proxy.webListenAddr == "0.0.0.0:3080")
        #expect(config.proxy.tunnelListenAddr == "0.0.0.0:3024")
        #expect(config.proxy.httpsKeyPairs == [])
        #expect(config.warnings == [])
    }

    /// A data directory may hold characters that are special inside YAML quotes.
    @Test
    func sampleWithApostropheInDataDirParses() throws {
        let text = SampleConfig.text(nodeName: "node", dataDir: "/srv/o'brien/teleport", clusterName: "main")
        let config = try FileConfig.parse(text, file: "sample.yaml")
        #expect(config.teleport.dataDir == "/srv/o'brien/teleport")
        #expect(config.teleport.storage.auditEventsURIs == ["file:///srv/o'brien/teleport/log"])
    }
}
