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
        await TSH.main(GlobalArguments.reorder(
            Array(CommandLine.arguments.dropFirst()), withValue: ["--proxy", "--user", "-i", "--identity"], flags: ["--insecure", "-d", "--debug"]))
    }
}


struct TSH: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tsh", abstract: "The Teleport client.",
        subcommands: [Login.self, Status.self, Logout.self, List.self, KnownHosts.self, Version.self])
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
        FileHandle.standardOutput.write(Data(outcome.output.utf8))
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    } catch let exit as ExitCode {
        throw exit
    } catch {
        let message = (error as? TeleportError)?.message ?? "\(error)"
        FileHandle.standardError.write(Data("ERROR: \(message)\n".utf8))
        throw ExitCode(1)
    }
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

        func validate() throws {
            guard LoginOptions.AgentMode(rawValue: addKeysToAgent) != nil else {
                throw ValidationError("--add-keys-to-agent must be auto, yes or no, not \"\(addKeysToAgent)\"")
            }
        }

        func run() async throws {
            let mode = LoginOptions.AgentMode(rawValue: addKeysToAgent) ?? .auto
            try await perform {
                try await TSHCommands.login(global.client, LoginOptions(ttl: ttl, addKeysToAgent: mode, out: out), context: .live())
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

        func run() async throws {
            try await perform {
                guard let parsed = TSHCommands.ListFormat(rawValue: format) else {
                    throw TeleportError.badParameter("--format=\(format) is not known (expected text, json, yaml or names)")
                }
                return try await TSHCommands.list(global.client, labels: labels ?? "", format: parsed, verbose: verbose, context: .live())
            }
        }
    }

    struct KnownHosts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "known-hosts",
            abstract: "Print known_hosts lines for the cluster's nodes (for OpenSSH's KnownHostsCommand: tsh known-hosts %H).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Only this host's lines.") var host: String?

        func run() async throws {
            try await perform { try await TSHCommands.knownHosts(global.client, host: host, context: .live()) }
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
