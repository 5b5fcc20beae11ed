import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `teleport start` refuses a bad value before it writes anything, naming the key; and a listener
/// whose port is taken fails with one wording, whichever listener it is (issue 13, item 11).
@Suite("start-up validation and listener errors", .serialized)
struct StartupValidationTests {
    func errorLine(_ result: CommandResult) -> String {
        result.stderr.split(separator: "\n").last { $0.hasPrefix("ERROR: ") }.map(String.init) ?? ""
    }

    @Test("a bad value in teleport.yaml or a flag stops start before the data dir is touched, naming the key")
    func badValuesLeaveTheDataDirEmpty() async throws {
        let cases: [(yaml: String, flags: [String], expected: [String])] = [
            ("auth_service:\n  listen_addr: notaport\n", [], ["auth_service.listen_addr", "an address to listen on"]),
            ("ssh_service:\n  listen_addr: nohost.invalid:3022\n", [], ["ssh_service.listen_addr", "an address to listen on"]),
            (
                "ssh_service:\n  commands:\n  - name: up\n    command: [uptime]\n    period: 0s\n", [],
                ["ssh_service.commands[0].period", "at least 1s"]
            ),
            (
                "ssh_service:\n  commands:\n  - name: up\n    command: [no-such-program-xyz]\n", [],
                ["ssh_service.commands[0].command", "no-such-program-xyz", "not an executable"]
            ),
            ("auth_service:\n  authentication:\n    second_factor: u2f\n", [], ["second_factor", "\"u2f\" is not supported"]),
            ("teleport:\n  storage:\n    type: postgresql\n", [], ["teleport.storage.conn_string is missing"]),
            (
                "proxy_service:\n  https_keypairs:\n  - key_file: /nonexistent/key.pem\n    cert_file: /nonexistent/cert.pem\n", [],
                ["proxy_service.https_keypairs[0].cert_file", "cannot read /nonexistent/cert.pem"]
            ),
            ("teleport:\n  storage:\n    audit_events_uri: [\"s3://bucket\"]\n", [], ["teleport.storage.audit_events_uri", "s3://bucket", "not supported"]),
            ("teleport:\n  nodename: a\n", ["--labels", "up=[1m:\"no-such-program-xyz\"]"], ["--labels", "not an executable"]),
            ("teleport:\n  nodename: a\n", ["--diag-addr", "nohost.invalid:3000"], ["--diag-addr", "not an address to listen on"]),
        ]
        for (yaml, flags, expected) in cases {
            let directory = try TestSupport.makeTemporaryDirectory(prefix: "badvalue")
            defer { try? FileManager.default.removeItem(at: directory) }
            let config = directory.appendingPathComponent("teleport.yaml")
            let dataDir = directory.appendingPathComponent("data")
            try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
            try TestSupport.write(yaml, to: config)
            let result = try await TestSupport.run(
                try ClusterFixture.binary("teleport"), ["start", "-c", config.path, "--data-dir", dataDir.path] + flags, timeout: .seconds(30))
            #expect(result.exitCode != 0, "\(yaml)")
            let line = errorLine(result)
            for fragment in expected { #expect(line.contains(fragment), "\(fragment) missing in: \(line) (\(result))") }
            let left = try FileManager.default.contentsOfDirectory(atPath: dataDir.path)
            #expect(left.isEmpty, "the data dir must stay empty on a bad config (\(yaml)): \(left)")
        }
    }

    /// Listens on 127.0.0.1:`port` (no SO_REUSEADDR) so that the daemon finds it taken.
    func occupy(_ port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0, "cannot occupy port \(port)")
        try #require(listen(fd, 1) == 0)
        return fd
    }

    @Test(
        "a port in use gives the same one-line wording for every listener",
        arguments: [
            ("auth", "auth_service.listen_addr"), ("web", "proxy_service.web_listen_addr"), ("proxy", "proxy_service.listen_addr"),
            ("ssh", "ssh_service.listen_addr"), ("diag", "teleport.diag_addr or --diag-addr"),
        ])
    func portInUse(listener: String, key: String) async throws {
        let cluster = try ClusterFixture()
        defer { try? FileManager.default.removeItem(at: cluster.directory) }
        let port: UInt16
        switch listener {
        case "auth": port = cluster.authPort
        case "web": port = cluster.webPort
        case "proxy": port = cluster.proxyPort
        case "ssh": port = cluster.sshPort
        default: port = cluster.diagPort
        }
        let fd = try occupy(port)
        defer { close(fd) }
        let result = try await TestSupport.run(
            try ClusterFixture.binary("teleport"),
            ["start", "-c", cluster.configURL.path, "--diag-addr", "127.0.0.1:\(cluster.diagPort)"], timeout: .seconds(60))
        #expect(result.exitCode != 0, "\(result)")
        let line = errorLine(result)
        #expect(
            line == "ERROR: cannot listen on 127.0.0.1:\(port): address already in use (is another teleport running? stop it or change \(key))",
            "\(result)")
    }
}
