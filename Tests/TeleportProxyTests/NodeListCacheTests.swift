import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import TeleportAPI
import Testing
@testable import TeleportProxy

/// The proxy's node list read from the auth service's stored records: splitting the array,
/// reusing what did not change, and the `tsh ls` page written from each node's JSON.
@Suite("node list cache (records, reuse, page bytes)")
struct NodeListCacheTests {
    struct SplitCase: Sendable, CustomTestStringConvertible {
        var input: String
        var elements: [String]?
        var testDescription: String { input }
    }

    @Test(arguments: [
        SplitCase(input: "[]", elements: []),
        SplitCase(input: " [ ] \n", elements: []),
        SplitCase(input: "[1]", elements: ["1"]),
        SplitCase(input: "[ 1 , \"a\" ,true,null ]", elements: ["1", "\"a\"", "true", "null"]),
        SplitCase(input: #"[{"a":[1,2],"b":"],}"},{"c":"\"]"}]"#, elements: [#"{"a":[1,2],"b":"],}"}"#, #"{"c":"\"]"}"#]),
        SplitCase(input: #"[{"a":"\\"},[[]]]"#, elements: [#"{"a":"\\"}"#, "[[]]"]),
        SplitCase(input: "", elements: nil),
        SplitCase(input: "{}", elements: nil),
        SplitCase(input: "[1,]", elements: nil),
        SplitCase(input: "[,1]", elements: nil),
        SplitCase(input: "[1", elements: nil),
        SplitCase(input: "[{]", elements: nil),
        SplitCase(input: "[}]", elements: nil),
        SplitCase(input: #"["]"#, elements: nil),
        SplitCase(input: "[1] [2]", elements: nil),
    ])
    func splitsArrays(_ c: SplitCase) {
        let data = Data(c.input.utf8)
        let ranges = try? JSONArrayElements.split(data)
        #expect(ranges.map { $0.map { String(decoding: data[$0], as: UTF8.self) } } == c.elements)
    }

    @Test("a slice's ranges are indices of the slice")
    func splitsSlice() throws {
        let whole = Data("xx[1,22]".utf8)
        let slice = whole[2...]
        let ranges = try JSONArrayElements.split(slice)
        #expect(ranges.map { String(decoding: slice[$0], as: UTF8.self) } == ["1", "22"])
    }

    static func records(_ nodes: [ServerNode]) throws -> Data {
        Data("[".utf8) + (try nodes.map { try ResourceCodec.json($0) }.joined(separator: Data(",".utf8))) + Data("]".utf8)
    }

    static let nodes: [ServerNode] = {
        var tunnelled = ServerNode(uuid: "u3", hostname: "beta", addr: "")
        tunnelled.spec.useTunnel = true
        tunnelled.spec.cmdLabels = ["arch": .init(period: "1m0s", command: ["uname", "-m"], result: "x86_64")]
        return [
            ServerNode(uuid: "u1", hostname: "gamma", addr: "10.0.0.1:3022", labels: ["env": "dev"]),
            ServerNode(uuid: "u2", hostname: "alpha", addr: "10.0.0.2:3022", labels: ["env": "prod", "note": "a/b \"q\""]),
            tunnelled,
        ]
    }()

    @Test("the records are decoded, labels merged and both orders sorted")
    func snapshot() throws {
        let snapshot = try NodeListCache.snapshot(of: try Self.records(Self.nodes), previous: nil)
        #expect(snapshot.orders[.name]?.map(\.node.spec.hostname) == ["alpha", "beta", "gamma"])
        #expect(snapshot.orders[.addr]?.map(\.node.spec.hostname) == ["beta", "gamma", "alpha"])
        #expect(snapshot.orders[.name]?[1].labels == ["arch": "x86_64"])
        #expect(snapshot.orders[.name]?.map(\.node) == [Self.nodes[1], Self.nodes[2], Self.nodes[0]])
    }

    @Test("an unchanged list is reused whole; a changed one decodes only the new records")
    func reuse() throws {
        let first = try NodeListCache.snapshot(of: try Self.records(Self.nodes), previous: nil)
        let same = try NodeListCache.snapshot(of: try Self.records(Self.nodes), previous: first)
        #expect(same.source == first.source && same.byRecord.count == 3)
        var changed = Self.nodes
        changed[0].spec.hostname = "delta"
        changed.remove(at: 1)
        let next = try NodeListCache.snapshot(of: try Self.records(changed), previous: first)
        #expect(next.orders[.name]?.map(\.node.spec.hostname) == ["beta", "delta"])
        #expect(next.byRecord.count == 2, "a node that left is forgotten")
    }

    @Test("a record that is not a node is an error, not a gap in the list")
    func badRecord() throws {
        let records = Data(#"[{"kind":"node","version":"v2","metadata":{"name":"u1"}}]"#.utf8)
        #expect(throws: TeleportError.self) { try NodeListCache.snapshot(of: records, previous: nil) }
        #expect(throws: TeleportError.self) { try NodeListCache.snapshot(of: Data("<html>".utf8), previous: nil) }
    }

    /// What `tsh` decodes must be what encoding the page as a whole would give, byte for byte.
    struct EncodedPage: Encodable {
        var items: [ServerNode]
        var nextKey: String?
        enum CodingKeys: String, CodingKey {
            case items
            case nextKey = "next_key"
        }
    }

    @Test("the page written from the nodes' JSON is the page encoded whole", arguments: [nil, "gamma/u1", "a \"quoted\"/key"])
    func pageBytes(_ nextKey: String?) async throws {
        let snapshot = try NodeListCache.snapshot(of: try Self.records(Self.nodes), previous: nil)
        for items in [try #require(snapshot.orders[.name]), []] {
            let response = try NodePage.response(items: items, nextKey: nextKey)
            let body = try await ResponseBodyCollector.collect(response.body)
            #expect(body == (try ResourceCodec.json(EncodedPage(items: items.map(\.node), nextKey: nextKey))))
            #expect(response.body.contentLength == body.count)
        }
    }
}

/// Collects a response body as the server would write it, counting the writes.
struct ResponseBodyCollector: ResponseBodyWriter {
    final class Sink: Sendable {
        let state = Mutex<(bytes: Data, writes: Int, finished: Bool)>((Data(), 0, false))
    }
    let sink: Sink

    mutating func write(_ buffer: ByteBuffer) async throws {
        sink.state.withLock {
            $0.bytes.append(contentsOf: buffer.readableBytesView)
            $0.writes += 1
        }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        sink.state.withLock { $0.finished = true }
    }

    static func collect(_ body: ResponseBody) async throws -> Data {
        let sink = Sink()
        try await body.write(ResponseBodyCollector(sink: sink))
        return sink.state.withLock { state in
            #expect(state.finished)
            return state.bytes
        }
    }
}
