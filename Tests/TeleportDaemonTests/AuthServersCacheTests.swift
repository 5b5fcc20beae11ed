import Foundation
import TeleportDaemon
import TeleportTestSupport
import Testing

/// `authservers.json`: what is read from it (bad files are ignored with a reason, never fatal), how
/// it merges with the configured `auth_servers`, and how it is written (atomically, 0600).
@Suite("authservers.json")
struct AuthServersCacheTests {
    @Test(
        "merge: configured first, then cached ones not configured",
        arguments: [
            (["a:3025"], ["b:3025"], ["a:3025", "b:3025"]),
            (["a:3025", "b:3025"], ["b:3025", "c:3025"], ["a:3025", "b:3025", "c:3025"]),
            (["a"], ["a:3025", "c:4025"], ["a", "c:4025"]),
            (["a:3025"], [], ["a:3025"]),
            (["a:3025"], ["c:3025", "c:3025"], ["a:3025", "c:3025"]),
        ])
    func merge(configured: [String], cached: [String], expected: [String]) {
        #expect(AuthServersCache.merge(configured: configured, cached: cached) == expected)
    }

    @Test(
        "load: valid addresses kept in order; anything else ignored with a reason",
        arguments: [
            (#"{"auth_servers": ["10.0.0.1:3025", "auth.example", "10.0.0.1:3025"]}"#, ["10.0.0.1:3025", "auth.example:3025"], false),
            (#"{"auth_servers": []}"#, [], false),
            (#"{"auth_servers": ["ok:3025", "bad host:1", "x:99999", ""]}"#, ["ok:3025"], true),
            (#"not json"#, [], true),
            (#"{"servers": ["a:3025"]}"#, [], true),
            (#"{"auth_servers": "a:3025"}"#, [], true),
        ])
    func load(text: String, expected: [String], problem: Bool) throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "authservers")
        defer { try? FileManager.default.removeItem(at: directory) }
        try TestSupport.write(text, to: directory.appendingPathComponent(AuthServersCache.fileName))
        let loaded = AuthServersCache.load(dataDir: directory)
        #expect(loaded.addresses == expected)
        #expect((loaded.problem != nil) == problem, "\(loaded)")
        if let reason = loaded.problem { #expect(reason.contains(AuthServersCache.fileName)) }
    }

    @Test("a missing file is no problem; a huge one is ignored")
    func missingAndHuge() throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "authservers")
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = AuthServersCache.load(dataDir: directory)
        #expect(missing.addresses.isEmpty && missing.problem == nil)
        let huge = #"{"auth_servers": ["a:3025"], "pad": ""# + String(repeating: "x", count: 70_000) + #""}"#
        try TestSupport.write(huge, to: directory.appendingPathComponent(AuthServersCache.fileName))
        let loaded = AuthServersCache.load(dataDir: directory)
        #expect(loaded.addresses.isEmpty && loaded.problem?.contains("larger than") == true, "\(loaded)")
    }

    @Test("write: 0600, sorted and deduplicated, rewritten only when the list changed, read back as written")
    func write() throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "authservers")
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try AuthServersCache.write(["b:3025", "a", "b:3025", "not an address"], dataDir: directory))
        let url = directory.appendingPathComponent(AuthServersCache.fileName)
        let mode = (try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int ?? 0) & 0o777
        #expect(mode == 0o600)
        #expect(AuthServersCache.load(dataDir: directory).addresses == ["a:3025", "b:3025"])
        #expect(try AuthServersCache.write(["a:3025", "b:3025"], dataDir: directory) == false)
        #expect(try AuthServersCache.write(["c:3025"], dataDir: directory))
        #expect(AuthServersCache.load(dataDir: directory).addresses == ["c:3025"])
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == [AuthServersCache.fileName])
    }
}
