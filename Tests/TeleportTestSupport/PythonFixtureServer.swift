public import Foundation

#if canImport(Glibc)
    public import Glibc
#endif

/// One of the Python test servers under `Tests/fixtures/` (the OpenID Connect provider, the GitHub
/// stand-in) run as a child process: a private temporary directory holds its JSON config, its log and
/// the file it writes its port to once it listens on 127.0.0.1; stopped by PID.
public final class PythonFixtureServer: @unchecked Sendable {
    /// The private work directory (config, port file, log).
    public let directory: URL
    /// The port it listens on (127.0.0.1).
    public let port: UInt16
    /// The running process.
    public private(set) var pid: pid_t

    /// `Tests/fixtures/`, found from this source file.
    public static var fixturesDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("fixtures")
    }

    /// Why the Python fixtures cannot run here (python3 or a module missing), or nil.
    public static let missing: String? = {
        let modules = "authlib, flask, joserfc, requests"
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import \(modules)"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        do {
            try probe.run()
            probe.waitUntilExit()
        } catch {
            return "python3 cannot be started: \(error)"
        }
        return probe.terminationStatus == 0
            ? nil : "a Python module of \(modules) is missing (scripts/install-test-deps.sh: pip install Authlib Flask requests)"
    }()

    private init(directory: URL, port: UInt16, pid: pid_t) {
        self.directory = directory
        self.port = port
        self.pid = pid
    }

    /// `http://127.0.0.1:PORT`.
    public var url: String { "http://127.0.0.1:\(port)" }

    /// The server's output so far.
    public var log: String { (try? String(contentsOf: directory.appendingPathComponent("server.log"), encoding: .utf8)) ?? "" }

    /// Writes `config` (JSON) and starts `python3 Tests/fixtures/SCRIPT --config ... --port-file ...`,
    /// returning once the port file exists (the server writes it after its socket listens), or
    /// throwing when the process exits first or 30 s pass.
    public static func start(script: String, config: Data, prefix: String) async throws -> PythonFixtureServer {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: prefix)
        let configURL = directory.appendingPathComponent("config.json")
        try config.write(to: configURL)
        let portURL = directory.appendingPathComponent("port")
        let logPath = directory.appendingPathComponent("server.log").path
        let pid = try TestSupport.spawnDaemon(
            "/usr/bin/env",
            ["python3", fixturesDirectory.appendingPathComponent(script).path, "--config", configURL.path, "--port-file", portURL.path],
            logPath: logPath, environment: ["PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore::DeprecationWarning"])
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOf: portURL, encoding: .utf8), let port = UInt16(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return PythonFixtureServer(directory: directory, port: port, pid: pid)
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                try? FileManager.default.removeItem(at: directory)
                throw TestSupportError("\(script) exited before listening:\n\(log.suffix(3000))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        _ = await TestSupport.stopDaemon(pid)
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: directory)
        throw TestSupportError("\(script) did not listen within 30 s:\n\(log.suffix(3000))")
    }

    /// Stops the server by PID and removes its directory.
    public func stop() async {
        if pid > 0 { _ = await TestSupport.stopDaemon(pid) }
        pid = 0
        try? FileManager.default.removeItem(at: directory)
    }

    /// A request to the server with curl: the HTTP status and the body.
    public func request(_ method: String, _ path: String, json: String? = nil) async throws -> (status: Int, body: String) {
        var arguments = ["-s", "-m", "20", "-X", method, "-o", "-", "-w", "\n%{http_code}"]
        if let json { arguments += ["-H", "Content-Type: application/json", "--data-binary", json] }
        let result = try await TestSupport.run("/usr/bin/curl", arguments + [url + path])
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    /// POSTs `json` to an admin `path`, requiring a 200 reply.
    @discardableResult
    public func admin(_ path: String, json: String) async throws -> String {
        let reply = try await request("POST", path, json: json)
        guard reply.status == 200 else { throw TestSupportError("POST \(path) \(json): HTTP \(reply.status) \(reply.body)") }
        return reply.body
    }

    /// `GET /admin/events`: what the server saw, oldest first.
    public func events() async throws -> [[String: Any]] {
        let reply = try await request("GET", "/admin/events")
        let parsed = try JSONSerialization.jsonObject(with: Data(reply.body.utf8))
        return parsed as? [[String: Any]] ?? []
    }

    /// The JSON text of an encodable configuration.
    static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(value)
    }
}

/// A claim value in a test provider's user configuration: a string or a list of strings.
public enum FixtureClaim: Sendable, Encodable, Equatable, ExpressibleByStringLiteral, ExpressibleByArrayLiteral {
    case string(String)
    case list([String])

    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: String...) { self = .list(elements) }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .list(let value): try container.encode(value)
        }
    }
}
