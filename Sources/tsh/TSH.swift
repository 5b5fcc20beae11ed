import ArgumentParser
import Foundation
import TeleportAPI
import TeleportClient

@main
struct TSHMain {
    /// ArgumentParser reads a command's options after its name; Teleport's manuals also write the
    /// global ones first (`tsh --proxy=work --user=joe login`, `tsh -i FILE status`), so those are
    /// moved behind the subcommand here.
    static func main() async {
        StandardStreams.ignoreBrokenPipe()
        let withValue: Set<String> = ["--proxy", "--user", "-i", "--identity", "--auth", "--browser"]
        let flags: Set<String> = ["--insecure", "-d", "--debug"]
        let arguments: [String]
        do {
            // The manuals' `tsh --proxy=work --user=joe root@luna` runs `tsh ssh`, as Teleport's tsh does.
            arguments = try CommandRouter.route(
                Array(CommandLine.arguments.dropFirst()), program: "tsh", tree: CommandTree(command: TSH.self), globalsWithValue: withValue,
                globalFlags: flags, defaultCommand: .init(name: "ssh") { word, afterGlobalOptions in afterGlobalOptions || word.contains("@") })
        } catch {
            StandardStreams.err("ERROR: \((error as? TeleportError)?.message ?? "\(error)")\n")
            exit(1)
        }
        await TSH.main(GlobalArguments.reorder(arguments, withValue: withValue, flags: flags, passthrough: ["ssh"]))
    }
}

extension CommandTree {
    /// The names of `command`'s subcommands (and their aliases), all the way down.
    init(command: any ParsableCommand.Type) {
        var children: [String: CommandTree] = [:]
        for subcommand in command.configuration.subcommands {
            let tree = CommandTree(command: subcommand)
            children[subcommand._commandName] = tree
            for alias in subcommand.configuration.aliases { children[alias] = tree }
        }
        self.init(children)
    }
}

struct TSH: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tsh", abstract: "The Teleport client.",
        subcommands: [Login.self, Status.self, Logout.self, List.self, Clusters.self, SSH.self, SCP.self, Play.self, Recordings.self, Sessions.self, Join.self, Proxy.self, Config.self, KnownHosts.self, Version.self, Db.self, Apps.self, Kube.self, Kubectl.self])
}

/// The options every `tsh` command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("proxy"), help: "The proxy's web address, HOST[:PORT] (default port 3080) [$TELEPORT_PROXY].")
    var proxy: String?
    @Option(name: .customLong("user"), help: "The Teleport user [$TELEPORT_USER, else the local user].")
    var user: String?
    @Option(name: [.short, .customLong("identity")], help: "Use this identity file instead of a profile.")
    var identity: String?
    @Flag(name: .customLong("insecure"), help: "Do not verify the proxy's HTTPS certificate (test clusters only).")
    var insecure = false
    @Flag(name: [.short, .customLong("debug")], help: "Verbose output.")
    var debug = false

    var client: ClientOptions {
        ClientOptions(proxy: proxy, user: user, identityFile: identity, insecure: insecure)
    }
}

/// Runs a command's work, printing its output, or one error line and exit code 1.
func perform(_ work: () async throws -> TSHCommands.Outcome) async throws {
    do {
        let outcome = try await work()
        StandardStreams.out(outcome.output)
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    } catch let exit as ExitCode {
        throw exit
    } catch {
        let message = (error as? TeleportError)?.message ?? "\(error)"
        StandardStreams.err("ERROR: \(TerminalText.escape(message))\n")
        throw ExitCode(1)
    }
}

/// Runs a command that passes on another program's exit status (ssh, join, db connect, proxy ssh):
/// a non-zero status becomes this process's; an error is one `ERROR:` line and `failureCode`.
func performExit(failureCode: Int32, _ work: () async throws -> Int32) async throws {
    let code: Int32
    do {
        code = try await work()
    } catch {
        let message = (error as? TeleportError)?.message ?? "\(error)"
        StandardStreams.err("ERROR: \(TerminalText.escape(message))\n")
        throw ExitCode(failureCode)
    }
    if code != 0 { throw ExitCode(code) }
}

