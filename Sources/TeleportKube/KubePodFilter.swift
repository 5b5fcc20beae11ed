import Foundation
import TeleportAPI

/// Narrows pod lists and pod watches to the pods a user's `kubernetes_resources` allow (role v7
/// behaviour): the API server answers for every pod of the namespace, so the service removes the
/// others before kubectl sees them. Pure: bytes in, bytes out.
///
/// A list is a JSON `PodList` (`items`) or a `meta.k8s.io` `Table` (`rows`, each with its
/// `object.metadata`), which is what `kubectl get pods` asks for. A watch is a stream of JSON
/// events, one a line (`{"type":"ADDED","object":...}`), whose object is a pod or a one-row
/// `Table`; an event whose pod is not allowed is dropped. Anything without a name in its
/// `metadata` (a `Status`, a `BOOKMARK`) passes unchanged.
struct KubePodFilter: Sendable {
    /// Whether the pod `namespace/name` may be seen.
    let allows: @Sendable (_ namespace: String, _ name: String) -> Bool
    /// The namespace of the request (for objects that do not name theirs).
    let namespace: String

    /// The largest list read whole to be filtered, and the longest watch event line.
    static let maxBody = 32 << 20

    /// A list body, filtered (re-encoded JSON).
    func list(_ body: [UInt8]) throws -> [UInt8] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw TeleportError.badParameter("the API server's pod list is not a JSON object (only JSON lists can be filtered by kubernetes_resources)")
        }
        return try encode(filtered(object) ?? [:])
    }

    /// One watch event line (without its line end): the line to send (with `\n`), or nil to drop it.
    func event(_ line: ArraySlice<UInt8>) -> [UInt8]? {
        guard !line.allSatisfy({ $0 == 32 || $0 == 13 || $0 == 9 }) else { return nil }
        guard var event = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
            let object = event["object"] as? [String: Any]
        else {
            // Not an event we can read: nothing about a pod can be told from it, so it is dropped.
            return nil
        }
        guard let kept = filtered(object) else { return nil }
        if let rows = kept["rows"] as? [Any], rows.isEmpty, (object["rows"] as? [Any])?.isEmpty == false { return nil }
        event["object"] = kept
        return (try? encode(event)).map { $0 + [10] }
    }

    /// The object with its disallowed items or rows removed, or nil when it is itself a pod that
    /// is not allowed.
    func filtered(_ object: [String: Any]) -> [String: Any]? {
        var object = object
        if let rows = object["rows"] as? [Any] {
            object["rows"] = rows.filter { row in
                guard let row = row as? [String: Any], let inner = row["object"] as? [String: Any] else { return false }
                return keeps(inner)
            }
            return object
        }
        if let items = object["items"] as? [Any] {
            object["items"] = items.filter { item in (item as? [String: Any]).map(keeps) ?? false }
            return object
        }
        return keeps(object) ? object : nil
    }

    /// Whether an object may be seen: one that names no pod (no `metadata.name`) may.
    func keeps(_ object: [String: Any]) -> Bool {
        guard let metadata = object["metadata"] as? [String: Any], let name = metadata["name"] as? String, !name.isEmpty else { return true }
        let kind = object["kind"] as? String ?? "Pod"
        guard kind == "Pod" || kind == "PartialObjectMetadata" else { return true }
        return allows(metadata["namespace"] as? String ?? namespace, name)
    }

    func encode(_ object: [String: Any]) throws -> [UInt8] {
        do {
            return Array(try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes]))
        } catch {
            throw TeleportError.badParameter("the filtered pod list cannot be encoded: \(error)")
        }
    }
}

/// Splits a watch stream into lines, at most ``KubePodFilter/maxBody`` bytes each.
struct KubeWatchLines: Sendable {
    private var pending: [UInt8] = []

    /// The complete lines in `bytes` (with what was pending), without their `\n`.
    mutating func feed(_ bytes: some Collection<UInt8>) throws -> [ArraySlice<UInt8>] {
        pending.append(contentsOf: bytes)
        var lines: [ArraySlice<UInt8>] = []
        var start = pending.startIndex
        var end = start
        while let newline = pending[start...].firstIndex(of: 10) {
            lines.append(pending[start..<newline])
            start = newline + 1
            end = start
        }
        let rest = Array(pending[end...])
        guard rest.count <= KubePodFilter.maxBody else {
            throw TeleportError.badParameter("a watch event is longer than \(KubePodFilter.maxBody) bytes")
        }
        let complete = lines.map { ArraySlice(Array($0)) }
        pending = rest
        return complete
    }

    /// What is left at the end of the stream (an event without a line end).
    var rest: ArraySlice<UInt8> { pending[...] }
}
