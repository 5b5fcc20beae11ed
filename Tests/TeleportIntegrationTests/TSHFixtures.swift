import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real OpenSSH `ssh-agent` on a private socket, started with `ssh-agent -a SOCKET -D` and
/// stopped by its PID.
final class TSHAgentFixture {
    let directory: URL
    let socketPath: String
    let pid: pid_t

    init() async throws {
        directory = try TestSupport.makeTemporaryDirectory(prefix: "agent")
        socketPath = directory.appendingPathComponent("agent.sock").path
        pid = try TestSupport.spawnDaemon("/usr/bin/ssh-agent", ["-a", socketPath, "-D"], logPath: directory.appendingPathComponent("agent.log").path)
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: socketPath) {
            try #require(ContinuousClock.now < deadline, "ssh-agent did not create \(socketPath)")
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// `ssh-add -L`: the public keys and certificates the agent holds (exit 1 when none).
    func listed() async throws -> CommandResult {
        try await TestSupport.run("/usr/bin/ssh-add", ["-L"], environment: ["SSH_AUTH_SOCK": socketPath])
    }

    func stop() async {
        await TestSupport.stopDaemon(pid)
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Runs `tsh` with a private `TELEPORT_HOME` (and `HOME`, so nothing touches the real `~/.tsh`)
/// and, when given, an SSH agent.
struct TSHRunner {
    let home: URL
    var agentSocket: String?

    init(agentSocket: String? = nil) throws {
        home = try TestSupport.makeTemporaryDirectory(prefix: "tsh-home")
        self.agentSocket = agentSocket
    }

    var tshHome: URL { home.appendingPathComponent(".tsh") }

    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = home.path
        environment["TELEPORT_HOME"] = tshHome.path
        environment["SSH_AUTH_SOCK"] = agentSocket ?? ""
        environment["TELEPORT_PROXY"] = nil
        environment["TELEPORT_USER"] = nil
        return environment
    }

    /// `tsh ARGS` with standard input from /dev/null.
    func run(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> CommandResult {
        try await TestSupport.run(try ClusterFixture.binary("tsh"), arguments, environment: environment, timeout: timeout)
    }

    /// `tsh ARGS` on a pseudo-terminal.
    func terminal(_ arguments: [String]) throws -> TSHTerminal {
        try TSHTerminal(try ClusterFixture.binary("tsh"), arguments, environment: environment)
    }

    /// The permission bits of a file under `~/.tsh`.
    func mode(_ relativePath: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: tshHome.appendingPathComponent(relativePath).path)
        return (attributes[.posixPermissions] as? Int ?? -1) & 0o777
    }

    func cleanUp() {
        try? FileManager.default.removeItem(at: home)
    }
}

/// Hands out TOTP codes that the auth service accepts once each: a step after the last one used,
/// within its one-step skew window (waiting for the clock when needed).
struct TSHCodes {
    let secret: String
    private(set) var lastStep: Int64

    init(secret: String, usedAt date: Date) {
        self.secret = secret
        lastStep = Int64(date.timeIntervalSince1970) / 30
    }

    mutating func next() async throws -> String {
        while true {
            let now = Int64(Date().timeIntervalSince1970) / 30
            let candidate = max(lastStep + 1, now)
            if candidate <= now + 1 {
                lastStep = candidate
                return try TestTOTP.code(base32: secret, time: TimeInterval(candidate * 30))
            }
            try await Task.sleep(for: .seconds(1))
        }
    }
}
