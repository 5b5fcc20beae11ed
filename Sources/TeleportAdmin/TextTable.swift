/// Plain text tables in the seed's layout: a header row, a dashed rule, columns padded by spaces.
public enum TextTable {
    /// A table with headers and a rule under them.
    public static func render(headers: [String], rows: [[String]]) -> String {
        let all = [headers, headers.map { String(repeating: "-", count: $0.count) }] + rows
        return plain(all)
    }

    /// Rows with padded columns and no header. Every cell is shown through
    /// ``TerminalText/escape(_:)``: cells hold data from the cluster (user names, labels, events),
    /// and a control character in one must neither act on the terminal nor break the table.
    public static func plain(_ unescaped: [[String]]) -> String {
        let rows = unescaped.map { $0.map(TerminalText.escape) }
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        return rows.map { row in
            var line = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index] + 1, withPad: " ", startingAt: 0)
            }.joined(separator: " ")
            // Empty last cells would leave the padding before them dangling.
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }.joined(separator: "\n") + "\n"
    }
}

import Foundation
import TeleportAPI
