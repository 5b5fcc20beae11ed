import Foundation
import TeleportAPI

/// One request for a page of nodes (`GET /webapi/nodes`): a search text, a label filter, an order,
/// where the previous page ended and how many to return. Pure: it pages a list already sorted in
/// its order (``NodeListCache`` sorts once per cache lifetime), so a page costs a binary search to
/// its start and a scan until it is full, not a sort.
struct NodeListQuery: Sendable {
    /// The orders the list can be read in.
    enum Sort: String, Sendable, CaseIterable {
        /// By host name, then id.
        case name
        /// By address, then id (tunnelled nodes, with no address, first).
        case addr
    }

    /// Case-insensitive text looked for in the name, id, address and label keys and values.
    var search: String = ""
    /// Labels every node must have.
    var labels = LabelSelector(required: [:])
    /// The order.
    var sort: Sort = .name
    /// The key of the last node of the previous page (``key(_:)``); empty for the first page.
    var pageToken: String = ""
    /// The page size.
    var limit: Int = 1000

    /// The sort key of `node` in `sort` order; also the page token after it.
    static func key(_ listed: some NodeListEntry, sort: Sort) -> String {
        let node = listed.node
        return switch sort {
        case .name: node.spec.hostname + "/" + node.name
        case .addr: (node.isTunnelled ? "" : node.spec.addr) + "/" + node.name
        }
    }

    /// Whether `node` matches the search text and the label filter (not the user's access: the
    /// caller's `allowed` decides that).
    func matches(_ listed: some NodeListEntry) -> Bool {
        let node = listed.node
        let labels = listed.labels
        guard self.labels.matches(labels) else { return false }
        let needle = search.trimmingCharacters(in: .whitespaces)
        guard !needle.isEmpty else { return true }
        let fields = [node.spec.hostname, node.name, node.spec.addr] + labels.flatMap { [$0.key, $0.value, "\($0.key)=\($0.value)"] }
        return fields.contains { $0.range(of: needle, options: .caseInsensitive) != nil }
    }

    /// The page of `sorted` (sorted by ``key(_:sort:)`` in this query's order) after the page token:
    /// up to `limit` nodes that match and that `allowed` lets through, and the token of the next
    /// page when more may follow.
    func page<Entry: NodeListEntry>(of sorted: [Entry], allowed: (Entry) -> Bool) -> (items: [Entry], nextToken: String?) {
        var start = sorted.startIndex
        if !pageToken.isEmpty {
            var low = sorted.startIndex
            var high = sorted.endIndex
            while low < high {
                let middle = low + (high - low) / 2
                if Self.key(sorted[middle], sort: sort) <= pageToken { low = middle + 1 } else { high = middle }
            }
            start = low
        }
        var items: [Entry] = []
        let size = max(limit, 1)
        for node in sorted[start...] where matches(node) && allowed(node) {
            if items.count == size {
                return (items, items.last.map { Self.key($0, sort: sort) })
            }
            items.append(node)
        }
        return (items, nil)
    }
}

/// What a node list holds: the node, and its static and dynamic labels together.
protocol NodeListEntry: Sendable {
    /// The node.
    var node: ServerNode { get }
    /// ``ServerNode/allLabels``.
    var labels: [String: String] { get }
}

extension ServerNode: NodeListEntry {
    var node: ServerNode { self }
    var labels: [String: String] { allLabels }
}
