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
        // One string appended to: padding each cell through NSString took longer than reading
        // the list at 10,000 nodes.
        var out = ""
        out.reserveCapacity(rows.reduce(0) { total, row in total + row.reduce(row.count) { $0 + $1.utf8.count } } + (widths.reduce(0, +) + 2 * columns) * rows.count)
        for row in rows {
            var line = ""
            for (index, cell) in row.enumerated() {
                if index > 0 { line.append(" ") }
                line.append(cell)
                if index < row.count - 1 {
                    let pad = widths[index] + 1 - cell.count
                    if pad > 0 { line.append(String(repeating: " ", count: pad)) }
                }
            }
            // Empty last cells would leave the padding before them dangling.
            while line.hasSuffix(" ") { line.removeLast() }
            out.append(line)
            out.append("\n")
        }
        return rows.isEmpty ? "\n" : out
    }
}

import Foundation
import TeleportAPI
