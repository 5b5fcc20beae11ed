import Foundation
public import TeleportAPI
import TeleportAuthClient

extension TrustCommands {
    /// `tctl update rc/NAME --set-labels=KEY=VALUE[,KEY=VALUE...]` (root side): replaces the labels
    /// of a leaf's `remote_cluster` (an empty value clears them); they decide which users see and
    /// reach the leaf (roles' `cluster_labels`). Nothing else of the record can be set.
    public static func updateRemoteCluster(_ options: AdminConnection.Options, reference: String, setLabels: String) async throws -> String {
        let (kind, name) = try AdminCommands.parseReference(reference)
        guard kind == RemoteCluster.kind, let name else {
            throw TeleportError.badParameter("tctl update works on rc/NAME (a leaf cluster's remote_cluster), not \(reference.debugDescription)")
        }
        let labels = try parseLabels(setLabels)
        let client = try AdminConnection.client(options)
        let found: AnyResource
        do {
            found = try await client.resource(kind: RemoteCluster.kind, name: name)
        } catch let error as TeleportError where error.code == .notFound {
            throw TeleportError.notFound("no leaf cluster \(name.debugDescription) trusts this cluster (tctl get rc lists them)")
        }
        guard var record = found.value as? RemoteCluster else {
            throw TeleportError.internalError("the auth service answered rc/\(name) with another kind")
        }
        record.metadata.labels = labels.isEmpty ? nil : labels
        _ = try await client.applyResources([.registered(record)], upsert: true)
        return "remote cluster \"\(name)\" has been updated\n"
    }

    /// `KEY=VALUE,...` as labels; refused, naming the part, when a part has no `=` or an empty key.
    static func parseLabels(_ text: String) throws -> [String: String] {
        var labels: [String: String] = [:]
        for part in text.split(separator: ",") where !part.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let equals = part.firstIndex(of: "="), equals != part.startIndex else {
                throw TeleportError.badParameter("--set-labels: \"\(part)\" is not KEY=VALUE (e.g. --set-labels=env=prod,team=db)")
            }
            labels[String(part[..<equals]).trimmingCharacters(in: .whitespaces)] = String(part[part.index(after: equals)...])
        }
        return labels
    }
}
