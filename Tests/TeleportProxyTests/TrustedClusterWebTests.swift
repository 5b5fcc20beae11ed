import Foundation
import TeleportAPI
import Testing
@testable import TeleportProxy

/// The web UI's leaf cluster pieces (issue 20), with no I/O: the Servers page of a leaf's listing
/// (search, labels, sort, pages, the logins the leaf sent), the terminal's node lookup in a
/// listing, and the bounded cache of web sessions' certificates.
@Suite("trusted clusters: the web UI's leaf listing, node lookup and certificate cache")
struct TrustedClusterWebTests {
    static let listing = ClusterWire.Listing(
        nodes: [
            ServerNode(uuid: "u1", hostname: "web-1", addr: "10.0.0.3:3022", labels: ["env": "dev"]),
            ServerNode(uuid: "u2", hostname: "Web-2", addr: "10.0.0.1:3022", labels: ["env": "prod"]),
            ServerNode(uuid: "u3", hostname: "db-1", addr: "10.0.0.2:3022", labels: ["env": "dev", "note": "<script>"]),
        ],
        hostKeys: [], logins: ["u1": ["root", "alice"], "u3": []])

    struct Case: Sendable, CustomTestStringConvertible {
        var search = ""
        var labels = ""
        var sort = NodeListQuery.Sort.name
        var limit = 100
        var expected: [String]
        var next: String? = nil
        var testDescription: String { "search=\(search) labels=\(labels) sort=\(sort) limit=\(limit) → \(expected)" }
    }

    @Test(arguments: [
        Case(expected: ["Web-2", "db-1", "web-1"]),
        Case(sort: .addr, expected: ["Web-2", "db-1", "web-1"]),
        Case(search: "web", expected: ["Web-2", "web-1"]),
        Case(labels: "env=dev", expected: ["db-1", "web-1"]),
        Case(labels: "env=staging", expected: []),
        Case(limit: 1, expected: ["Web-2"], next: "Web-2/u2"),
    ])
    func pages(_ c: Case) throws {
        let query = NodeListQuery(search: c.search, labels: try LabelSelector.parse(c.labels), sort: c.sort, limit: c.limit)
        let page = WebLeafRoutes.page(Self.listing, list: query)
        #expect(page.items.map(\.name) == c.expected)
        #expect(page.nextPageToken == c.next)
    }

    @Test("each node carries the logins the leaf sent for it; none when the leaf sent none")
    func logins() throws {
        let page = WebLeafRoutes.page(Self.listing, list: NodeListQuery())
        let byName = Dictionary(uniqueKeysWithValues: page.items.map { ($0.name, $0) })
        #expect(byName["web-1"]?.logins == ["root", "alice"])
        #expect(byName["db-1"]?.logins == [])
        #expect(byName["Web-2"]?.logins == [])
        #expect(byName["web-1"]?.id == "u1" && byName["web-1"]?.address == "10.0.0.3:3022")
        var old = Self.listing
        old.logins = nil
        #expect(WebLeafRoutes.page(old, list: NodeListQuery()).items.allSatisfy { $0.logins.isEmpty })
    }

    @Test("the listing's logins survive the wire, and a listing without them still decodes")
    func wire() throws {
        let json = try ResourceCodec.json(Self.listing)
        let back = try ResourceCodec.jsonDecoder().decode(ClusterWire.Listing.self, from: json)
        #expect(back.logins == Self.listing.logins)
        let old = try ResourceCodec.jsonDecoder().decode(ClusterWire.Listing.self, from: Data(#"{"nodes":[],"host_keys":[]}"#.utf8))
        #expect(old.logins == nil)
    }

    @Test(arguments: [("u2", "Web-2"), ("web-2", "Web-2"), ("WEB-1", "web-1"), ("db-1", "db-1"), ("nosuch", nil), ("", nil)] as [(String, String?)])
    func leafNode(_ name: String, _ expected: String?) {
        #expect(WebTerminalRoute.leafNode(name, in: Self.listing)?.spec.hostname == expected)
    }

    @Test("the certificate cache is bounded: expired entries go first, then the oldest")
    func cacheBound() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        func entry(_ line: String, expires: TimeInterval, added: TimeInterval) -> WebLeafCertificates.Entry {
            .init(line: line, validBefore: now.addingTimeInterval(expires), added: now.addingTimeInterval(added))
        }
        var entries: [String: WebLeafCertificates.Entry] = [:]
        WebLeafCertificates.insert(&entries, key: "a", entry: entry("a", expires: -10, added: -100), now: now, capacity: 3)
        WebLeafCertificates.insert(&entries, key: "b", entry: entry("b", expires: 600, added: -50), now: now, capacity: 3)
        WebLeafCertificates.insert(&entries, key: "c", entry: entry("c", expires: 600, added: -20), now: now, capacity: 3)
        #expect(entries.count == 3)
        // Full: the expired one goes.
        WebLeafCertificates.insert(&entries, key: "d", entry: entry("d", expires: 600, added: 0), now: now, capacity: 3)
        #expect(Set(entries.keys) == ["b", "c", "d"])
        // Full, none expired: the oldest goes.
        WebLeafCertificates.insert(&entries, key: "e", entry: entry("e", expires: 600, added: 1), now: now, capacity: 3)
        #expect(Set(entries.keys) == ["c", "d", "e"])
        // Replacing a kept key drops nothing.
        WebLeafCertificates.insert(&entries, key: "d", entry: entry("d2", expires: 900, added: 2), now: now, capacity: 3)
        #expect(Set(entries.keys) == ["c", "d", "e"] && entries["d"]?.line == "d2")
    }
}
