/// The names of a program's commands and their subcommands (`tctl auth export`), for
/// ``CommandRouter``.
public struct CommandTree: Sendable, Equatable {
    /// Each subcommand's name (and aliases) and its own subcommands.
    public var subcommands: [String: CommandTree]

    /// Creates a tree.
    public init(_ subcommands: [String: CommandTree] = [:]) {
        self.subcommands = subcommands
    }
}

/// Puts a command line as the manuals write it into the order ArgumentParser reads, before
/// ``GlobalArguments/reorder(_:withValue:flags:passthrough:)`` moves the global options:
///
/// - a group's options written before its subcommand move behind it
///   (`tctl auth --type=host export` → `tctl auth export --type=host`);
/// - a word that is not a command fails with "unknown command" instead of ArgumentParser's
///   misleading complaint about the options that follow it (`tctl -c FILE auth ls`);
/// - a program with a default command runs it for a first word that is not a command
///   (`tsh --proxy=work --user=joe root@luna` → `tsh ssh ...`).
public enum CommandRouter {
    /// When the first word is not a command: the command to run instead, and whether it applies
    /// to a word (given whether global options came before it).
    public struct DefaultCommand: Sendable {
        /// The command's name (`ssh`).
        public var name: String
        /// Whether `word` is meant for it.
        public var applies: @Sendable (_ word: String, _ afterGlobalOptions: Bool) -> Bool

        /// Creates a default command.
        public init(name: String, applies: @escaping @Sendable (String, Bool) -> Bool) {
            self.name = name
            self.applies = applies
        }
    }

    /// `arguments` in ArgumentParser's order, or `badParameter` naming an unknown command and the
    /// ones there are.
    ///
    /// - Parameters:
    ///   - program: the program's name, for the error (`tctl`).
    ///   - globalsWithValue / globalFlags: the global options that may come first.
    public static func route(
        _ arguments: [String], program: String, tree: CommandTree, globalsWithValue: Set<String>, globalFlags: Set<String>,
        defaultCommand: DefaultCommand? = nil
    ) throws -> [String] {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
            if globalsWithValue.contains(name) {
                if !argument.contains("=") { index += 1 }
            } else if !globalFlags.contains(argument) {
                break
            }
            index += 1
        }
        let prefix = Array(arguments[..<min(index, arguments.count)])
        let rest = Array(arguments[min(index, arguments.count)...])
        guard let first = rest.first, !first.hasPrefix("-"), first != "help" else { return arguments }
        guard let command = tree.subcommands[first] else {
            if let defaultCommand, defaultCommand.applies(first, !prefix.isEmpty) {
                return prefix + [defaultCommand.name] + rest
            }
            throw TeleportError.badParameter(
                "unknown command \"\(first)\": \(program) has \(names(tree)); see \(program) --help")
        }
        var output = prefix + [first]
        var path = [first]
        var node = command
        var position = 1
        var held: [String] = []
        while !node.subcommands.isEmpty, position < rest.count {
            let word = rest[position]
            if word == "--" { break }
            if word.hasPrefix("-") {
                held.append(word)
                position += 1
                // `--type host export`: a word after an option that is not a subcommand is its value.
                if !word.contains("="), position < rest.count, !rest[position].hasPrefix("-"),
                    node.subcommands[rest[position]] == nil, rest[position] != "help"
                {
                    held.append(rest[position])
                    position += 1
                }
                continue
            }
            if word == "help" { break }
            guard let child = node.subcommands[word] else {
                let group = ([program] + path).joined(separator: " ")
                throw TeleportError.badParameter(
                    "unknown command \"\(group) \(word)\": \(group) has \(names(node)); see \(group) --help")
            }
            output.append(word)
            path.append(word)
            node = child
            position += 1
        }
        return output + held + Array(rest[position...])
    }

    private static func names(_ tree: CommandTree) -> String {
        tree.subcommands.keys.sorted().joined(separator: ", ")
    }
}
