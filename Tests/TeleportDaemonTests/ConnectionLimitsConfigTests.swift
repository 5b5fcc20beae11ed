import Foundation
import TeleportAPI
import TeleportDaemon
import Testing

/// `teleport.connection_limits` and `teleport.cache` (the seed's "Teleport Scalability Tweaks").
@Suite("connection limits and cache settings")
struct ConnectionLimitsConfigTests {
    @Test(
        "connection_limits: the seed's values, defaults, zero (no limit)",
        arguments: [
            ("", 15000, 250),
            ("teleport:\n  connection_limits:\n    max_connections: 65000\n    max_users: 1000\n", 65000, 1000),
            ("teleport:\n  connection_limits:\n    max_connections: 1000\n    max_users: 250\n", 1000, 250),
            ("teleport:\n  connection_limits:\n    max_connections: 2\n", 2, 250),
            ("teleport:\n  connection_limits:\n    max_users: 1\n", 15000, 1),
            ("teleport:\n  connection_limits:\n    max_connections: 0\n    max_users: 0\n", 0, 0),
            ("teleport:\n  connection_limits:\n", 15000, 250),
        ])
    func limits(yaml: String, connections: Int, users: Int) throws {
        let config = try FileConfig.parse(yaml, file: "t.yaml")
        #expect(config.teleport.connectionLimits.maxConnections == connections)
        #expect(config.teleport.connectionLimits.maxUsers == users)
        #expect(config.warnings.isEmpty, "\(config.warnings)")
    }

    @Test(
        "bad limits are one-line errors naming the key",
        arguments: [
            ("teleport:\n  connection_limits:\n    max_connections: -1\n", "t.yaml: teleport.connection_limits.max_connections (line 3): expected a whole number of at least 0"),
            ("teleport:\n  connection_limits:\n    max_users: many\n", "t.yaml: teleport.connection_limits.max_users (line 3): expected a whole number, found \"many\""),
            ("teleport:\n  connection_limits:\n    max_conections: 5\n", "t.yaml: teleport.connection_limits.max_conections: unknown key"),
            ("teleport:\n  connection_limits: 5\n", "teleport.connection_limits"),
        ])
    func badLimits(yaml: String, message: String) {
        do {
            _ = try FileConfig.parse(yaml, file: "t.yaml")
            Issue.record("accepted \(yaml)")
        } catch let error as TeleportError {
            #expect(error.message.contains(message), "\(error.message)")
            #expect(!error.message.contains("\n"))
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test(
        "cache: type in-memory and enabled are accepted without a warning",
        arguments: [
            "teleport:\n  cache:\n    type: in-memory\n",
            "teleport:\n  cache:\n    type: IN-MEMORY\n    enabled: yes\n",
            "teleport:\n  cache:\n    enabled: true\n",
            "teleport:\n  cache:\n",
            // The seed's proxy settings, whole.
            "teleport:\n  cache:\n    # use an in-memory cache\n    type: in-memory\n  connection_limits:\n    max_connections: 65000\n    max_users: 1000\n",
        ])
    func cacheAccepted(yaml: String) throws {
        let config = try FileConfig.parse(yaml, file: "t.yaml")
        #expect(config.warnings.isEmpty, "\(config.warnings)")
    }

    @Test(
        "cache: another type is a one-line error naming the allowed value; unknown keys are errors",
        arguments: [
            ("teleport:\n  cache:\n    type: sqlite\n", "t.yaml: teleport.cache.type: the cache type \"sqlite\" is not supported; the allowed value is in-memory"),
            ("teleport:\n  cache:\n    type: redis\n", "the cache type \"redis\" is not supported; the allowed value is in-memory"),
            ("teleport:\n  cache:\n    type: [in-memory]\n", "teleport.cache.type"),
            ("teleport:\n  cache:\n    kind: in-memory\n", "t.yaml: teleport.cache.kind: unknown key"),
            ("teleport:\n  cache:\n    enabled: maybe\n", "teleport.cache.enabled"),
        ])
    func cacheRefused(yaml: String, message: String) {
        do {
            _ = try FileConfig.parse(yaml, file: "t.yaml")
            Issue.record("accepted \(yaml)")
        } catch let error as TeleportError {
            #expect(error.code == .badParameter)
            #expect(error.message.contains(message), "\(error.message)")
            #expect(!error.message.contains("\n"))
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test("cache: enabled: no warns (the cache cannot be turned off)")
    func cacheOff() throws {
        let config = try FileConfig.parse("teleport:\n  cache:\n    enabled: no\n", file: "t.yaml")
        #expect(config.warnings == ["t.yaml: teleport.cache.enabled is accepted but the cache cannot be turned off; it stays on, in memory"])
    }
}
