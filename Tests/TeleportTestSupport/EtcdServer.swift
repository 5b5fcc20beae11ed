public import Foundation
#if canImport(Glibc)
    public import Glibc
#endif

/// A real single-member etcd for one test: TLS with client certificates (made by openssl), in a private
/// temporary directory owned by `nobody`, run as `nobody` via setpriv on free loopback ports; stopped by PID.
public final class EtcdServer: @unchecked Sendable {
    public let directory: URL
    public let clientPort: UInt16
    public let peerPort: UInt16
    public private(set) var pid: pid_t = 0

    public static let etcdPath = "/usr/bin/etcd"
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: etcdPath) }

    private init(directory: URL, clientPort: UInt16, peerPort: UInt16) {
        self.directory = directory
        self.clientPort = clientPort
        self.peerPort = peerPort
    }

    public var url: String { "https://127.0.0.1:\(clientPort)" }
    public func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Makes the certificates and starts etcd.
    public static func start() async throws -> EtcdServer {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "etcd")
        let server = EtcdServer(
            directory: directory, clientPort: try TestSupport.freeLoopbackPort(), peerPort: try TestSupport.freeLoopbackPort())
        do {
            try await server.makeCertificates()
            _ = try await TestSupport.runChecked("/bin/chown", ["-R", "nobody:nogroup", directory.path])
            try await server.launch()
        } catch {
            await server.stop()
            throw error
        }
        return server
    }

    private func makeCertificates() async throws {
        func run(_ arguments: [String]) async throws {
            _ = try await TestSupport.runChecked("/usr/bin/openssl", arguments)
        }
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try await run(["req", "-x509"] + curve + ["-keyout", path("ca.key"), "-out", path("ca.pem"), "-subj", "/CN=etcd-test-ca", "-days", "2"])
        // etcd's JSON gateway dials etcd's gRPC port with the server certificate, so it needs clientAuth too.
        try TestSupport.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n", to: directory.appendingPathComponent("server.ext"))
        try TestSupport.write("extendedKeyUsage=clientAuth\n", to: directory.appendingPathComponent("client.ext"))
        for name in ["server", "client"] {
            try await run(["req"] + curve + ["-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", "/CN=\(name)"])
            try await run([
                "x509", "-req", "-in", path("\(name).csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"), "-CAcreateserial",
                "-out", path("\(name).pem"), "-days", "2", "-extfile", path("\(name).ext"),
            ])
        }
    }

    /// Starts etcd (again, after ``stop()``, on the same data and ports) and waits until it serves.
    public func launch() async throws {
        let arguments = [
            "--reuid=nobody", "--regid=nogroup", "--clear-groups", Self.etcdPath,
            "--name", "test", "--data-dir", path("data"),
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", "http://127.0.0.1:\(peerPort)",
            "--initial-advertise-peer-urls", "http://127.0.0.1:\(peerPort)",
            "--initial-cluster", "test=http://127.0.0.1:\(peerPort)",
            "--cert-file", path("server.pem"), "--key-file", path("server.key"),
            "--trusted-ca-file", path("ca.pem"), "--client-cert-auth",
            "--log-outputs", "stderr",
        ]
        pid = try TestSupport.spawnDaemon("/usr/bin/setpriv", arguments, logPath: path("etcd.log"))
        // Up when a client can read through the JSON gateway (the member has elected itself).
        let probe = [
            "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", path("ca.pem"), "--cert", path("client.pem"),
            "--key", path("client.key"), "-X", "POST", "-d", "{\"key\":\"AA==\"}", "\(url)/v3/kv/range",
        ]
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if try await TestSupport.run("/usr/bin/curl", probe).stdout == "200" { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        let log = (try? String(contentsOfFile: path("etcd.log"), encoding: .utf8))?.suffix(2000) ?? ""
        throw EtcdServerError("etcd did not come up in 60 s:\n\(log)")
    }

    /// Stops etcd by PID (the data stays for a ``launch()`` again).
    public func stop() async {
        if pid > 0 { _ = await TestSupport.stopDaemon(pid) }
        pid = 0
    }

    /// Stops etcd and removes its directory.
    public func remove() async {
        await stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `body` with a fresh etcd, removed afterwards whether `body` succeeded or not.
    public static func with<T>(_ body: (EtcdServer) async throws -> T) async throws -> T {
        let server = try await start()
        do {
            let value = try await body(server)
            await server.remove()
            return value
        } catch {
            await server.remove()
            throw error
        }
    }
}

/// A failure to set up the test etcd.
public struct EtcdServerError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
