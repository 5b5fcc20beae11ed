/// What a join token's value may hold: 8 to 256 letters, digits and `-_.`. Token values are
/// typed by hand and printed in command lines to paste (`tctl nodes add`), so a value can never
/// carry shell syntax (`$(...)`, backticks, quotes, `;`) or terminal control characters.
public enum TokenValue {
    /// The shortest value.
    public static let minLength = 8
    /// The longest value.
    public static let maxLength = 256
    static let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")

    /// Refuses a value outside the alphabet or the length bounds with an error that says what is
    /// allowed; `source` names the flag or setting.
    public static func check(_ value: String, source: String = "the token") throws {
        guard value.count >= minLength, value.count <= maxLength, value.allSatisfy({ allowed.contains($0) }) else {
            throw TeleportError.badParameter(
                "\(source) is not a valid token: use 8 to 256 letters, digits and - _ . (or leave it out to get a random one)")
        }
    }
}
