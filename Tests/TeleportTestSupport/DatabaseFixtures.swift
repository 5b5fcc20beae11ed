public import Foundation

#if canImport(Glibc)
    public import Glibc
#endif

/// Runs database servers from Debian's packages as their unprivileged system users (`setpriv`),
/// in a temporary directory of their own, on a free loopback port, with the TLS files a test
/// hands them (as `tctl auth sign --format=db` writes them). Needs root.
public enum DatabaseServers {
    /// `setpriv` (util-linux).
    public static let setpriv = "/usr/bin/setpriv"
    /// Debian's PostgreSQL 15 binaries.
    public static let postgresBin = "/usr/lib/postgresql/15/bin"
    /// `psql`.
    public static let psql = "/usr/bin/psql"
    /// MariaDB's server and client.
    public static let mariadbd = "/usr/sbin/mariadbd"
    public static let mariadbInstallDB = "/usr/bin/mariadb-install-db"
    public static let mariadb = "/usr/bin/mariadb"

    /// True when PostgreSQL 15 and psql are installed and this process may switch users.
    public static var postgresAvailable: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: setpriv) && getpwnam("postgres") != nil
            && FileManager.default.isExecutableFile(atPath: postgresBin + "/postgres") && FileManager.default.isExecutableFile(atPath: psql)
    }

    /// True when the MariaDB server and client are installed and this process may switch users.
    public static var mariaDBAvailable: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: setpriv) && getpwnam("mysql") != nil
            && FileManager.default.isExecutableFile(atPath: mariadbd) && FileManager.default.isExecutableFile(atPath: mariadb)
    }

    /// `setpriv` arguments that run the rest as `user` (its uid, gid and groups).
    static func asUser(_ user: String) -> [String] {
        ["--reuid=\(user)", "--regid=\(user)", "--init-groups", "--"]
    }

    /// Makes a fresh directory owned by `user` (0700) and copies the TLS files into it, owned by
    /// `user` (the key 0600): the servers refuse keys that others can read.
    static func directory(for user: String, prefix: String, tls: TLSFiles) throws -> (URL, TLSFiles) {
        guard let entry = getpwnam(user) else { throw TestSupportError("no system user \(user)") }
        let uid = entry.pointee.pw_uid
        let gid = entry.pointee.pw_gid
        let directory = try TestSupport.makeTemporaryDirectory(prefix: prefix)
        try chown(directory.path, uid, gid)
        var copied: [String] = []
        for (source, mode) in [(tls.certificate, 0o644), (tls.key, 0o600), (tls.ca, 0o644)] {
            let target = directory.appendingPathComponent(URL(fileURLWithPath: source).lastPathComponent).path
            try TestSupport.write(try TestSupport.read(URL(fileURLWithPath: source)), to: URL(fileURLWithPath: target), permissions: mode)
            try chown(target, uid, gid)
            copied.append(target)
        }
        return (directory, TLSFiles(certificate: copied[0], key: copied[1], ca: copied[2]))
    }

    static func chown(_ path: String, user: String) throws {
        guard let entry = getpwnam(user) else { throw TestSupportError("no system user \(user)") }
        try chown(path, entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    static func chown(_ path: String, _ uid: uid_t, _ gid: gid_t) throws {
        guard Glibc.chown(path, uid, gid) == 0 else { throw TestSupportError("chown \(path) failed: errno \(errno)") }
    }
}

/// A certificate, its key and the CA that clients are checked against (PEM files).
public struct TLSFiles: Sendable {
    public var certificate: String
    public var key: String
    public var ca: String
    /// The three files `PREFIX.crt`, `PREFIX.key`, `PREFIX.cas`.
    public init(prefix: String) {
        self.init(certificate: prefix + ".crt", key: prefix + ".key", ca: prefix + ".cas")
    }
    public init(certificate: String, key: String, ca: String) {
        self.certificate = certificate
        self.key = key
        self.ca = ca
    }
}

/// A PostgreSQL 15 server (initdb + postgres, user `postgres`) that accepts TCP only over TLS and
/// only with client certificates (`hostssl all all 127.0.0.1/32 cert`); the Unix socket in its
/// directory trusts the local superuser, for setting up roles.
public final class PostgresFixture: @unchecked Sendable {
    public let directory: URL
    public let port: UInt16
    private var pid: pid_t?
    private var launchArguments: [String] = []

    public init(tls: TLSFiles) async throws {
        let (directory, files) = try DatabaseServers.directory(for: "postgres", prefix: "postgres", tls: tls)
        self.directory = directory
        port = try TestSupport.freeLoopbackPort()
        let data = directory.appendingPathComponent("data").path
        let initdb = try await TestSupport.run(
            DatabaseServers.setpriv,
            DatabaseServers.asUser("postgres") + [DatabaseServers.postgresBin + "/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            timeout: .seconds(120))
        guard initdb.exitCode == 0 else { throw TestSupportError("initdb failed: \(initdb)") }
        let hba = """
            local all all trust
            hostssl all all 127.0.0.1/32 cert
            hostssl all all ::1/128 cert

            """
        try TestSupport.write(hba, to: URL(fileURLWithPath: data + "/pg_hba.conf"))
        try DatabaseServers.chown(data + "/pg_hba.conf", user: "postgres")
        let log = directory.appendingPathComponent("postgres.log").path
        launchArguments = DatabaseServers.asUser("postgres") + [
            DatabaseServers.postgresBin + "/postgres", "-D", data, "-c", "port=\(port)", "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=\(directory.path)", "-c", "ssl=on", "-c", "ssl_cert_file=\(files.certificate)",
            "-c", "ssl_key_file=\(files.key)", "-c", "ssl_ca_file=\(files.ca)", "-c", "fsync=off",
        ]
        pid = try TestSupport.spawnDaemon(DatabaseServers.setpriv, launchArguments, logPath: log)
        // Ready when it answers the superuser on its own socket: an open TCP port alone came before
        // the end of start-up under a loaded run ("the database system is starting up", psql exit 2).
        let deadline = ContinuousClock.now + .seconds(90)
        var ready = false
        while !ready && ContinuousClock.now < deadline {
            if await TestSupport.waitForPort(port, timeout: .seconds(1)), (try? await superuser("SELECT 1")) != nil {
                ready = true
            } else {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        guard ready else {
            await stop()
            throw TestSupportError("postgres did not start: \(try TestSupport.read(URL(fileURLWithPath: log)))")
        }
    }

    /// The postmaster's PID while it runs.
    public var processID: pid_t? { pid }

    /// Stops postgres at once by PID (SIGQUIT: immediate shutdown, which does not wait for connected
    /// clients as SIGTERM's smart shutdown does) and removes the directory.
    public func stopImmediately() async {
        if let pid {
            self.pid = nil
            kill(pid, SIGQUIT)
            _ = await TestSupport.reap(pid, killAfter: .seconds(5))
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Stops postgres at once (SIGQUIT by PID: immediate shutdown, as `pg_ctl restart -m immediate`),
    /// then starts it again on the same data directory and port, and waits until it accepts connections.
    /// `whileDown` runs between the two (a test looks at what its clients do while the server is away).
    public func restartImmediately(whileDown: (() async throws -> Void)? = nil) async throws {
        guard let pid else { throw TestSupportError("postgres is not running") }
        kill(pid, SIGQUIT)
        _ = await TestSupport.reap(pid, killAfter: .seconds(10))
        var downFailure: (any Error)?
        do { try await whileDown?() } catch { downFailure = error }
        let log = directory.appendingPathComponent("postgres.log").path
        self.pid = try TestSupport.spawnDaemon(DatabaseServers.setpriv, launchArguments, logPath: log)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if (try? await superuser("SELECT 1")) != nil {
                if let downFailure { throw downFailure }
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSupportError("postgres did not come back: \(self.log.suffix(2000))")
    }

    /// Runs SQL as the superuser over the Unix socket.
    @discardableResult
    public func superuser(_ sql: String) async throws -> CommandResult {
        let result = try await TestSupport.run(
            DatabaseServers.psql, ["-h", directory.path, "-p", String(port), "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-tAc", sql])
        guard result.exitCode == 0 else { throw TestSupportError("psql as postgres failed: \(result)") }
        return result
    }

    /// Runs `psql "CONNINFO" -tAc SQL` over TCP (`host=localhost`), with `conninfo` added.
    public func psql(_ conninfo: String, _ sql: String) async throws -> CommandResult {
        try await TestSupport.run(
            DatabaseServers.psql, ["host=localhost port=\(port) dbname=postgres connect_timeout=10 \(conninfo)", "-tAc", sql],
            environment: ["PGPASSWORD": "", "PGSSLMODE": "", "HOME": directory.path], timeout: .seconds(60))
    }

    public var log: String { (try? TestSupport.read(directory.appendingPathComponent("postgres.log"))) ?? "" }

    /// Stops postgres by PID (SIGTERM: smart shutdown) and removes the directory.
    public func stop() async {
        if let pid {
            self.pid = nil
            await TestSupport.stopDaemon(pid)
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A MariaDB server (mariadb-install-db + mariadbd, user `mysql`) on a loopback TCP port with the
/// given TLS files; the Unix socket in its directory lets the local root set up accounts.
public final class MariaDBFixture: @unchecked Sendable {
    public let directory: URL
    public private(set) var port: UInt16
    private var pid: pid_t?

    public var socket: String { directory.appendingPathComponent("mysqld.sock").path }

    public init(tls: TLSFiles) async throws {
        let (directory, files) = try DatabaseServers.directory(for: "mysql", prefix: "mariadb", tls: tls)
        self.directory = directory
        port = 0
        let data = directory.appendingPathComponent("data").path
        let install = try await TestSupport.run(
            DatabaseServers.setpriv,
            DatabaseServers.asUser("mysql") + [
                DatabaseServers.mariadbInstallDB, "--no-defaults", "--datadir=\(data)", "--skip-test-db", "--auth-root-authentication-method=socket",
            ], timeout: .seconds(180))
        guard install.exitCode == 0 else { throw TestSupportError("mariadb-install-db failed: \(install)") }
        let log = directory.appendingPathComponent("mariadb.log").path
        // Ready means answering on its own socket: a listening port alone may be another process's (a
        // free port picked here can be taken by a parallel test before mariadbd binds it; then
        // mariadbd exits and is started again on another port).
        for _ in 0..<3 {
            port = try TestSupport.freeLoopbackPort()
            let started = try TestSupport.spawnDaemon(
                DatabaseServers.setpriv,
                DatabaseServers.asUser("mysql") + [
                    DatabaseServers.mariadbd, "--no-defaults", "--datadir=\(data)", "--socket=\(directory.path)/mysqld.sock", "--port=\(port)",
                    "--bind-address=127.0.0.1", "--pid-file=\(directory.path)/mariadbd.pid", "--skip-name-resolve", "--skip-log-bin",
                    "--ssl-cert=\(files.certificate)", "--ssl-key=\(files.key)", "--ssl-ca=\(files.ca)", "--innodb-buffer-pool-size=16M",
                ], logPath: log)
            pid = started
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                var status: Int32 = 0
                if waitpid(started, &status, WNOHANG) == started {
                    pid = nil
                    break
                }
                if TestSupport.canConnect(port: port), (try? await root("SELECT 1")) != nil { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            if pid != nil { break }  // running but not answering: give up below
        }
        await stop()
        throw TestSupportError("mariadbd did not start: \(try TestSupport.read(URL(fileURLWithPath: log)))")
    }

    /// Runs SQL as root over the Unix socket (socket authentication: this process is root).
    @discardableResult
    public func root(_ sql: String) async throws -> CommandResult {
        let result = try await TestSupport.run(DatabaseServers.mariadb, ["--no-defaults", "-S", socket, "-u", "root", "-N", "-B", "-e", sql])
        guard result.exitCode == 0 else { throw TestSupportError("mariadb as root failed: \(result)") }
        return result
    }

    /// Runs the `mariadb` client over TCP to `localhost` with `arguments` (TLS options, user) and `-e SQL`.
    public func client(_ arguments: [String], _ sql: String) async throws -> CommandResult {
        try await TestSupport.run(
            DatabaseServers.mariadb,
            ["--no-defaults", "--protocol=TCP", "-h", "localhost", "-P", String(port), "--connect-timeout=10", "-N", "-B"] + arguments + ["-e", sql],
            timeout: .seconds(60))
    }

    public var log: String { (try? TestSupport.read(directory.appendingPathComponent("mariadb.log"))) ?? "" }

    /// Stops mariadbd by PID and removes the directory.
    public func stop() async {
        if let pid {
            self.pid = nil
            await TestSupport.stopDaemon(pid)
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
