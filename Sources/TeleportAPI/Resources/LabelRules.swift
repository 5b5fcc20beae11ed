/// What label keys and values may hold: keys of letters, digits and `-_./:*` (at most 63
/// characters, as Kubernetes-style names), values of printable characters (at most 256, no
/// control characters: see ``TerminalText``). Checked where labels come in: `teleport.yaml`,
/// `--labels`, a node's heartbeat and `tctl create` (``ServerNode/validate()``).
public enum LabelRules {
    /// The longest key.
    public static let maxKeyLength = 63
    /// The longest value.
    public static let maxValueLength = 256

    /// Checks a key; `source` names the flag or setting in the error.
    public static func check(key: String, source: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:*")
        guard !key.isEmpty, key.count <= maxKeyLength, key.allSatisfy({ allowed.contains($0) }) else {
            throw TeleportError.badParameter(
                "\(source): label key \"\(TerminalText.escape(key))\" is not valid (use up to 63 letters, digits and - _ . / :)")
        }
    }

    /// Checks a value.
    public static func check(value: String, key: String, source: String) throws {
        guard value.count <= maxValueLength, TerminalText.isPrintable(value) else {
            throw TeleportError.badParameter(
                "\(source): the value of label \"\(TerminalText.escape(key))\" is not valid (at most 256 printable characters, no control characters)")
        }
    }
}
