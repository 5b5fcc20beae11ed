public import Foundation
import Testing

#if canImport(Glibc)
    public import Glibc
#endif

/// A real single-node cluster for tests: our `teleport` binary started as a child process on
/// free loopback ports with its own data directory, and `tctl` run against it. Stop it with
/// ``stop()``; it is killed by PID.
public final class ClusterFixture: @unchecked Sendable {
    /// The work directory (config, data dir, log).
    public let directory: URL
    /// `teleport.yaml`.
    public let configURL: URL
    /// The data directory.
    public let dataDir: URL
    /// The daemon's combined output.
    public let logURL: URL
    /// The ports.
    public let authPort: UInt16, webPort: UInt16, proxyPort: UInt16, sshPort: UInt16, diagPort: UInt16
    /// The cluster name.
    public let clusterName: String
    /// The running daemon, if any.
    public private(set) var pid: pid_t?

    /// The directory holding `teleport`, `tctl` and `tsh`: `TELEPORT_BIN_DIR`, or the directory of
    /// the test bundle (SwiftPM puts both in `.build/<triple>/debug`).
    public static var binDirectory: URL {
        if let fromEnvironment = ProcessInfo.processInfo.environment["TELEPORT_BIN_DIR"] {
            return URL(fileURLWithPath: fromEnvironment)
        }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("teleport").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug")
    }

    /// The path of one of our binaries; the test fails clearly when it was not built.
    public static func binary(_ name: String) throws -> String {
        let path = binDirectory.appendingPathComponent(name).path
        try #require(
            FileManager.default.isExecutableFile(atPath: path),
            "\(path) is missing: run `swift build` before `swift test` (scripts/test.sh does)")
        return path
    }

    /// Prepares a cluster; `extraYAML` is appended to the generated config (it may add sections
    /// that are not generated: the generated ones are `teleport`, `auth_service`, `proxy_service`,
    /// `ssh_service`).
    public init(
        clusterName: String = "test.cluster", teleportSection: String = "", authSection: String = "", proxySection: String = "",
        extraYAML: String = ""
    ) throws {
        directory = try TestSupport.makeTemporaryDirectory(prefix: "cluster")
        configURL = directory.appendingPathComponent("teleport.yaml")
        dataDir = directory.appendingPathComponent("data")
        logURL = directory.appendingPathComponent("teleport.log")
        authPort = try TestSupport.freeLoopbackPort()
        webPort = try TestSupport.freeLoopbackPort()
        proxyPort = try TestSupport.freeLoopbackPort()
        sshPort = try TestSupport.freeLoopbackPort()
        diagPort = try TestSupport.freeLoopbackPort()
        self.clusterName = clusterName
        let config = """
            teleport:
              nodename: testnode
              data_dir: \(dataDir.path)
              log:
                severity: DEBUG
            \(teleportSection)
            auth_service:
              cluster_name: \(clusterName)
              listen_addr: 127.0.0.1:\(authPort)
            \(authSection)
            proxy_service:
              listen_addr: 127.0.0.1:\(proxyPort)
              web_listen_addr: 127.0.0.1:\(webPort)
              tunnel_listen_addr: 127.0.0.1:\(try TestSupport.freeLoopbackPort())
            \(proxySection)
            ssh_service:
              listen_addr: 127.0.0.1:\(sshPort)
              labels:
                env: test
            \(extraYAML)
            """
        try TestSupport.write(config, to: configURL)
    }

    /// Starts `teleport start -c CONFIG --diag-addr ... --pid-file ...` plus `arguments`, and waits
    /// until `/readyz` answers 200. `environment` is added to this process's.
    public func start(_ arguments: [String] = [], environment: [String: String]? = nil) async throws {
        let teleport = try Self.binary("teleport")
        let pid = try TestSupport.spawnDaemon(
            teleport,
            ["start", "-c", configURL.path, "--diag-addr", "127.0.0.1:\(diagPort)", "--pid-file", pidFileURL.path] + arguments,
            logPath: logURL.path, environment: environment)
        self.pid = pid
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if try await diag("readyz").status == 200 { return }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                self.pid = nil
                Issue.record("teleport exited during start:\n\(log)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("teleport did not become ready in 60 s:\n\(log)")
        throw CancellationError()
    }

    /// Where `--pid-file` points.
    public var pidFileURL: URL { directory.appendingPathComponent("teleport.pid") }

    /// The daemon's output so far.
    public var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// GET `http://127.0.0.1:<diag>/<path>`: the status (0 when unreachable) and body.
    public func diag(_ path: String) async throws -> (status: Int, body: String) {
        let result = try await TestSupport.run(
            "/usr/bin/curl", ["-s", "-m", "5", "-o", "-", "-w", "\n%{http_code}", "http://127.0.0.1:\(diagPort)/\(path)"])
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        return (status, lines.dropLast().joined(separator: "\n"))
    }

    /// Runs `tctl -c CONFIG ARGS`.
    public func tctl(_ arguments: [String], stdin: String? = nil) async throws -> CommandResult {
        try await TestSupport.run(try Self.binary("tctl"), ["-c", configURL.path] + arguments)
    }

    /// Stops the daemon with SIGTERM (SIGKILL after 5 s); returns true when it exited gracefully.
    @discardableResult public func stop() async -> Bool {
        guard let pid else { return true }
        self.pid = nil
        return await TestSupport.stopDaemon(pid)
    }

    /// Kills the daemon if still running and removes the directory.
    public func cleanUp() async {
        await stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Runs `body` with a cluster and always stops and removes it afterwards, on success or failure.
public func withCluster<T>(_ cluster: ClusterFixture, _ body: (ClusterFixture) async throws -> T) async throws -> T {
    do {
        let result = try await body(cluster)
        await cluster.cleanUp()
        return result
    } catch {
        await cluster.cleanUp()
        throw error
    }
}
