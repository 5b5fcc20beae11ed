import Foundation
import Testing
import TeleportWire

@testable import TeleportKube

/// Lists and watches of pods narrowed to what kubernetes_resources allow (web-*, not db-*).
@Suite("Kubernetes pod lists filtered by kubernetes_resources")
struct KubePodFilterTests {
    let filter = KubePodFilter(allows: { namespace, name in namespace == "default" && name.hasPrefix("web-") }, namespace: "default")

    func json(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    func pod(_ name: String, namespace: String? = "default") -> [String: Any] {
        var metadata: [String: Any] = ["name": name]
        if let namespace { metadata["namespace"] = namespace }
        return ["kind": "Pod", "apiVersion": "v1", "metadata": metadata]
    }

    @Test func podListKeepsOnlyAllowedItems() throws {
        let list: [String: Any] = [
            "kind": "PodList", "metadata": ["resourceVersion": "7"],
            "items": [pod("web-0"), pod("db-0"), pod("web-1", namespace: nil), pod("web-2", namespace: "other")],
        ]
        let out = try json(try filter.list(Array(try JSONSerialization.data(withJSONObject: list))))
        let names = (out["items"] as? [[String: Any]])?.compactMap { ($0["metadata"] as? [String: Any])?["name"] as? String }
        #expect(names == ["web-0", "web-1"])
        #expect((out["metadata"] as? [String: Any])?["resourceVersion"] as? String == "7")
    }

    @Test func tableKeepsOnlyAllowedRows() throws {
        func row(_ name: String) -> [String: Any] {
            ["cells": [name, "Running"], "object": ["kind": "PartialObjectMetadata", "metadata": ["name": name, "namespace": "default"]]]
        }
        let table: [String: Any] = ["kind": "Table", "columnDefinitions": [["name": "Name"]], "rows": [row("db-0"), row("web-3")]]
        let out = try json(try filter.list(Array(try JSONSerialization.data(withJSONObject: table))))
        #expect((out["rows"] as? [[String: Any]])?.count == 1)
        #expect(((out["rows"] as? [[String: Any]])?.first?["cells"] as? [String])?.first == "web-3")
        #expect((out["columnDefinitions"] as? [Any])?.count == 1)
    }

    @Test func watchEventsOfOtherPodsAreDropped() throws {
        func line(_ object: [String: Any], type: String = "ADDED") throws -> ArraySlice<UInt8> {
            ArraySlice(Array(try JSONSerialization.data(withJSONObject: ["type": type, "object": object])))
        }
        #expect(filter.event(try line(pod("db-0"))) == nil)
        let kept = try #require(filter.event(try line(pod("web-0"), type: "MODIFIED")))
        #expect(kept.last == 10)
        #expect((try json(Array(kept.dropLast()))["type"]) as? String == "MODIFIED")
        // A one-row Table event for another pod is dropped; a Status or a bookmark passes.
        let tableEvent: [String: Any] = [
            "kind": "Table", "rows": [["cells": ["db-0"], "object": ["kind": "PartialObjectMetadata", "metadata": ["name": "db-0"]]]],
        ]
        #expect(filter.event(try line(tableEvent)) == nil)
        #expect(filter.event(try line(["kind": "Status", "code": 410], type: "ERROR")) != nil)
        #expect(filter.event(try line(["kind": "Pod", "metadata": ["resourceVersion": "9"]], type: "BOOKMARK")) != nil)
        // What cannot be read tells nothing about a pod: dropped; blank lines too.
        #expect(filter.event(ArraySlice(Array("not json".utf8))) == nil)
        #expect(filter.event(ArraySlice(Array("  ".utf8))) == nil)
    }

    @Test func listThatIsNotJSONIsRefused() {
        #expect(throws: (any Error).self) { try filter.list(Array("\u{0}\u{1}protobuf".utf8)) }
    }

    @Test func watchLinesSplitAcrossReads() throws {
        var lines = KubeWatchLines()
        #expect(try lines.feed(Array("{\"a\":".utf8)).isEmpty)
        let got = try lines.feed(Array("1}\n{\"b\":2}\n{\"c\"".utf8))
        #expect(got.map { String(decoding: $0, as: UTF8.self) } == ["{\"a\":1}", "{\"b\":2}"])
        #expect(String(decoding: lines.rest, as: UTF8.self) == "{\"c\"")
    }

    @Test func chunkedBodiesDecodeAcrossReads() throws {
        let body = Array("4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\n\r\nNEXT".utf8)
        for split in 1..<body.count {
            var scanner = HTTP1ChunkedScanner()
            var payload: [UInt8] = []
            var used = try scanner.decode(ArraySlice(body[0..<split])) { payload += $0 }
            if !scanner.isDone { used += try scanner.decode(body[split...]) { payload += $0 } }
            #expect(String(decoding: payload, as: UTF8.self) == "abcdefg", "split at \(split)")
            #expect(used == body.count - 4, "split at \(split)")
        }
    }
}
