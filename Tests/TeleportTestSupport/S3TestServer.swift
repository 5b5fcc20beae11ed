public import Foundation

#if canImport(Glibc)
    public import Glibc
#endif

/// A local S3-compatible server for the `s3://` recording tests: moto's server (`python3 -m
/// moto.server`, PyPI `moto[server]`), not AWS. It checks Signature V4 against the access keys it
/// issued (``Tests/fixtures/s3_setup.py``: its first three requests make an IAM user, a key and
/// a policy; every later request is authenticated). In a temp dir on a free loopback port, stopped
/// by PID.
public final class S3TestServer: @unchecked Sendable {
    public let directory: URL
    public let port: UInt16
    public let accessKeyID: String
    public let secretAccessKey: String
    public let bucket: String
    private var pid: pid_t?

    /// Why it cannot run here (moto, boto3 or Flask missing), or nil.
    public static let missing: String? = {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import moto.server, boto3, flask, flask_cors"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        do {
            try probe.run()
            probe.waitUntilExit()
        } catch {
            return "python3 cannot be started: \(error)"
        }
        return probe.terminationStatus == 0 ? nil : "moto's S3 server is not installed (scripts/install-test-deps.sh: pip install 'moto[server]')"
    }()

    /// `http://127.0.0.1:PORT`.
    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// The server's output so far.
    public var log: String { (try? String(contentsOf: directory.appendingPathComponent("moto.log"), encoding: .utf8)) ?? "" }

    private init(directory: URL, port: UInt16, pid: pid_t, key: String, secret: String, bucket: String) {
        self.directory = directory
        self.port = port
        self.pid = pid
        accessKeyID = key
        secretAccessKey = secret
        self.bucket = bucket
    }

    /// Starts the server, makes the credentials and `bucket`.
    public static func start(bucket: String = "teleport-recordings") async throws -> S3TestServer {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "s3")
        let port = try TestSupport.freeLoopbackPort()
        let pid = try TestSupport.spawnDaemon(
            "/usr/bin/env", ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)],
            logPath: directory.appendingPathComponent("moto.log").path, environment: ["INITIAL_NO_AUTH_ACTION_COUNT": "3"])
        do {
            guard await TestSupport.waitForPort(port, timeout: .seconds(60)) else { throw TestSupportError("moto_server did not listen on \(port)") }
            let setup = try await TestSupport.run(
                "/usr/bin/env", ["python3", PythonFixtureServer.fixturesDirectory.appendingPathComponent("s3_setup.py").path, "http://127.0.0.1:\(port)", bucket],
                timeout: .seconds(120))
            let words = setup.stdout.split(whereSeparator: \.isWhitespace).map(String.init)
            guard setup.exitCode == 0, words.count == 2 else { throw TestSupportError("s3_setup.py failed: \(setup)") }
            return S3TestServer(directory: directory, port: port, pid: pid, key: words[0], secret: words[1], bucket: bucket)
        } catch {
            _ = await TestSupport.stopDaemon(pid)
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// Stops the server by PID and removes its directory.
    public func stop() async {
        if let pid {
            self.pid = nil
            _ = await TestSupport.stopDaemon(pid)
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `body` with a fresh server, stopped afterwards.
    public static func with<T>(bucket: String = "teleport-recordings", _ body: (S3TestServer) async throws -> T) async throws -> T {
        let server = try await start(bucket: bucket)
        do {
            let value = try await body(server)
            await server.stop()
            return value
        } catch {
            await server.stop()
            throw error
        }
    }

    /// The keys of the objects in the bucket (read with boto3, the server's own client library).
    public func objectKeys() async throws -> [String] {
        let script = """
            import boto3, sys
            s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
            for o in s3.list_objects_v2(Bucket=sys.argv[4]).get("Contents", []): print(o["Key"])
            """
        let result = try await TestSupport.run("/usr/bin/env", ["python3", "-c", script, endpoint, accessKeyID, secretAccessKey, bucket], timeout: .seconds(60))
        guard result.exitCode == 0 else { throw TestSupportError("listing the bucket failed: \(result)") }
        return result.stdout.split(separator: "\n").map(String.init)
    }
}
