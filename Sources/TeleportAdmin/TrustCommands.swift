import Foundation
public import TeleportAPI
import TeleportAuthClient

/// `tctl` for trusted clusters: `tctl tokens add --type=trusted_cluster` (root) and `tctl auth ls`.
public enum TrustCommands {
    /// `tctl tokens add --type=trusted_cluster [--ttl=15m]`: a single-use token a leaf cluster
    /// names in its `trusted_cluster` resource; nil when `type` is another type.
    static func addTokenIfTrust(_ options: AdminConnection.Options, type: String, ttl: String, value: String?) async throws -> String? {
        let names = type.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard names.contains("trusted_cluster") else { return nil }
        guard names.count == 1 else {
            throw TeleportError.badParameter("--type=trusted_cluster cannot be combined with host roles (\(type)); make a separate token")
        }
        if let value { try TokenValue.check(value, source: "--value") }
        guard let seconds = GoDuration.parse(ttl) else {
            throw TeleportError.badParameter("--ttl=\(ttl) is not a duration such as 15m or 1h")
        }
        let created = try await AdminConnection.client(options).createToken(.init(token: value, roles: [.trustedCluster], ttlSeconds: seconds))
        return """
            The cluster invite token: \(TerminalText.escape(created.token))
            This token will expire in \(GoDuration.format(seconds: seconds)); it can be used once.

            Use this token when defining a trusted cluster resource on a remote cluster:
            kind: trusted_cluster, spec.token, spec.web_proxy_addr (this cluster's proxy web address)
            and spec.role_map, created there with tctl create.

            """
    }

    /// `tctl auth ls`: the local cluster's CAs, then those of trusted clusters.
    public static func list(_ options: AdminConnection.Options) async throws -> String {
        let listing = try await AdminConnection.client(options).authorities()
        let local = listing.local.map { [$0.type, $0.fingerprints.joined(separator: ",")] }
        var text = "CA keys for the local cluster \(TerminalText.escape(listing.clusterName)):\n\n"
        text += TextTable.render(headers: ["CA Type", "Fingerprint"], rows: local)
        text += "\nCA Keys for Trusted Clusters:\n\n"
        let trusted = listing.trusted.map {
            [TerminalText.escape($0.clusterName), $0.type, $0.fingerprints.joined(separator: ","), TerminalText.escape($0.mappedRoles ?? "N/A")]
        }
        text += TextTable.render(headers: ["Cluster Name", "CA Type", "Fingerprint", "Role Map"], rows: trusted)
        return text
    }
}
