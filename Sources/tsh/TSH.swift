import ArgumentParser
import TeleportClient

@main
struct TSH: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tsh", abstract: "The Teleport client.", subcommands: [Version.self])

    struct Version: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the version.")
        func run() { print(ClientVersion.line) }
    }
}