extension TSH {
    struct Login: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Log in to a cluster and store short-lived certificates in ~/.tsh.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Certificate lifetime, e.g. 8h or 90m (a bare number is minutes) [12h].")
        var ttl: String?
        @Option(
            name: [.customShort("k"), .customLong("add-keys-to-agent")],
            help: "Load the key into the SSH agent: auto (when SSH_AUTH_SOCK is set), yes, no.")
        var addKeysToAgent = "auto"
        @Option(name: [.short, .customLong("out")], help: "Write an identity file here instead of a profile.")
        var out: String?
        @Option(help: "Log in with this single sign-on connector (tctl get connectors), or local for the password [the cluster's default].")
        var auth: String?
        @Option(help: "none: print the single sign-on URL instead of opening a browser.")
        var browser: String?
        @Option(name: .customLong("kube-cluster"), help: "Then log in to this Kubernetes cluster too (as tsh kube login NAME).")
        var kubeCluster: String?

        func validate() throws {
            guard LoginOptions.AgentMode(rawValue: addKeysToAgent) != nil else {
                throw ValidationError("--add-keys-to-agent must be auto, yes or no, not \"\(addKeysToAgent)\"")
            }
            if let browser, browser != "none" { throw ValidationError("--browser takes only none, not \"\(browser)\"") }
            if kubeCluster != nil, out != nil { throw ValidationError("--kube-cluster needs a profile: it cannot be used with --out") }
        }

        func run() async throws {
            let mode = LoginOptions.AgentMode(rawValue: addKeysToAgent) ?? .auto
            try await perform {
                var outcome = try await TSHCommands.login(
                    global.client, LoginOptions(ttl: ttl, addKeysToAgent: mode, out: out, auth: auth, browser: browser), context: .live())
                if let kubeCluster, outcome.exitCode == 0 {
                    outcome.output += try await TSHCommands.kubeLogin(global.client, name: kubeCluster, context: .live()).output
                } else if out == nil, outcome.exitCode == 0 {
                    outcome.output += await TSHCommands.defaultKubeLogin(global.client, context: .live())
                }
                return outcome
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "List the nodes you can reach; filter by labels: tsh ls env=prod,role=db.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Label filter key=value[,key=value...].") var labels: String?
        @Option(name: .customLong("format"), help: "text, json, yaml or names.") var format = "text"
        @Flag(name: [.short, .customLong("verbose")], help: "Show node IDs too.") var verbose = false
        @Option(name: .customLong("cluster"), help: "The cluster whose nodes to list (tsh clusters).") var cluster: String?

        func run() async throws {
            try await perform {
                guard let parsed = TSHCommands.ListFormat(rawValue: format) else {
                    throw TeleportError.badParameter("--format=\(format) is not known (expected text, json, yaml or names)")
                }
                return try await TSHCommands.list(
                    global.client, labels: labels ?? "", format: parsed, verbose: verbose, cluster: cluster, context: .live())
            }
        }
    }

    struct Clusters: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clusters", abstract: "List the cluster you are logged in to and the leaf clusters that trust it, with their status.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("format"), help: "text or json.") var format = "text"

        func run() async throws {
            try await perform {
                guard ["text", "json"].contains(format) else {
                    throw TeleportError.badParameter("--format=\(format) is not known (expected text or json)")
                }
                return try await TSHCommands.clusters(global.client, json: format == "json", context: .live())
            }
        }
    }

    struct KnownHosts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "known-hosts",
            abstract: "Print known_hosts lines for the cluster's nodes (for OpenSSH's KnownHostsCommand: tsh known-hosts %H).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Only this host's lines.") var host: String?
        @Option(name: .customLong("cluster"), help: "The cluster whose nodes to list (a leaf: tsh clusters).") var cluster: String?

        func run() async throws {
            try await perform { try await TSHCommands.knownHosts(global.client, host: host, cluster: cluster, context: .live()) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the current profile: user, cluster, roles, logins, expiry.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await perform { try TSHCommands.status(global.client, context: .live()) }
        }
    }

    struct Logout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the current profile's keys (or --proxy's, or --proxy and --user's) and their SSH agent entry.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await perform { try TSHCommands.logout(global.client, context: .live()) }
        }
    }

    struct Version: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the version.")
        func run() { print(ClientVersion.line) }
    }
}

