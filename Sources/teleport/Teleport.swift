import ArgumentParser
import Foundation
import Logging
import TeleportAPI
import TeleportDaemon

@main
struct TeleportMain {
    /// Ignores SIGPIPE first: `teleport start ... 2>&1 | head -4` must not crash when `head` exits.
    static func main() async {
        StandardStreams.ignoreBrokenPipe()
        await Teleport.main()
    }
}

struct Teleport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "teleport",
        abstract: "The Teleport daemon: auth, proxy and node services.",
        subcommands: [Start.self, Db.self, Configure.self, Version.self, Status.self])
}

/// Prints an error the way every command does: one line on stderr, then a non-zero exit.
func fail(_ error: any Error) -> ExitCode {
    let message = (error as? TeleportError)?.message ?? "\(error)"
    StandardStreams.err("ERROR: \(message)\n")
    return ExitCode(1)
}

/// The options every way of starting the daemon shares (`teleport start`, `teleport db start`).
struct DaemonOptions: ParsableArguments {
    @Option(name: [.short, .customLong("config")], help: "Path to a configuration file [/etc/teleport.yaml].")
    var config: String?
    @Flag(name: [.short, .customLong("debug")], help: "Enable verbose logging to stderr.")
    var debug = false
    @Option(name: .customLong("nodename"), help: "Name of this node, defaults to hostname.")
    var nodename: String?
    @Option(name: .customLong("auth-server"), help: "Address of the auth server.")
    var authServer: String?
    @Option(name: .customLong("token"), help: "Invitation token to register with an auth server.")
    var token: String?
    @Option(name: .customLong("ca-pin"), help: "CA pin to validate the auth server (sha256:...).")
    var caPin: String?
    @Option(name: .customLong("diag-addr"), help: "Start the diagnostics endpoint (/healthz, /readyz, /metrics) on this address.")
    var diagAddr: String?
    @Option(name: .customLong("pid-file"), help: "Write the process id to this file.")
    var pidFile: String?
    @Option(name: .customLong("data-dir"), help: "Data directory (overrides teleport.data_dir).")
    var dataDir: String?

    /// The flags these options set.
    var flags: StartFlags {
        var flags = StartFlags()
        flags.configPath = config
        flags.debug = debug
        flags.nodeName = nodename
        flags.authServer = authServer
        flags.token = token
        flags.caPin = caPin
        flags.diagAddr = diagAddr
        flags.pidFile = pidFile
        flags.dataDir = dataDir
        return flags
    }
}

/// Resolves the configuration and runs the daemon until it stops; an error is one line and exit 1.
func startDaemon(_ flags: StartFlags) async throws {
    do {
        let resolved = try DaemonConfig.resolve(flags: flags)
        let logger = DaemonLogging.bootstrap(config: resolved)
        try await TeleportProcess.run(config: resolved, logger: logger)
    } catch {
        throw fail(error)
    }
}

struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Starts the Teleport daemon.")

    @OptionGroup var daemon: DaemonOptions
    @Option(name: [.short, .customLong("roles")], help: "Comma-separated list of roles to start with [proxy,node,auth,db,app].")
    var roles: String?
    @Option(name: .customLong("labels"), help: "List of labels for this node, e.g. env=prod,uptime=[1m:\"uptime -p\"].")
    var labels: String?
    @Option(name: [.short, .customLong("listen-ip")], help: "IP address to bind to.")
    var listenIP: String?
    @Option(name: .customLong("advertise-ip"), help: "IP to advertise to clients if running behind NAT.")
    var advertiseIP: String?
    @Option(name: .customLong("bootstrap"), help: "Resources (tctl get all output) to load into an empty backend.")
    var bootstrap: String?

    func run() async throws {
        var flags = daemon.flags
        flags.roles = roles
        flags.labels = labels
        flags.listenIP = listenIP
        flags.advertiseIP = advertiseIP
        flags.bootstrap = bootstrap
        try await startDaemon(flags)
    }
}

struct Configure: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Prints a sample configuration file (YAML).")

    @Option(name: [.short, .customLong("output")], help: "Write to this file instead of standard output.")
    var output: String?
    @Option(name: .customLong("cluster-name"), help: "The cluster name to put in the sample.")
    var clusterName: String?
    @Option(name: .customLong("data-dir"), help: "The data directory to put in the sample.")
    var dataDir: String?

    func run() throws {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        let text = SampleConfig.text(
            nodeName: host, dataDir: dataDir ?? DaemonConfig.defaultDataDir().path, clusterName: clusterName ?? host)
        guard let output else {
            print(text, terminator: "")
            return
        }
        if FileManager.default.fileExists(atPath: output) {
            throw fail(TeleportError.alreadyExists("\(output) already exists; remove it first or choose another path"))
        }
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .withoutOverwriting)
        } catch {
            throw fail(TeleportError.accessDenied("cannot write \(output): \(error.localizedDescription)"))
        }
        print("Wrote a sample configuration to \(output)")
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Prints the version.")
    func run() {
        print("Teleport v\(TeleportVersion.version) swift")
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Shows the status of the current Teleport SSH session (only inside one).")
    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        /// The first of `names` the environment sets to something.
        func value(_ names: String...) -> String? {
            names.lazy.compactMap { environment[$0] }.first { !$0.isEmpty }
        }
        // The node sets these in every session (TeleportNode's SessionChannelHandler).
        guard let session = value("TELEPORT_SESSION", "SSH_SESSION_ID") else {
            throw fail(TeleportError.badParameter(
                "teleport status only works inside a Teleport SSH session (TELEPORT_SESSION is not set); run it in a tsh ssh session"))
        }
        print("Cluster Name: \(value("TELEPORT_CLUSTER_NAME", "SSH_TELEPORT_CLUSTER_NAME") ?? "-")")
        print("Node        : \(value("TELEPORT_NODENAME") ?? "-")")
        print("Host UUID   : \(value("TELEPORT_HOST_UUID", "SSH_TELEPORT_HOST_UUID") ?? "-")")
        print("Session ID  : \(session)")
        print("User        : \(value("TELEPORT_USERNAME", "SSH_TELEPORT_USER") ?? "-")")
        print("Login       : \(value("TELEPORT_LOGIN", "USER") ?? "-")")
    }
}
