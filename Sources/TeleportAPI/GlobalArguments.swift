/// Command lines as the manuals write them put global options before the subcommand
/// (`tctl --config fresh.yaml get all`, `tsh --proxy=work login`); ArgumentParser reads a command's
/// options after its name. `tsh` and `tctl` move the leading global options behind the words.
public enum GlobalArguments {
    /// `arguments` with the leading options named in `withValue` (and their values) and in `flags`
    /// moved after the rest, before a `--` terminator if there is one.
    ///
    /// For the subcommands in `passthrough` (`tsh ssh`, whose trailing words are the remote command)
    /// the options go right after the subcommand's name instead, so they never join the command.
    public static func reorder(
        _ arguments: [String], withValue: Set<String>, flags: Set<String>, passthrough: Set<String> = []
    ) -> [String] {
        var globals: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
            if withValue.contains(name) {
                globals.append(argument)
                if !argument.contains("="), index + 1 < arguments.count {
                    globals.append(arguments[index + 1])
                    index += 1
                }
            } else if flags.contains(argument) {
                globals.append(argument)
            } else {
                break
            }
            index += 1
        }
        let rest = Array(arguments[index...])
        if let first = rest.first, passthrough.contains(first) {
            return [first] + globals + Array(rest.dropFirst())
        }
        if let terminator = rest.firstIndex(of: "--") {
            return Array(rest[..<terminator]) + globals + Array(rest[terminator...])
        }
        return rest + globals
    }
}
