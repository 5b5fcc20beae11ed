public import Foundation
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// A real PostgreSQL 15 (``PostgresFixture``: initdb in a temp dir, run as `postgres`, TCP only over
/// TLS with client certificates) set up as the store of the PostgreSQL backend: a CA, a server
/// certificate for `localhost`, a client certificate for the role `teleport`, and a fresh database
/// per caller (``createDatabase()``). Stopped by PID.
public final class PostgresBackendServer: @unchecked Sendable {
    /// The role the client certificate names.
    public static let user = "teleport"
    public let postgres: PostgresFixture
    /// Where the CA and client files live (owned by the test process).
    public let directory: URL
    private let counter = LockedCounter()

    private init(postgres: PostgresFixture, directory: URL) {
        self.postgres = postgres
        self.directory = directory
    }

    public func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    public var port: UInt16 { postgres.port }

    /// Makes the certificates, starts PostgreSQL and creates the `teleport` role.
    public static func start() async throws -> PostgresBackendServer {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "pgbackend")
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        func openssl(_ arguments: [String]) async throws {
            _ = try await TestSupport.runChecked("/usr/bin/openssl", arguments)
        }
        do {
            let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            try await openssl(["req", "-x509"] + curve + ["-keyout", path("ca.key"), "-out", path("ca.pem"), "-subj", "/CN=pg-test-ca", "-days", "2"])
            try TestSupport.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n", to: directory.appendingPathComponent("server.ext"))
            try TestSupport.write("extendedKeyUsage=clientAuth\n", to: directory.appendingPathComponent("client.ext"))
            for (name, commonName) in [("server", "localhost"), ("client", user)] {
                try await openssl(["req"] + curve + ["-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", "/CN=\(commonName)"])
                try await openssl([
                    "x509", "-req", "-in", path("\(name).csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"), "-CAcreateserial",
                    "-out", path("\(name).crt"), "-days", "2", "-extfile", path("\(name).ext"),
                ])
            }
            _ = try await TestSupport.runChecked("/bin/chmod", ["600", path("client.key")])
            let postgres = try await PostgresFixture(tls: TLSFiles(certificate: path("server.crt"), key: path("server.key"), ca: path("ca.pem")))
            let server = PostgresBackendServer(postgres: postgres, directory: directory)
            do {
                // The port opens before PostgreSQL accepts sessions ("the database system is starting up").
                let deadline = ContinuousClock.now + .seconds(60)
                while (try? await postgres.superuser("SELECT 1")) == nil, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                }
                try await postgres.superuser("CREATE ROLE \(user) LOGIN")
            } catch {
                await server.stop()
                throw error
            }
            return server
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// Creates an empty database owned by `teleport` and returns its name.
    public func createDatabase() async throws -> String {
        let name = "teleport_\(counter.next())_\(UUID().uuidString.prefix(8).lowercased())"
        try await postgres.superuser("CREATE DATABASE \(name) OWNER \(Self.user)")
        return name
    }

    /// A conn_string for `database` with the client certificate (PostgreSQL `cert` authentication).
    public func connString(database: String, user: String = PostgresBackendServer.user, sslmode: String = "verify-full") -> String {
        "postgresql://\(user)@localhost:\(port)/\(database)?sslmode=\(sslmode)&sslrootcert=\(path("ca.pem"))&sslcert=\(path("client.crt"))&sslkey=\(path("client.key"))"
    }

    /// Stops PostgreSQL by PID (immediate shutdown) and removes both directories.
    public func stop() async {
        await postgres.stopImmediately()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `body` with a fresh server, stopped afterwards whether `body` succeeded or not.
    public static func with<T>(_ body: (PostgresBackendServer) async throws -> T) async throws -> T {
        let server = try await start()
        do {
            let value = try await body(server)
            await server.stop()
            return value
        } catch {
            await server.stop()
            throw error
        }
    }
}

/// One server for the whole test process, started by the first ``server()`` call and stopped by PID
/// (immediate shutdown) when the process exits, so the suites of one test run pay for one initdb.
public actor SharedPostgresBackendServer {
    public static let instance = SharedPostgresBackendServer()
    private var starting: Task<PostgresBackendServer, any Error>?

    /// The running server (started now if it is not yet).
    public func server() async throws -> PostgresBackendServer {
        if let starting { return try await starting.value }
        let task = Task {
            let server = try await PostgresBackendServer.start()
            if let pid = server.postgres.processID {
                sharedPostgresCleanup.withLock { $0 = (pid, [server.directory.path, server.postgres.directory.path]) }
                atexit {
                    guard let (pid, directories) = sharedPostgresCleanup.withLock({ $0 }) else { return }
                    kill(pid, SIGQUIT)
                    var status: Int32 = 0
                    waitpid(pid, &status, 0)
                    for directory in directories { try? FileManager.default.removeItem(atPath: directory) }
                }
            }
            return server
        }
        starting = task
        return try await task.value
    }
}

/// What the exit handler stops: the shared server's PID and its directories.
private let sharedPostgresCleanup = Mutex<(pid: pid_t, directories: [String])?>(nil)

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}
