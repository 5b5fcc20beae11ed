import Foundation
public import TeleportAPI

extension TSHCommands {
    /// Output formats of `tsh db ls`.
    public enum DatabaseListFormat: String, CaseIterable, Sendable {
        case text, json
    }

    /// `tsh db ls [k=v,...] [--format text|json]`: the databases your roles' `db_labels` allow.
    public static func listDatabases(
        _ options: ClientOptions, labels: String, format: DatabaseListFormat, context: ClientContext
    ) async throws -> Outcome {
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        let databases = try await web.databases(labels: labels)
        switch format {
        case .json:
            let trees = try databases.map { try JSONSerialization.jsonObject(with: ResourceCodec.json($0)) }
            let data = try JSONSerialization.data(withJSONObject: trees, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            return Outcome(output: String(decoding: data, as: UTF8.self) + "\n")
        case .text:
            let rows = databases.map { database in
                [
                    database.name, database.spec.description ?? "", database.spec.protocol.rawValue,
                    database.allLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
                ]
            }
            return Outcome(output: Table.render(headers: ["Name", "Description", "Protocol", "Labels"], rows: rows))
        }
    }
}
