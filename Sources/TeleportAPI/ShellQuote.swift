/// Quoting for command lines printed for a human to paste into a POSIX shell (`tctl nodes add`,
/// `tsh config`): a word that is not made only of safe characters is put in single quotes, so
/// that `$(...)`, backticks, `;` and globbing in it are never run when the line is pasted.
public enum ShellQuote {
    /// Characters that need no quoting in any POSIX shell word.
    static let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,+@%")

    /// `word` as one shell word: unchanged when every character is safe, otherwise in single
    /// quotes (a single quote inside becomes `'\''`).
    public static func word(_ word: String) -> String {
        if !word.isEmpty, word.allSatisfy({ safe.contains($0) }) { return word }
        var quoted = "'"
        for character in word { quoted += character == "'" ? "'\\''" : String(character) }
        return quoted + "'"
    }

    /// `--name=value` with the value quoted as one word when it needs it.
    public static func flag(_ name: String, _ value: String) -> String {
        "--\(name)=" + word(value)
    }
}
