import ArgumentParser
import Foundation
import TeleportAPI
import TeleportAdmin

@main
struct TCTLMain {
    /// ArgumentParser reads options after the subcommand only; the seed writes global options first
    /// (`tctl --config fresh.yaml get all`), so they are moved behind the subcommand here.
    static func main() async {
        StandardStreams.ignoreBrokenPipe()
        let withValue: Set<String> = ["-c", "--config", "--auth-server", "-i", "--identity"]
        let flags: Set<String> = ["-d", "--debug"]
        let arguments: [String]
        do {
            // `tctl auth --type=host export` (the seeds' order) and an unknown command named as such.
            arguments = try CommandRouter.route(
                Array(CommandLine.arguments.dropFirst()), program: "tctl", tree: CommandTree(command: TCTL.self), globalsWithValue: withValue,
                globalFlags: flags)
        } catch {
            StandardStreams.err("ERROR: \((error as? TeleportError)?.message ?? "\(error)")\n")
            exit(1)
        }
        await TCTL.main(GlobalArguments.reorder(arguments, withValue: withValue, flags: flags))
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

struct TCTL: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tctl",
        abstract: "Admin tool for the Teleport cluster.",
        subcommands: [
            Status.self, Users.self, Auth.self, Get.self, Create.self, Edit.self, UpdateCommand.self, Remove.self, LockCommand.self, Access.self,
            Events.self, Audit.self, Nodes.self, Tokens.self, Version.self,
        ])
}

/// The options every `tctl` command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: [.short, .customLong("config")], help: "Path to the teleport.yaml of the auth server [/etc/teleport.yaml].")
    var config: String?
    @Option(name: .customLong("auth-server"), help: "Address of the auth server, HOST:3025.")
    var authServer: String?
    @Option(name: [.short, .customLong("identity")], help: "Path to an identity file (from tctl auth sign).")
    var identity: String?
    @Flag(name: [.short, .customLong("debug")], help: "Verbose output.")
    var debug = false

    var connection: AdminConnection.Options {
        .init(configPath: config, authServer: authServer, identityFile: identity)
    }
}

/// Runs a command's work, printing its output, or one error line and exit code 1.
func perform(_ work: () async throws -> String) async throws {
    do {
        let output = try await work()
        StandardStreams.out(output)
    } catch {
        let message = (error as? TeleportError)?.message ?? "\(error)"
        StandardStreams.err("ERROR: \(TerminalText.escape(message))\n")
        throw ExitCode(1)
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Report cluster status.")
    @OptionGroup var global: GlobalOptions
    func run() async throws { try await perform { try await AdminCommands.status(global.connection) } }
}

struct Auth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operations with the cluster's certificate authorities.", subcommands: [Export.self, Sign.self, Rotate.self, ListAuthorities.self])

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rotate a certificate authority: automatically through every phase over a grace period, or one phase at a time with --manual.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("type"), help: "user, host, db or jwt (default: host and user).") var type: String?
        @Option(name: .customLong("grace-period"), help: "How long both the old and the new CA are trusted (default 48h).") var gracePeriod: String?
        @Flag(name: .customLong("manual"), help: "Move the rotation to --phase yourself.") var manual = false
        @Option(name: .customLong("phase"), help: "With --manual: init, update_clients, update_servers, standby or rollback.") var phase: String?
        func run() async throws {
            try await perform {
                try await AdminCommands.rotate(global.connection, type: type, gracePeriod: gracePeriod, manual: manual, phase: phase)
            }
        }
    }

    struct Sign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sign certificates for a user (automation) or a host (OpenSSH sshd).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("user"), help: "Sign a user's certificates.") var user: String?
        @Option(name: .customLong("host"), help: "Sign a host certificate (SSH, or a database server's with --format=db) for these comma-separated names.")
        var host: String?
        @Option(name: [.short, .customLong("out")], help: "Where to write the credentials.") var out: String
        @Option(name: .customLong("ttl"), help: "Certificate lifetime, e.g. 1h.") var ttl: String?
        @Option(name: .customLong("format"), help: "file (identity file), openssh, or db (NAME.crt, .key, .cas for a database).")
        var format = "file"
        func run() async throws {
            try await perform {
                guard let parsed = SignCommands.Format(rawValue: format) else {
                    throw TeleportError.badParameter("--format=\(format) is not known (expected file, openssh or db)")
                }
                if parsed == .db {
                    return try await SignCommands.signDatabase(
                        global.connection, hosts: host, user: user, out: out, ttl: ttl ?? (host == nil ? "12h" : "2190h"))
                }
                switch (user, host) {
                case (let user?, nil):
                    return try await SignCommands.signUser(global.connection, user: user, out: out, ttl: ttl ?? "12h", format: parsed)
                case (nil, let host?):
                    return try await SignCommands.signHost(global.connection, hosts: host, out: out, ttl: ttl ?? "8760h", format: parsed)
                default:
                    throw TeleportError.badParameter("pass exactly one of --user or --host")
                }
            }
        }
    }

    struct ListAuthorities: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the local cluster's CAs and those of trusted clusters.")
        @OptionGroup var global: GlobalOptions
        func run() async throws { try await perform { try await TrustCommands.list(global.connection) } }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Export the public keys of the CAs (for OpenSSH and TLS).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("type"), help: "user, host, tls (the host CA's certificate), tls-host, tls-user or db (the database CA's certificate).")
        var type: String?
        func run() async throws {
            try await perform {
                var exportType: AdminCommands.ExportType?
                if let type {
                    guard let parsed = AdminCommands.ExportType(rawValue: type) else {
                        throw TeleportError.badParameter(
                            "--type=\(type) is not known (expected \(AdminCommands.ExportType.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    exportType = parsed
                }
                return try await AdminCommands.export(global.connection, type: exportType)
            }
        }
    }
}

