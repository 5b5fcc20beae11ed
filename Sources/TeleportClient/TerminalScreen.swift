/// The text a terminal would show for a recorded session's output bytes, line by line, without
/// the control sequences that drew it (`tsh play --format=text`): colours, cursor moves, titles and
/// bells are dropped; a carriage return, a backspace or an erase-line overwrite what the line held,
/// as on the screen (`50%\r100%` shows `100%`).
public enum TerminalScreen {
    /// Renders `bytes` (UTF-8, invalid sequences replaced) to plain lines ending in `\n`.
    public static func render(_ bytes: [UInt8]) -> String {
        var renderer = Renderer()
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars { renderer.feed(scalar) }
        return renderer.finish()
    }

    private struct Renderer {
        enum State {
            case text
            /// After ESC.
            case escape
            /// In `ESC [ ...`: parameters until a final byte (0x40–0x7E).
            case csi(parameters: String)
            /// In `ESC ] ...` (or DCS, APC, PM, SOS strings): until BEL or `ESC \`.
            case string(sawEscape: Bool)
            /// `ESC (` and the like: one more character to skip.
            case skipOne
        }

        var state = State.text
        var output = ""
        var line: [Character] = []
        var column = 0

        mutating func feed(_ scalar: Unicode.Scalar) {
            switch state {
            case .text: text(scalar)
            case .escape:
                switch scalar {
                case "[": state = .csi(parameters: "")
                case "]", "P", "_", "^", "X": state = .string(sawEscape: false)
                case "(", ")", "*", "+", "#", "%": state = .skipOne
                default: state = .text
                }
            case .csi(let parameters):
                if (0x40...0x7E).contains(scalar.value) {
                    state = .text
                    csi(final: scalar, parameters: parameters)
                } else {
                    state = .csi(parameters: parameters + String(scalar))
                }
            case .string(let sawEscape):
                if scalar == "\u{07}" || (sawEscape && scalar == "\\") {
                    state = .text
                } else {
                    state = .string(sawEscape: scalar == "\u{1B}")
                }
            case .skipOne:
                state = .text
            }
        }

        mutating func text(_ scalar: Unicode.Scalar) {
            switch scalar {
            case "\u{1B}": state = .escape
            case "\n": endLine()
            case "\r": column = 0
            case "\u{08}": column = max(0, column - 1)
            case "\t": put("\t")  // kept as a tab: the text stays what was typed and printed
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value):
                break  // other controls (BEL, SI/SO, C1) show nothing
            default: put(Character(scalar))
            }
        }

        mutating func put(_ character: Character) {
            if column < line.count {
                line[column] = character
            } else {
                line.append(contentsOf: repeatElement(" ", count: column - line.count))
                line.append(character)
            }
            column += 1
        }

        mutating func csi(final: Unicode.Scalar, parameters: String) {
            let number = Int(parameters.split(separator: ";").first ?? "") ?? 0
            switch final {
            case "K":
                // Erase in line: 0 to the end, 1 to the start, 2 all.
                switch number {
                case 1: for index in 0..<min(column + 1, line.count) { line[index] = " " }
                case 2: line.removeAll()
                default: if column < line.count { line.removeSubrange(column...) }
                }
            case "C": column += max(number, 1)
            case "D": column = max(0, column - max(number, 1))
            case "G": column = max(0, max(number, 1) - 1)
            case "P":
                // Delete characters at the cursor.
                if column < line.count { line.removeSubrange(column..<min(line.count, column + max(number, 1))) }
            case "@":
                if column <= line.count { line.insert(contentsOf: repeatElement(" ", count: max(number, 1)), at: column) }
            default:
                break  // colours (m), screen and cursor-position moves: nothing to show in text
            }
        }

        mutating func endLine() {
            var text = String(line)
            while text.last == " " { text.removeLast() }
            output += text + "\n"
            line.removeAll()
            column = 0
        }

        mutating func finish() -> String {
            if !line.isEmpty { endLine() }
            return output
        }
    }
}
