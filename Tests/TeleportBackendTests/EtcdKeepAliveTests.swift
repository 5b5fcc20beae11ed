import Foundation
import Logging
import TeleportAPI
import TeleportBackend
import TeleportBackendEtcd
import TeleportTestSupport
import Testing

/// The etcd transport keeps its connections alive (``EtcdBackend/connectionsOpened``): sequential
/// calls reuse one connection; concurrent ones open at most one each and then reuse them; after
/// etcd restarts, the dead kept connections are replaced without failing a call.
@Suite("etcd keep-alive connections", .timeLimit(.minutes(3)), .enabled(if: EtcdServer.isInstalled, "etcd-server is not installed"))
struct EtcdKeepAliveTests {
    private let logger = Logger(label: "test.etcd")

    @Test func callsReuseConnections() async throws {
        try await EtcdServer.with { server in
            let backend = try await EtcdBackend.open(settings: server.settings(prefix: "/teleport/"), logger: logger)
            let atOpen = backend.connectionsOpened
            let started = ContinuousClock.now
            for index in 0..<200 {
                try await backend.put(Item(key: "/k/\(index % 10)", value: Data("v\(index)".utf8)))
                _ = try await backend.get("/k/\(index % 10)")
            }
            let took = ContinuousClock.now - started
            let sequential = backend.connectionsOpened - atOpen
            print("etcd keep-alive: 400 sequential calls took \(took) over \(sequential) new connection(s)")
            #expect(sequential <= 1, "\(sequential) connections for 400 sequential calls")

            // Concurrent calls: at most one connection each, then reused.
            let before = backend.connectionsOpened
            for _ in 0..<3 {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<10 { group.addTask { _ = try await backend.get("/k/\(index)") } }
                    try await group.waitForAll()
                }
            }
            let concurrent = backend.connectionsOpened - before
            #expect(concurrent <= 10, "\(concurrent) connections for three rounds of 10 concurrent calls")

            // etcd restarts: the kept connections are dead; the next calls replace them and succeed.
            await server.stop()
            try await server.launch()
            let afterRestart = backend.connectionsOpened
            try await backend.put(Item(key: "/k/after", value: Data("after".utf8)))
            #expect(try await backend.get("/k/after").value == Data("after".utf8))
            #expect(backend.connectionsOpened > afterRestart)
            try await backend.close()
        }
    }
}