struct Access: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Explain access decisions.", subcommands: [Explain.self])

    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Why a user may or may not log in to a node as a login (tctl access explain --user=joe --node=db1 --login=root), "
                + "connect to a database as a db user (tctl access explain --user=joe --db=pg --db-user=alice [--db-name=sales]), "
                + "open an app (tctl access explain --user=joe --app=grafana), "
                + "or use a Kubernetes cluster (tctl access explain --user=joe --kube-cluster=dev [--kube-pod=default/web-0]).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("user"), help: "The user.") var user: String
        @Option(name: .customLong("node"), help: "The node's name or UUID.") var node: String?
        @Option(name: .customLong("login"), help: "The OS login (with --node).") var login: String?
        @Option(name: .customLong("db"), help: "The database's name.") var database: String?
        @Option(name: .customLong("db-user"), help: "The database user (with --db).") var dbUser: String?
        @Option(name: .customLong("db-name"), help: "The database name (with --db; PostgreSQL's default is the db user's name).")
        var dbName: String?
        @Option(name: .customLong("app"), help: "The app's name.") var app: String?
        @Option(name: .customLong("kube-cluster"), help: "The Kubernetes cluster's name.") var kubeCluster: String?
        @Option(name: .customLong("kube-pod"), help: "A pod as NAMESPACE/NAME (with --kube-cluster).") var kubePod: String?
        @Option(name: .customLong("root-cluster"), help: "On a leaf cluster: the user is a user of this root cluster (with --roles, --node, --login).")
        var rootCluster: String?
        @Option(name: .customLong("roles"), help: "With --root-cluster: the user's roles in the root cluster, comma-separated.") var roles: String?
        @Option(name: .customLong("logins"), help: "With --root-cluster: the user's login traits in the root cluster, comma-separated.") var logins: String?

        func validate() throws {
            let kube = kubeCluster != nil || kubePod != nil
            if rootCluster != nil {
                guard node != nil, login != nil, roles != nil, database == nil, dbUser == nil, dbName == nil, app == nil, !kube else {
                    throw ValidationError("--root-cluster needs --roles, --node and --login (a root user on this leaf's node)")
                }
                return
            }
            guard roles == nil, logins == nil else { throw ValidationError("--roles and --logins go with --root-cluster") }
            let nodeForm = node != nil && login != nil && database == nil && dbUser == nil && dbName == nil && app == nil && !kube
            let databaseForm = database != nil && dbUser != nil && node == nil && login == nil && app == nil && !kube
            let appForm = app != nil && node == nil && login == nil && database == nil && dbUser == nil && dbName == nil && !kube
            let kubeForm = kubeCluster != nil && node == nil && login == nil && database == nil && dbUser == nil && dbName == nil && app == nil
            guard nodeForm || databaseForm || appForm || kubeForm else {
                throw ValidationError(
                    "give either --node and --login, --db and --db-user (and optionally --db-name), --app, or --kube-cluster (and optionally --kube-pod)")
            }
        }

        func run() async throws {
            try await perform {
                if let rootCluster {
                    func list(_ text: String?) -> [String] { (text ?? "").split(separator: ",").map(String.init).filter { !$0.isEmpty } }
                    return try await AccessCommands.explainRootUser(
                        global.connection, rootCluster: rootCluster, user: user, rootRoles: list(roles), logins: list(logins), node: node ?? "",
                        login: login ?? "")
                }
                if let app {
                    return try await AccessCommands.explainApp(global.connection, user: user, app: app)
                }
                if let kubeCluster {
                    return try await AccessCommands.explainKube(global.connection, user: user, kubeCluster: kubeCluster, pod: kubePod)
                }
                if let database, let dbUser {
                    return try await AccessCommands.explainDatabase(global.connection, user: user, database: database, dbUser: dbUser, dbName: dbName)
                }
                return try await AccessCommands.explain(global.connection, user: user, node: node ?? "", login: login ?? "")
            }
        }
    }
}

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print resources: tctl get users, tctl get user/joe, tctl get all.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "KIND, KIND/NAME or all.") var reference: String
    @Option(name: .customLong("format"), help: "yaml, json or text.") var format = "yaml"
    @Flag(name: .customLong("with-secrets"), help: "Include CA private keys and connector client secrets.") var withSecrets = false
    func run() async throws {
        try await perform {
            guard let parsed = AdminCommands.Format(rawValue: format) else {
                throw TeleportError.badParameter("--format=\(format) is not known (expected yaml, json or text)")
            }
            return try await AdminCommands.get(global.connection, reference: reference, format: parsed, withSecrets: withSecrets)
        }
    }
}

struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create resources from a YAML file (- for standard input): all of them, or none if one is refused.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The YAML file.") var file: String
    @Flag(name: [.short, .customLong("force")], help: "Overwrite resources that exist.") var force = false
    func run() async throws { try await perform { try await AdminCommands.create(global.connection, path: file, force: force) } }
}

struct Edit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Edit a resource in $EDITOR (default vi): tctl edit role/dev. Refused if it changed meanwhile.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "KIND/NAME (role, user, lock or node).") var reference: String
    func run() async throws {
        let editor = ProcessInfo.processInfo.environment["EDITOR"].flatMap { $0.isEmpty ? nil : $0 } ?? "vi"
        try await perform { try await ResourceEditor.edit(global.connection, reference: reference, editor: editor) }
    }
}

struct UpdateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "Update a leaf cluster's labels on the root: tctl update rc/leaf.example --set-labels=env=prod.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "rc/NAME.") var reference: String
    @Option(name: .customLong("set-labels"), help: "The labels, KEY=VALUE,... (--set-labels \"\" removes them).") var setLabels: String
    func run() async throws {
        try await perform { try await TrustCommands.updateRemoteCluster(global.connection, reference: reference, setLabels: setLabels) }
    }
}

struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete a resource: tctl rm user/joe.", aliases: ["del"])
    @OptionGroup var global: GlobalOptions
    @Argument(help: "KIND/NAME.") var reference: String
    func run() async throws { try await perform { try await AdminCommands.remove(global.connection, reference: reference) } }
}

struct LockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock", abstract: "Lock a user, a login or a node: no new sessions, and the open ones end.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .customLong("user"), help: "The Teleport user to lock.") var user: String?
    @Option(name: .customLong("login"), help: "The OS login to lock on every node.") var login: String?
    @Option(name: .customLong("node"), help: "The node (UUID or name) to lock.") var node: String?
    @Option(name: .customLong("message"), help: "Shown to whoever is refused.") var message: String?
    @Option(name: .customLong("ttl"), help: "Remove the lock after this long (e.g. 10h); default: until tctl rm lock/NAME.") var ttl: String?
    func run() async throws {
        try await perform {
            guard user != nil || login != nil || node != nil else {
                throw TeleportError.badParameter("say what to lock: --user, --login or --node")
            }
            return try await AdminCommands.lock(
                global.connection, target: Lock.Target(user: user, login: login, node: node), message: message, ttl: ttl)
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")
    func run() { print("Teleport v\(TeleportVersion.version) swift") }
}

struct Nodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage nodes: invite and list.", subcommands: [Add.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Generate a token and print the command that joins a new node.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("roles"), help: "node, proxy or node,proxy.") var roles = "node"
        @Option(name: .customLong("ttl"), help: "How long the token is valid, e.g. 30m (at most 48h).") var ttl = "30m"
        @Option(name: .customLong("token"), help: "Use this token value instead of a random one.") var token: String?
        func run() async throws { try await perform { try await NodeCommands.add(global.connection, roles: roles, ttl: ttl, token: token) } }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the registered nodes.")
        @OptionGroup var global: GlobalOptions
        @Flag(name: [.short, .customLong("verbose")], help: "Show every label in full.") var verbose = false
        @Option(name: .customLong("format"), help: "text, json or yaml.") var format = "text"
        func run() async throws {
            try await perform {
                guard let parsed = AdminCommands.Format(rawValue: format) else {
                    throw TeleportError.badParameter("--format=\(format) is not known (expected text, json or yaml)")
                }
                return try await NodeCommands.list(global.connection, format: parsed, verbose: verbose)
            }
        }
    }
}

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read the audit log.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "List audit events: tctl events ls --from=2026-11-21 --type=session.start,exec.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("from"), help: "Start: a day, an RFC 3339 time, or a duration back (2h). Default: 24h ago.") var from: String?
        @Option(name: .customLong("to"), help: "End, in the same forms. Default: now.") var to: String?
        @Option(name: .customLong("type"), help: "Event types, comma-separated (default: all).") var type: String?
        @Option(name: .customLong("limit"), help: "The most events to print.") var limit = 1000
        @Option(name: .customLong("format"), help: "text or json.") var format = "text"
        func run() async throws {
            try await perform {
                guard let parsed = AdminCommands.Format(rawValue: format), parsed != .yaml else {
                    throw TeleportError.badParameter("--format=\(format) is not known (expected text or json)")
                }
                let types = (type ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                return try await EventCommands.list(global.connection, from: from, to: to, types: types, limit: max(limit, 1), format: parsed)
            }
        }
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check the audit log.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the audit log's hash chain and signed checkpoints: OK, or the first edited, removed or reordered event.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("from"), help: "The first day to check (default: all).") var from: String?
        @Option(name: .customLong("to"), help: "The last day to check (default: all).") var to: String?
        func run() async throws {
            var ok = true
            try await perform {
                let result = try await EventCommands.verify(global.connection, from: from, to: to)
                ok = result.ok
                return result.output
            }
            if !ok { throw ExitCode(1) }
        }
    }
}

struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage join tokens.", subcommands: [Add.self, List.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a join token.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("type"), help: "node, proxy, db, app or kube (comma-separated for several), or trusted_cluster.") var type: String
        @Option(name: .customLong("ttl"), help: "How long the token is valid, e.g. 30m (at most 48h).") var ttl = "30m"
        @Option(name: .customLong("value"), help: "Use this token value instead of a random one.") var value: String?
        func run() async throws { try await perform { try await NodeCommands.addToken(global.connection, type: type, ttl: ttl, value: value) } }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List join tokens (values are stored hashed: the hash prefix is shown).")
        @OptionGroup var global: GlobalOptions
        func run() async throws { try await perform { try await NodeCommands.listTokens(global.connection) } }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Revoke a join token.", aliases: ["del"])
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The token, or the hash prefix tokens ls shows.") var token: String
        func run() async throws { try await perform { try await NodeCommands.removeToken(global.connection, token: token) } }
    }
}

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage local users.", subcommands: [Add.self, List.self, Remove.self, Reset.self, Update.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a user and print its signup link: tctl users add joe joe,root.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The user name.") var name: String
        @Argument(help: "Allowed OS logins, comma-separated (default: the user name).") var logins: String?
        @Option(name: .customLong("logins"), help: "Allowed OS logins, comma-separated.") var loginsOption: String?
        @Option(name: .customLong("roles"), help: "Roles, comma-separated; they must exist (default: access).") var roles: String?
        @Option(name: .customLong("ttl"), help: "How long the signup link is valid (at most 48h).") var ttl = "1h"
        @Option(name: .customLong("k8s-groups"), help: "Kubernetes groups, comma-separated (the kubernetes_groups trait).") var k8sGroups: String?
        @Option(name: .customLong("k8s-users"), help: "Kubernetes users, comma-separated (the kubernetes_users trait).") var k8sUsers: String?
        func run() async throws {
            try await perform {
                try await UserCommands.add(
                    global.connection, name: name, positionalLogins: logins, logins: loginsOption, roles: roles, ttl: ttl,
                    kubernetesGroups: k8sGroups, kubernetesUsers: k8sUsers)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List users.")
        @OptionGroup var global: GlobalOptions
        func run() async throws { try await perform { try await UserCommands.list(global.connection) } }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete a user.", aliases: ["del"])
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The user name.") var name: String
        func run() async throws { try await perform { try await UserCommands.remove(global.connection, name: name) } }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a link for the user to set a new password and TOTP (unlocks the account).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The user name.") var name: String
        @Option(name: .customLong("ttl"), help: "How long the link is valid (at most 48h).") var ttl = "8h"
        func run() async throws { try await perform { try await UserCommands.reset(global.connection, name: name, ttl: ttl) } }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a user's roles or logins.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The user name.") var name: String
        @Option(name: .customLong("set-roles"), help: "New roles, comma-separated; they must exist.") var roles: String?
        @Option(name: .customLong("set-logins"), help: "New logins, comma-separated.") var logins: String?
        func run() async throws { try await perform { try await UserCommands.update(global.connection, name: name, roles: roles, logins: logins) } }
    }
}