extension TSH {
    struct SSH: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ssh", abstract: "Run a shell or a command on a node: tsh ssh [LOGIN@]HOST [COMMAND...].")
        @OptionGroup var global: GlobalOptions
        @Option(name: .short, help: "The remote login.") var l: String?
        @Option(name: .short, help: "The node's SSH port (nodes are reached by name through the proxy).") var p: Int?
        @Flag(name: .customShort("t"), help: "Allocate a terminal.") var tty = false
        @Flag(name: .customShort("T"), help: "Do not allocate a terminal.") var noTTY = false
        @Option(name: .customShort("L"), help: "Forward a local port: [BIND:]PORT:HOST:HOSTPORT.") var local: [String] = []
        @Option(name: .customShort("R"), help: "Forward a remote port: [BIND:]PORT:HOST:HOSTPORT.") var remote: [String] = []
        @Flag(name: .customShort("N"), help: "Do not run a command (port forwarding only).") var noCommand = false
        @Flag(name: .customShort("A"), help: "Forward the SSH agent.") var forwardAgent = false
        @Option(name: .customLong("cluster"), help: "The cluster the node is in.") var cluster: String?
        @Argument(help: "[LOGIN@]HOST, or [LOGIN@]label=value to run on every matching node.") var target: String
        @Argument(parsing: .captureForPassthrough, help: "The command to run.") var command: [String] = []

        func run() async throws {
            let context = ClientContext.live()
            if forwardAgent {
                context.warn("agent forwarding (-A) is not available: the SSH library we build on cannot open agent channels")
            }
            let options = SSHCommandOptions(
                login: l, target: target, command: command, port: p, tty: tty ? true : (noTTY ? false : nil), localForwards: local,
                remoteForwards: remote, noCommand: noCommand, cluster: cluster)
            try await performExit(failureCode: 255) { try await TSHCommands.ssh(global.client, options, context: context) }
        }
    }
}

extension TSH {
    struct SCP: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scp", abstract: "Copy files to or from a node over SFTP: tsh scp [-r] SOURCE... DESTINATION, a remote side as [LOGIN@]HOST:PATH.")
        @OptionGroup var global: GlobalOptions
        @Flag(name: .short, help: "Copy directories recursively.") var r = false
        @Flag(name: .customShort("p"), help: "Keep modification times and modes.") var preserve = false
        @Option(name: .customShort("P"), help: "The node's SSH port.") var port: Int?
        @Flag(name: .short, help: "Quiet (no progress is printed either way).") var q = false
        @Option(name: .customLong("cluster"), help: "The cluster the node is in.") var cluster: String?
        @Argument(help: "Sources, then the destination: local paths or [LOGIN@]HOST:PATH.") var paths: [String] = []

        func run() async throws {
            try await perform {
                try await TSHCommands.scp(
                    global.client, SCPCommandOptions(paths: paths, recursive: r, port: port, preserve: preserve, cluster: cluster),
                    context: .live())
                return TSHCommands.Outcome(output: "", exitCode: 0)
            }
        }
    }
}

