import ArgumentParser
import TeleportDaemon

/// `teleport db`: the database service's own commands.
struct Db: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Database service commands.", subcommands: [DbStart.self])
}

/// `teleport db start --token=... --auth-server=... --name=pg --protocol=postgres --uri=localhost:5432`:
/// a database service serving one database (plus any in `--config`), and nothing else.
struct DbStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Starts a database service that proxies one database: teleport db start --token=T --auth-server=HOST:3025 "
            + "--name=pg --protocol=postgres --uri=localhost:5432.")

    @Option(name: [.short, .customLong("config")], help: "Path to a configuration file (its db_service settings are kept).")
    var config: String?
    @Flag(name: [.short, .customLong("debug")], help: "Enable verbose logging to stderr.")
    var debug = false
    @Option(name: .customLong("nodename"), help: "Name of this host, defaults to hostname.")
    var nodename: String?
    @Option(name: .customLong("auth-server"), help: "Address of the auth server (or the proxy's web address).")
    var authServer: String?
    @Option(name: .customLong("token"), help: "Invitation token with the db role.")
    var token: String?
    @Option(name: .customLong("ca-pin"), help: "CA pin to validate the auth server (sha256:...).")
    var caPin: String?
    @Option(name: .customLong("data-dir"), help: "Data directory.")
    var dataDir: String?
    @Option(name: .customLong("diag-addr"), help: "Start the diagnostics endpoint (/healthz, /readyz, /metrics) on this address.")
    var diagAddr: String?
    @Option(name: .customLong("pid-file"), help: "Write the process id to this file.")
    var pidFile: String?
    @Option(name: .customLong("name"), help: "The database's name in the cluster (tsh db ls shows it).")
    var name: String
    @Option(name: .customLong("protocol"), help: "The database's protocol: postgres or mysql.")
    var dbProtocol: String
    @Option(name: .customLong("uri"), help: "Where the service reaches the database: host:port.")
    var uri: String
    @Option(name: .customLong("description"), help: "A description shown by tsh db ls.")
    var description: String?
    @Option(name: .customLong("labels"), help: "Static labels, e.g. env=prod,team=sales.")
    var labels: String?
    @Option(name: .customLong("ca-cert-file"), help: "The CA that signs the database's certificate (default: the cluster's db CA).")
    var caCertFile: String?

    func run() async throws {
        var flags = StartFlags()
        flags.configPath = config
        flags.debug = debug
        flags.nodeName = nodename
        flags.authServer = authServer
        flags.token = token
        flags.caPin = caPin
        flags.dataDir = dataDir
        flags.diagAddr = diagAddr
        flags.pidFile = pidFile
        var database = DatabaseFlags(name: name, protocol: dbProtocol, uri: uri)
        database.description = description
        database.labels = labels
        database.caCertFile = caCertFile
        flags.database = database
        do {
            let resolved = try DaemonConfig.resolve(flags: flags)
            let logger = DaemonLogging.bootstrap(config: resolved)
            try await TeleportProcess.run(config: resolved, logger: logger)
        } catch {
            throw fail(error)
        }
    }
}
