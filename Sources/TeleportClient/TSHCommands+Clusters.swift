import Foundation
public import TeleportAPI

extension TSHCommands {
    /// `tsh clusters [--format=text|json]`: the cluster this profile is logged in to and the leaf
    /// clusters that trust it (issue 20), with their status; `*` marks the selected one.
    public static func clusters(_ options: ClientOptions, json: Bool, context: ClientContext) async throws -> Outcome {
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        let entries = try await web.clusters()
        if json {
            let data = try JSONSerialization.data(
                withJSONObject: try entries.map { try JSONSerialization.jsonObject(with: ResourceCodec.json($0)) },
                options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            return Outcome(output: String(decoding: data, as: UTF8.self) + "\n")
        }
        let rows = entries.map { entry in
            [TerminalText.escape(entry.name), entry.status, entry.type, entry.name == session.cluster ? "*" : ""]
        }
        return Outcome(output: Table.render(headers: ["Cluster Name", "Status", "Cluster Type", "Selected"], rows: rows))
    }

    /// Checks `--cluster=NAME` against the clusters the proxy knows: this profile's cluster passes
    /// (false); an online leaf passes (true: its nodes are reached through the root's proxy); an
    /// offline leaf and an unknown name are refused with the list of clusters.
    @discardableResult
    static func checkCluster(_ wanted: String?, profileCluster: String, web: WebClient) async throws -> Bool {
        guard let wanted, wanted != profileCluster else { return false }
        let entries = (try? await web.clusters()) ?? [WebAPI.ClusterEntry(name: profileCluster, status: "online", type: "root")]
        let listing = entries.map { "\(TerminalText.escape($0.name)) (\($0.type), \($0.status))" }.joined(separator: ", ")
        if let leaf = entries.first(where: { $0.name == wanted && $0.type == "leaf" }) {
            guard leaf.status == "online" else {
                throw TeleportError.connectionProblem(
                    "leaf cluster \(TerminalText.escape(wanted)) is \(TerminalText.escape(leaf.status)): its proxy holds no tunnel to "
                        + "\(TerminalText.escape(profileCluster)) now (is the trust enabled and its proxy running?); the clusters are: \(listing)")
            }
            return true
        }
        throw TeleportError.notFound(
            "cluster \(TerminalText.escape(wanted).debugDescription) is not known to \(TerminalText.escape(profileCluster)); the clusters are: \(listing) (see tsh clusters)")
    }
}