extension TSH {
    struct Play: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replay a recorded session: tsh play SESSION_ID.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("format"), help: "pty (replay with timing), text (the output at once) or json (the frames).") var format = "pty"
        @Option(name: .customLong("speed"), help: "Play this many times faster.") var speed = 1.0
        @Option(name: .customLong("skip-idle"), help: "Shorten pauses to at most this many seconds.") var skipIdle: Double?
        @Argument(help: "The session ID (tsh recordings ls).") var sessionID: String
        @Option(name: .customLong("cluster"), help: "The cluster that recorded the session (a leaf: tsh clusters).") var cluster: String?

        func run() async throws {
            try await perform {
                guard let parsed = PlayFormat(rawValue: format) else {
                    throw TeleportError.badParameter("--format=\(format) is not known (expected pty, text or json)")
                }
                try await TSHCommands.play(global.client, sessionID: sessionID, format: parsed, speed: speed, maxIdle: skipIdle, cluster: cluster, context: .live())
                return TSHCommands.Outcome(output: "", exitCode: 0)
            }
        }
    }

    struct Sessions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Live sessions.", subcommands: [SessionsList.self])
    }

    struct SessionsList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the sessions with a terminal running now (shells, and commands run with tsh ssh -t).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("format"), help: "text or json.") var format = "text"
        @Option(name: .customLong("cluster"), help: "The cluster whose sessions to list (a leaf: tsh clusters).") var cluster: String?

        func run() async throws {
            try await perform { try await TSHCommands.activeSessions(global.client, json: format == "json", cluster: cluster, context: .live()) }
        }
    }

    struct Join: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Join a live session: tsh join SESSION_ID.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("mode"), help: "observer (watch) or peer (watch and type).") var mode = "observer"
        @Argument(help: "The session ID (tsh sessions ls).") var sessionID: String
        @Option(name: .customLong("cluster"), help: "The cluster the session runs in (a leaf: tsh clusters).") var cluster: String?

        func run() async throws {
            try await performExit(failureCode: 255) {
                try await TSHCommands.join(global.client, sessionID: sessionID, mode: mode, cluster: cluster, context: .live())
            }
        }
    }

    struct Recordings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recorded sessions.", subcommands: [RecordingsList.self])
    }

    struct RecordingsList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the recorded sessions you may replay.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("format"), help: "text or json.") var format = "text"
        @Option(name: .customLong("from"), help: "Sessions started at or after: a day, an RFC 3339 time or a duration back (2h).") var from: String?
        @Option(name: .customLong("to"), help: "Sessions started at or before.") var to: String?
        @Option(name: .customLong("cluster"), help: "The cluster that recorded the sessions (a leaf: tsh clusters).") var cluster: String?

        func run() async throws {
            try await perform {
                try await TSHCommands.recordings(global.client, json: format == "json", from: from, to: to, cluster: cluster, context: .live())
            }
        }
    }
}

extension TSH {
    struct Db: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Databases.", subcommands: [DbList.self, DbLogin.self, DbLogout.self, DbConfig.self, DbEnv.self, DbConnect.self])
    }

    struct DbLogin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "login", abstract: "Get a certificate for a database: tsh db login NAME --db-user=USER [--db-name=DB].")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The database (tsh db ls).") var name: String
        @Option(name: .customLong("db-user"), help: "The database user to connect as.") var dbUser: String?
        @Option(name: .customLong("db-name"), help: "The database name (default: the database user's).") var dbName: String?

        func run() async throws {
            try await perform {
                try await TSHCommands.databaseLogin(global.client, name: name, dbUser: dbUser, dbName: dbName, context: .live())
            }
        }
    }

    struct DbLogout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "logout", abstract: "Remove a database's certificate (all without NAME).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The database.") var name: String?

        func run() async throws {
            try await perform { try TSHCommands.databaseLogout(global.client, name: name, context: .live()) }
        }
    }

    struct DbConfig: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "config", abstract: "Print the host, port, CA, certificate and key of a database, and a psql or mysql command line.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The database (default: the only one logged in to).") var name: String?

        func run() async throws {
            try await perform { try await TSHCommands.databaseConfig(global.client, name: name, context: .live()) }
        }
    }

    struct DbEnv: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "env", abstract: "Print PG* (MYSQL_* for MySQL) environment variables for a database.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("db"), help: "The database (default: the only one logged in to).") var name: String?

        func run() async throws {
            try await perform { try await TSHCommands.databaseEnv(global.client, name: name, context: .live()) }
        }
    }

    struct DbConnect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "connect", abstract: "Run psql, or mariadb/mysql, connected to a database through the proxy: tsh db connect NAME [--db-user --db-name] [-- CLIENT ARGS].")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The database.") var name: String
        @Option(name: .customLong("db-user"), help: "The database user to connect as.") var dbUser: String?
        @Option(name: .customLong("db-name"), help: "The database name.") var dbName: String?
        @Argument(parsing: .postTerminator, help: "Arguments for psql, mariadb or mysql after --.") var extra: [String] = []

        func run() async throws {
            try await performExit(failureCode: 1) {
                try await TSHCommands.databaseConnect(global.client, name: name, dbUser: dbUser, dbName: dbName, extra: extra, context: .live())
            }
        }
    }

    struct DbList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "List the databases you may access; filter by labels: tsh db ls env=prod.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Label filter key=value[,key=value...].") var labels: String?
        @Option(name: .customLong("format"), help: "text or json.") var format = "text"

        func run() async throws {
            try await perform {
                guard let parsed = TSHCommands.DatabaseListFormat(rawValue: format) else {
                    throw TeleportError.badParameter("--format=\(format) is not known (expected text or json)")
                }
                return try await TSHCommands.listDatabases(global.client, labels: labels ?? "", format: parsed, context: .live())
            }
        }
    }
}

