/// One `-----BEGIN LABEL----- ... -----END LABEL-----` block of a PEM text.
struct PEMBlock: Sendable, Equatable {
    /// `CERTIFICATE`, `PRIVATE KEY`, `OPENSSH PRIVATE KEY`, ...
    var label: String
    /// The block, armour lines included, ending in a newline.
    var text: String

    /// Every block of `text`, in order; text outside blocks is skipped.
    static func split(_ text: String) -> [PEMBlock] {
        var blocks: [PEMBlock] = []
        var current: [String] = []
        var label: String?
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if let open = label {
                current.append(trimmed)
                if trimmed == "-----END \(open)-----" {
                    blocks.append(PEMBlock(label: open, text: current.joined(separator: "\n") + "\n"))
                    label = nil
                }
            } else if let opened = beginLabel(trimmed) {
                label = opened
                current = [trimmed]
            }
        }
        return blocks
    }

    /// The label of a `-----BEGIN LABEL-----` line.
    static func beginLabel(_ line: String) -> String? {
        guard line.hasPrefix("-----BEGIN "), line.hasSuffix("-----"), line.count > 16 else { return nil }
        return String(line.dropFirst("-----BEGIN ".count).dropLast(5))
    }
}

import Foundation
