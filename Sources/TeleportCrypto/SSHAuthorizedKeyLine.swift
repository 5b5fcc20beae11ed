import Foundation
import TeleportAPI

/// The `type base64 [comment]` line shared by `.pub` files, `-cert.pub` files and `authorized_keys`.
enum SSHAuthorizedKeyLine {
    /// Formats a line; the comment follows after one space when not empty.
    static func format(type: String, blob: Data, comment: String) -> String {
        let base = "\(type) \(blob.base64EncodedString())"
        return comment.isEmpty ? base : "\(base) \(comment)"
    }

    /// Splits a line into its type, its decoded blob and its comment (possibly with inner spaces).
    static func parse(_ line: String) throws -> (type: String, blob: Data, comment: String) {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = trimmed.split(maxSplits: 2, omittingEmptySubsequences: true) { $0 == " " || $0 == "\t" }
        guard parts.count >= 2 else {
            throw TeleportError.badParameter("SSH key line must be \"type base64 [comment]\"")
        }
        guard let blob = Data(base64Encoded: String(parts[1])) else {
            throw TeleportError.badParameter("SSH key line: the key is not valid base64")
        }
        let comment = parts.count > 2 ? parts[2].trimmingCharacters(in: .whitespaces) : ""
        return (String(parts[0]), blob, comment)
    }
}