extension TSH {
    struct Apps: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "apps", abstract: "Web applications.", subcommands: [AppsList.self, AppsLogin.self, AppsLogout.self, AppsConfig.self])
    }

    struct AppsList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the apps you may access; filter by labels: tsh apps ls env=prod.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Label filter key=value[,key=value...].") var labels: String?
        @Option(name: .customLong("format"), help: "text or json.") var format = "text"

        func run() async throws {
            try await perform {
                guard format == "text" || format == "json" else {
                    throw TeleportError.badParameter("--format=\(format) is not known (expected text or json)")
                }
                return try await TSHCommands.listApps(global.client, labels: labels ?? "", json: format == "json", context: .live())
            }
        }
    }

    struct AppsLogin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "login", abstract: "Get a certificate for an app: tsh apps login NAME.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The app (tsh apps ls).") var name: String

        func run() async throws {
            try await perform { try await TSHCommands.appLogin(global.client, name: name, context: .live()) }
        }
    }

    struct AppsLogout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "logout", abstract: "Remove an app's certificate (all without NAME).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The app.") var name: String?

        func run() async throws {
            try await perform { try TSHCommands.appLogout(global.client, name: name, context: .live()) }
        }
    }

    struct AppsConfig: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "config", abstract: "Print an app's address, CA, certificate and key, or a curl command line (--format=curl).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The app (default: the only one logged in to).") var name: String?
        @Option(name: .customLong("format"), help: "text, uri, ca, cert, key or curl.") var format = "text"

        func run() async throws {
            try await perform {
                guard let parsed = TSHCommands.AppConfigFormat(rawValue: format) else {
                    throw TeleportError.badParameter("--format=\(format) is not known (expected uri, ca, cert, key or curl)")
                }
                return try TSHCommands.appConfig(global.client, name: name, format: parsed, context: .live())
            }
        }
    }
}

