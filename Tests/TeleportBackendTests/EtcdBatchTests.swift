import Foundation
import Logging
import TeleportAPI
import TeleportBackend
import TeleportBackendEtcd
import TeleportTestSupport
import Testing

/// Batches on etcd (issue 18): the items of one batch that need the same TTL share one lease, and a
/// batch larger than etcd allows in one transaction fails with one line naming `--max-txn-ops`.
@Suite("etcd backend: batches", .timeLimit(.minutes(3)), .enabled(if: EtcdServer.isInstalled, "etcd-server is not installed"))
struct EtcdBatchTests {
    private let logger = Logger(label: "test.etcd")

    /// etcd's leases now (`/v3/lease/leases`), by curl with the client certificate.
    private func leaseCount(_ server: EtcdServer) async throws -> Int {
        let result = try await TestSupport.run(
            "/usr/bin/curl",
            [
                "-s", "-m", "10", "--cacert", server.path("ca.pem"), "--cert", server.path("client.pem"), "--key", server.path("client.key"),
                "-X", "POST", "-d", "{}", "\(server.url)/v3/lease/leases",
            ])
        let reply = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        return (reply?["leases"] as? [Any])?.count ?? 0
    }

    @Test func aBatchOfHeartbeatsTakesOneLeasePerTTL() async throws {
        try await EtcdServer.with { server in
            let backend = try await EtcdBackend.open(settings: server.settings(prefix: "/teleport/"), logger: logger)
            let before = try await leaseCount(server)
            let expires = Date().addingTimeInterval(30)
            let items = (0..<50).map { Item(key: "/nodes/n\($0)", value: Data("node \($0)".utf8), expires: expires) }
            try await backend.putBatch(items)
            #expect(try await leaseCount(server) - before == 1)
            let stored = try await backend.getRange(prefix: "/nodes/")
            #expect(stored.count == 50)
            #expect(stored.allSatisfy { abs(($0.expires ?? .distantPast).timeIntervalSince(expires)) < 0.01 })
            // Items with another TTL in the same batch get their own lease.
            let later = Date().addingTimeInterval(300)
            try await backend.putBatch([
                Item(key: "/nodes/a", value: Data("a".utf8), expires: later), Item(key: "/nodes/b", value: Data("b".utf8), expires: expires),
                Item(key: "/nodes/c", value: Data("c".utf8)),
            ])
            #expect(try await leaseCount(server) - before == 3)
            try await backend.close()
        }
    }

    @Test func aBatchLargerThanEtcdAllowsFailsWithOneLineNamingMaxTxnOps() async throws {
        try await EtcdServer.with { server in
            let backend = try await EtcdBackend.open(settings: server.settings(prefix: "/teleport/"), logger: logger)
            let items = (0..<200).map { Item(key: "/roles/r\($0)", value: Data("role \($0)".utf8)) }
            do {
                try await backend.putBatch(items)
                Issue.record("a transaction of 200 operations was accepted (etcd's default limit is 128)")
            } catch let error as TeleportError {
                #expect(error.code == .limitExceeded, "\(error)")
                #expect(error.message.contains("--max-txn-ops") && !error.message.contains("\n"), "\(error.message)")
            }
            // Nothing of it was written.
            #expect(try await backend.getRange(prefix: "/roles/").isEmpty)
            try await backend.close()
        }
    }
}
