/// Text from the cluster made safe for a terminal: every byte that a terminal would act on rather
/// than show (C0 controls, DEL, C1 controls) and the invisible Unicode controls that reorder or
/// break lines (bidirectional overrides and isolates, line and paragraph separators) are replaced
/// by a visible escape such as `\x1b` or `\u{202e}`.
///
/// Every text table and every line that prints data from the cluster (user names, labels, events,
/// error messages quoting input) goes through ``escape(_:)``: an unauthenticated login attempt or a
/// node's label must not be able to retitle, clear or recolour an administrator's terminal, nor
/// forge table rows with a newline. JSON and YAML output keep their own escaping.
public enum TerminalText {
    /// `text` with every control character replaced by its visible escape; printable text,
    /// including non-ASCII letters, is unchanged.
    public static func escape(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            if needsEscape(scalar) {
                out += visible(scalar)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Whether `text` holds anything ``escape(_:)`` would change.
    public static func isPrintable(_ text: String) -> Bool {
        !text.unicodeScalars.contains(where: needsEscape)
    }

    /// Whether a terminal would act on `scalar` instead of showing it.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true
        // Bidirectional marks, embeddings, overrides and isolates; line and paragraph separators.
        case 0x200E, 0x200F, 0x2028...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }

    static func visible(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16)
        if scalar.value <= 0xFF { return "\\x" + (hex.count == 1 ? "0" + hex : hex) }
        return "\\u{\(hex)}"
    }
}