extension TSH {
    struct Proxy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Proxies for other clients.", subcommands: [ProxySSH.self, ProxyDB.self, ProxyApp.self])
    }

    struct ProxyDB: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "db",
            abstract: "A local port for a database that adds your certificate: tsh proxy db NAME --tunnel [--port N]; "
                + "then psql \"host=localhost port=N\" needs no certificate files.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The database (tsh db ls).") var name: String
        @Flag(name: .customLong("tunnel"), help: "Add your certificate to the connections (required).") var tunnel = false
        @Option(name: [.short, .customLong("port")], help: "The local port on 127.0.0.1 (default: any free port).") var port = 0
        @Option(name: .customLong("db-user"), help: "The database user to connect as.") var dbUser: String?
        @Option(name: .customLong("db-name"), help: "The database name.") var dbName: String?

        func validate() throws {
            guard tunnel else {
                throw ValidationError("pass --tunnel: tsh proxy db serves a local port that adds your certificate (tsh proxy db \(name) --tunnel)")
            }
            guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
        }

        func run() async throws {
            try await performExit(failureCode: 1) {
                try await TSHCommands.proxyDatabase(
                    global.client, name: name, port: port, dbUser: dbUser, dbName: dbName, context: .live(),
                    print: { StandardStreams.out($0) })
            }
        }
    }

    struct ProxySSH: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ssh", abstract: "Connect standard input and output to a node's SSH port (for OpenSSH's ProxyCommand).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("cluster"), help: "The cluster the node is in.") var cluster: String?
        @Argument(help: "[USER@]HOST[:PORT]") var target: String

        func run() async throws {
            try await performExit(failureCode: 255) {
                try await TSHCommands.proxySSH(global.client, target: target, cluster: cluster, context: .live())
            }
        }
    }

    struct ProxyApp: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "app", abstract: "Serve an app on 127.0.0.1 (plain HTTP) with your app certificate: tsh proxy app NAME --port N.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The app (tsh apps login NAME first).") var name: String
        @Option(name: .customLong("port"), help: "The local port (default: any free port).") var port = 0

        func run() async throws {
            try await performExit(failureCode: 1) {
                try await TSHCommands.proxyApp(global.client, name: name, port: port, context: .live())
            }
        }
    }

    struct Config: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print an ssh_config block for OpenSSH ssh, scp and sftp.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let path = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
            try await perform { try await TSHCommands.config(global.client, tshPath: path, context: .live()) }
        }
    }
}

extension TSH {
    struct Kube: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "kube", abstract: "Kubernetes clusters.",
            subcommands: [KubeList.self, KubeLogin.self, KubeLogout.self, KubeCredentials.self, KubeJoin.self])
    }

    struct KubeList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the Kubernetes clusters you may access.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Label filter key=value[,key=value...].") var labels: String?
        @Option(name: .customLong("format"), help: "text or json.") var format = "text"

        func run() async throws {
            try await perform {
                guard format == "text" || format == "json" else {
                    throw TeleportError.badParameter("--format=\(format) is not known (expected text or json)")
                }
                return try await TSHCommands.listKubeClusters(global.client, labels: labels ?? "", json: format == "json", context: .live())
            }
        }
    }

    struct KubeLogin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "login", abstract: "Get a certificate for a Kubernetes cluster and a kubeconfig context for it: tsh kube login NAME.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The Kubernetes cluster (tsh kube ls).") var name: String

        func run() async throws {
            try await perform { try await TSHCommands.kubeLogin(global.client, name: name, context: .live()) }
        }
    }

    struct KubeLogout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "logout", abstract: "Remove a Kubernetes cluster's certificate and context (all without NAME).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The Kubernetes cluster.") var name: String?

        func run() async throws {
            try await perform { try TSHCommands.kubeLogout(global.client, name: name, context: .live()) }
        }
    }

    struct KubeJoin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "join", abstract: "Join a live Kubernetes session (kubectl exec -it): tsh kube join SESSION_ID.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("mode"), help: "observer (watch) or peer (watch and type).") var mode = "observer"
        @Argument(help: "The session ID (tsh sessions ls).") var sessionID: String

        func run() async throws {
            try await performExit(failureCode: 255) {
                try await TSHCommands.join(global.client, sessionID: sessionID, mode: mode, kubeOnly: true, context: .live())
            }
        }
    }

    struct KubeCredentials: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "credentials", abstract: "Print kubectl's ExecCredential for a cluster (used by the kubeconfig tsh kube login writes).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("kube-cluster"), help: "The Kubernetes cluster.") var kubeCluster: String

        func run() async throws {
            try await perform { try await TSHCommands.kubeCredentials(global.client, name: kubeCluster, context: .live()) }
        }
    }

    struct Kubectl: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "kubectl", abstract: "Run kubectl with the arguments (after tsh kube login).")
        @Argument(parsing: .captureForPassthrough, help: "kubectl's arguments.") var arguments: [String] = []

        func run() async throws {
            try await perform { try TSHCommands.kubectl(arguments, environment: ProcessInfo.processInfo.environment) }
        }
    }
}
