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

    @OptionGroup var daemon: DaemonOptions
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
        var flags = daemon.flags
        var database = DatabaseFlags(name: name, protocol: dbProtocol, uri: uri)
        database.description = description
        database.labels = labels
        database.caCertFile = caCertFile
        flags.database = database
        try await startDaemon(flags)
    }
}
