import Foundation
import Logging
import TeleportAPI
import TeleportBackend
import TeleportBackendEtcd
import TeleportTestSupport
import Testing

/// etcd-specific behaviour, against a real etcd per test (the shared contract is in BackendComplianceSuite).
@Suite("etcd backend", .timeLimit(.minutes(3)), .enabled(if: EtcdServer.isInstalled, "etcd-server is not installed"))
struct EtcdBackendTests {
    private let logger = Logger(label: "test.etcd")

    @Test func twoClientsSeeEachOthersWritesThroughWatches() async throws {
        try await EtcdServer.with { server in
            let first = try await EtcdBackend.open(settings: server.settings(prefix: "/teleport/"), logger: logger)
            let second = try await EtcdBackend.open(settings: server.settings(prefix: "/teleport/"), logger: logger)
            let other = try await EtcdBackend.open(settings: server.settings(prefix: "/elsewhere/"), logger: logger)
            let stream = try await second.watch(prefix: "/users/")
            try await other.put(Item(key: "/users/hidden", value: Data("another prefix".utf8)))
            let written = try await first.put(Item(key: "/users/joe", value: Data("joe".utf8)))
            try await first.delete("/users/joe")
            let events = await collect(2, from: stream)
            #expect(events == [.put(written), .delete(key: "/users/joe")])
            #expect(try await second.getRange(prefix: "/").isEmpty)
            #expect(try await other.get("/users/hidden").value == Data("another prefix".utf8))
            for backend in [first, second, other] { try await backend.close() }
        }
    }

    @Test func aCompactedRevisionGivesAResetNotASilentGap() async throws {
        try await EtcdServer.with { server in
            let backend = try await EtcdBackend.open(settings: server.settings(prefix: "/teleport/"), logger: logger)
            var last = try await backend.put(Item(key: "/c/a", value: Data("1".utf8)))
            for value in 2...5 { last = try await backend.put(Item(key: "/c/a", value: Data("\(value)".utf8))) }
            let revision = try #require(last.revision.split(separator: ":").first.flatMap { Int64($0) })
            try await backend.compact(revision: revision)
            // A watcher resuming from before the compaction cannot get those events back.
            let stream = try await backend.watch(prefix: "/c/", fromRevision: revision - 3)
            let after = try await backend.put(Item(key: "/c/b", value: Data("after".utf8)))
            let events = await collect(2, from: stream)
            #expect(events == [.reset, .put(after)])
            try await backend.close()
        }
    }

    @Test func leaseExpiryIsSeenByAWatcher() async throws {
        try await EtcdServer.with { server in
            // A 15 s slack: a loaded machine that stalls between the lease grant and the write (it did,
            // for more than the default 5 s) must not lose the lease; etcd still ends it on its own.
            let backend = try await EtcdBackend.open(settings: server.settings(prefix: "/teleport/"), leaseSlack: 15, logger: logger)
            let stream = try await backend.watch(prefix: "/ttl/")
            let stored = try await backend.put(Item(key: "/ttl/node", value: Data("hb".utf8), expires: Date().addingTimeInterval(1)))
            // etcd revokes the lease in real time: the watcher hears of it without any sweep.
            let events = await collect(2, from: stream, timeout: .seconds(60))
            #expect(events == [.put(stored), .delete(key: "/ttl/node")])
            try await backend.close()
        }
    }

    @Test func aWatcherReconnectsAfterEtcdRestartsWithoutLosingEvents() async throws {
        try await EtcdServer.with { server in
            let writer = try await EtcdBackend.open(settings: server.settings(prefix: "/teleport/"), logger: logger)
            let watcher = try await EtcdBackend.open(settings: server.settings(prefix: "/teleport/"), logger: logger)
            let stream = try await watcher.watch(prefix: "/r/")
            let before = try await writer.put(Item(key: "/r/1", value: Data("before".utf8)))
            await server.stop()
            try await server.launch()
            let after = try await writer.put(Item(key: "/r/2", value: Data("after".utf8)))
            let events = await collect(2, from: stream, timeout: .seconds(60))
            #expect(events == [.put(before), .put(after)])
            for backend in [writer, watcher] { try await backend.close() }
        }
    }

    @Test func badSettingsFailAtOpenWithOneLine() async throws {
        let missing = "/nonexistent/etcd-\(UUID().uuidString).pem"
        let cases: [(EtcdSettings, String)] = [
            (EtcdSettings(peers: []), "peers is empty"),
            (EtcdSettings(peers: ["ftp://x"]), "is not an http(s)://host:port URL"),
            (EtcdSettings(peers: ["https://127.0.0.1:1"], tlsCertFile: missing, tlsKeyFile: missing), "tls_cert_file: cannot read"),
            (EtcdSettings(peers: ["https://127.0.0.1:1"], tlsCAFile: missing), "tls_ca_file: cannot read"),
            (EtcdSettings(peers: ["http://127.0.0.1:1"], username: "u", passwordFile: missing), "password_file: cannot read"),
        ]
        for (settings, message) in cases {
            let error = await expectTeleportError(.badParameter) { _ = try await EtcdBackend.open(settings: settings, logger: logger) }
            #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
            #expect(error?.message.contains("\n") == false)
        }
    }

    @Test func aClientWithoutTheRightCertificateIsRefused() async throws {
        try await EtcdServer.with { server in
            var settings = server.settings(prefix: "/teleport/")
            settings.tlsCertFile = nil
            settings.tlsKeyFile = nil
            await expectTeleportError(.connectionProblem) { _ = try await EtcdBackend.open(settings: settings, logger: logger) }
            var untrusted = server.settings(prefix: "/teleport/")
            untrusted.tlsCAFile = server.path("client.pem")  // not the CA that signed etcd's certificate
            await expectTeleportError(.connectionProblem) { _ = try await EtcdBackend.open(settings: untrusted, logger: logger) }
        }
    }

    @Test func aValueLargerThanTheMessageLimitIsRefusedBeforeSending() async throws {
        try await EtcdServer.with { server in
            var settings = server.settings(prefix: "/teleport/")
            settings.maxMessageBytes = 64 * 1024
            let backend = try await EtcdBackend.open(settings: settings, logger: logger)
            await expectTeleportError(.limitExceeded) {
                try await backend.put(Item(key: "/big", value: Data(count: 100 * 1024)))
            }
            await expectTeleportError(.notFound) { _ = try await backend.get("/big") }
            try await backend.close()
        }
    }

    @Test func rangesPageThroughManyKeys() async throws {
        try await EtcdServer.with { server in
            let backend = try await EtcdBackend.open(settings: server.settings(prefix: "/teleport/"), logger: logger)
            let keys = (0..<1203).map { String(format: "/many/%05d", $0) }
            for chunk in stride(from: 0, to: keys.count, by: 100) {
                try await backend.putBatch(keys[chunk..<min(chunk + 100, keys.count)].map { Item(key: $0, value: Data($0.utf8)) })
            }
            #expect(try await backend.getRange(prefix: "/many/").map(\.key) == keys)
            #expect(try await backend.getRange(prefix: "/many/", limit: 700).map(\.key) == Array(keys.prefix(700)))
            try await backend.close()
        }
    }
}

extension EtcdServer {
    /// Settings for a client with the test's client certificate, under `prefix`.
    func settings(prefix: String) -> EtcdSettings {
        EtcdSettings(
            peers: [url], prefix: prefix, tlsCertFile: path("client.pem"), tlsKeyFile: path("client.key"), tlsCAFile: path("ca.pem"))
    }
}
