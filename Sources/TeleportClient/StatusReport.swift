public import Foundation
import TeleportAPI

/// What `tsh status` (and `tsh login` on success) prints, laid out as Teleport's `tsh` does:
///
/// ```
/// > Profile URL:        https://proxy.example.com:3080
///   Logged in as:       joe
///   Cluster:            example.com
///   Roles:              access, editor
///   Logins:             joe, root
///   Valid until:        2024-05-01T18:00:00Z [11h59m left]
/// ```
public struct StatusReport: Sendable, Equatable {
    /// The profile's URL (or where the identity came from).
    public var profileURL: String
    /// The facts from the certificates.
    public var facts: CertificateFacts

    /// Creates a report.
    public init(profileURL: String, facts: CertificateFacts) {
        self.profileURL = profileURL
        self.facts = facts
    }

    /// The lines, for `now`.
    public func text(now: Date) -> String {
        let validity: String
        if facts.isExpired(at: now) {
            validity = "[EXPIRED]"
        } else {
            validity = "[\(Self.timeLeft(facts.validBefore.timeIntervalSince(now)))]"
        }
        let rows: [(String, String)] = [
            ("Logged in as:", facts.username),
            ("Cluster:", facts.clusterName),
            ("Roles:", facts.roles.isEmpty ? "-" : facts.roles.joined(separator: ", ")),
            ("Logins:", facts.logins.isEmpty ? "-" : facts.logins.joined(separator: ", ")),
            ("Valid until:", "\(RFC3339.format(facts.validBefore)) \(validity)"),
        ]
        var lines = ["> " + Self.pad("Profile URL:") + profileURL]
        // The values come from the certificates the cluster issued: shown escaped (TerminalText).
        lines += rows.map { "  " + Self.pad($0.0) + TerminalText.escape($0.1) }
        if facts.logins.isEmpty {
            lines.append("")
            lines.append(
                "Your roles (\(facts.roles.isEmpty ? "none" : facts.roles.joined(separator: ", "))) allow no logins on any node, "
                    + "or no longer exist: ask an administrator for access (tctl users update \(facts.username) --set-roles=...).")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The time left, rounded down (a certificate with 11h59m59s left has not got 12h): `11h59m left`,
    /// `5m left`, `42s left`.
    public static func timeLeft(_ seconds: TimeInterval) -> String {
        let whole = max(0, Int(seconds.rounded(.down)))
        let hours = whole / 3600
        let minutes = whole % 3600 / 60
        if hours > 0 { return "\(hours)h\(minutes)m left" }
        if minutes > 0 { return "\(minutes)m left" }
        return "\(whole)s left"
    }

    static func pad(_ label: String) -> String {
        label.count >= 20 ? label + " " : label + String(repeating: " ", count: 20 - label.count)
    }
}
