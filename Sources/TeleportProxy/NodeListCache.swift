import Foundation
import Synchronization
import TeleportAPI
import TeleportAuthClient

/// A value read from the auth service and kept for a second: `tsh ls` over tens of thousands of
/// nodes pages through the node list, and each page should not fetch it (or the roles) again; a
/// change shows within a second.
final class ShortLivedCache<Value: Sendable>: Sendable {
    static var lifetime: TimeInterval { 1 }
    private let state = Mutex<(loaded: Date, value: Value)?>(nil)

    /// The kept value, or a fresh one from `load`, which is given the value it replaces (if any)
    /// to reuse what did not change.
    func value(_ load: (_ previous: Value?) async throws -> Value) async throws -> Value {
        let cached = state.withLock { $0 }
        if let cached, Date().timeIntervalSince(cached.loaded) < Self.lifetime {
            return cached.value
        }
        let value = try await load(cached?.value)
        state.withLock { $0 = (Date(), value) }
        return value
    }
}

/// One node of the proxy's list: decoded, its labels merged (``ServerNode/allLabels``) and its
/// JSON encoded once, so that a listing only filters and copies bytes.
struct ListedNode: NodeListEntry {
    /// The node.
    let node: ServerNode
    /// Static and dynamic labels together.
    let labels: [String: String]
    /// The node as `ResourceCodec.json` writes it (what `tsh ls` decodes).
    let json: Data

    /// Keeps `node`, merging its labels and encoding it with `encoder` (one per refresh).
    init(_ node: ServerNode, encoder: JSONEncoder = ResourceCodec.jsonEncoder()) throws {
        self.node = node
        self.labels = node.allLabels
        self.json = try encoder.encode(node)
    }
}

/// The node list in both orders of ``NodeListQuery/Sort``, read and sorted at most once per
/// cache lifetime. A refresh reads the auth service's stored records as they are and decodes only
/// those that changed: a heartbeat rewrites the same bytes (its expiry lives beside them), so at
/// 10,000 nodes a refresh is mostly a byte comparison, and an unchanged list is not sorted again.
final class NodeListCache: Sendable {
    /// One read of the list.
    struct Snapshot: Sendable {
        /// The auth service's reply this was made from.
        var source: Data
        /// The nodes in each order.
        var orders: [NodeListQuery.Sort: [ListedNode]]
        /// The nodes by their stored record.
        var byRecord: [Data: ListedNode]
    }

    private let cache = ShortLivedCache<Snapshot>()

    /// The nodes sorted by ``NodeListQuery/key(_:sort:)`` in `order`.
    func sorted(auth: AuthClient, by order: NodeListQuery.Sort) async throws -> [ListedNode] {
        let snapshot = try await cache.value { previous in
            try Self.snapshot(of: try await auth.nodeRecords(), previous: previous)
        }
        return snapshot.orders[order] ?? []
    }

    /// The list `records` (a JSON array of stored node records) holds, reusing what `previous` decoded.
    static func snapshot(of records: Data, previous: Snapshot?) throws -> Snapshot {
        if let previous, previous.source == records { return previous }
        let decoder = ResourceCodec.jsonDecoder()
        let encoder = ResourceCodec.jsonEncoder()
        var byRecord: [Data: ListedNode] = [:]
        var nodes: [ListedNode] = []
        for range in try JSONArrayElements.split(records) {
            let record = records[range]
            if let known = previous?.byRecord[record] ?? byRecord[record] {
                nodes.append(known)
                byRecord[record] = known
                continue
            }
            let node: ServerNode
            do {
                node = try decoder.decode(ServerNode.self, from: record)
            } catch {
                throw TeleportError.connectionProblem("the auth service sent a node record the proxy cannot read: \(error)")
            }
            let listed = try ListedNode(node, encoder: encoder)
            nodes.append(listed)
            byRecord[record] = listed
        }
        return Snapshot(source: records, orders: sortedOrders(nodes), byRecord: byRecord)
    }

    /// `nodes` in every order.
    static func sortedOrders<Entry: NodeListEntry>(_ nodes: [Entry]) -> [NodeListQuery.Sort: [Entry]] {
        var result: [NodeListQuery.Sort: [Entry]] = [:]
        for order in NodeListQuery.Sort.allCases {
            result[order] = nodes.map { (NodeListQuery.key($0, sort: order), $0) }.sorted { $0.0 < $1.0 }.map(\.1)
        }
        return result
    }
}
