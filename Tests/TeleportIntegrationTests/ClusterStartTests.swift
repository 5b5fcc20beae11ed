import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A single-node cluster started from our real binaries: status, CA pin, export, readiness,
/// pid file, restart.
@Suite("single-node cluster", .serialized)
struct ClusterStartTests {
    @Test("tctl status prints the cluster and a CA pin equal to openssl's hash of the exported host CA")
    func statusAndPin() async throws {
        try await withCluster(try ClusterFixture(clusterName: "pin.example")) { cluster in
            try await cluster.start()

            let status = try await cluster.tctl(["status"])
            #expect(status.exitCode == 0, "\(status)")
            #expect(status.stdout.contains("Cluster  pin.example"))
            // The database CA is listed too, without SSH fingerprints.
            #expect(status.stdout.split(separator: "\n").contains { $0.hasPrefix("DB CA") && $0.hasSuffix("X.509 only") }, "\(status.stdout)")
            let pinLine = try #require(status.stdout.split(separator: "\n").first { $0.hasPrefix("CA pin") })
            let pin = try #require(pinLine.split(separator: " ").last.map(String.init))
            #expect(pin.hasPrefix("sha256:") && pin.count == 7 + 64)

            let exported = try await cluster.tctl(["auth", "export", "--type=tls"])
            #expect(exported.exitCode == 0, "\(exported)")
            let pem = cluster.directory.appendingPathComponent("host-ca.pem")
            try TestSupport.write(exported.stdout, to: pem)
            let openssl = try await TestSupport.run(
                "/bin/sh", ["-c", "openssl x509 -in '\(pem.path)' -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum"])
            let digest = try #require(openssl.stdout.split(separator: " ").first.map(String.init))
            #expect(pin == "sha256:\(digest)")
            await cluster.stop()
        }
    }

    @Test("auth export prints the OpenSSH forms of both CAs")
    func exportForms() async throws {
        try await withCluster(try ClusterFixture(clusterName: "export.example")) { cluster in
            try await cluster.start()

            let both = try await cluster.tctl(["auth", "export"])
            #expect(both.exitCode == 0, "\(both)")
            let lines = both.stdout.split(separator: "\n")
            #expect(lines.count == 2)
            #expect(lines.contains { $0.hasPrefix("@cert-authority *.export.example,export.example ssh-ed25519 AAAA") })
            #expect(lines.contains { $0.hasPrefix("cert-authority ssh-ed25519 AAAA") && $0.hasSuffix("type=user") })

            let user = try await cluster.tctl(["auth", "export", "--type=user"])
            #expect(user.stdout.hasPrefix("ssh-ed25519 AAAA"))
            let host = try await cluster.tctl(["auth", "export", "--type=host"])
            #expect(host.stdout.hasPrefix("@cert-authority *.export.example,export.example ssh-ed25519 "))
            let bad = try await cluster.tctl(["auth", "export", "--type=nope"])
            #expect(bad.exitCode != 0)
            #expect(bad.stderr.contains("--type=nope is not known"))
            // Seed 002's order (the option before the subcommand) means the same.
            let seedOrder = try await cluster.tctl(["auth", "--type=host", "export"])
            #expect(seedOrder.exitCode == 0 && seedOrder.stdout == host.stdout, "\(seedOrder)")
            // A subcommand that does not exist is named as such (it was "Unknown option '-c'").
            let unknown = try await cluster.tctl(["auth", "frobnicate"])
            #expect(unknown.exitCode != 0 && unknown.stderr.contains("unknown command \"tctl auth frobnicate\""), "\(unknown)")
            #expect(!unknown.stderr.contains("Unknown option"), "\(unknown)")
            await cluster.stop()
        }
    }

    @Test("readiness, health and metrics endpoints; the node registers; pid file written and removed")
    func diagnosticsAndLifecycle() async throws {
        try await withCluster(try ClusterFixture()) { cluster in
            try await cluster.start()

            let ready = try await cluster.diag("readyz")
            #expect(ready.status == 200)
            #expect(ready.body == #"{"status":"ok"}"#)
            #expect(try await cluster.diag("healthz").status == 200)
            let metrics = try await cluster.diag("metrics")
            #expect(metrics.status == 200)
            #expect(metrics.body.contains("teleport_build_info"))

            let pidText = try String(contentsOf: cluster.pidFileURL, encoding: .utf8)
            #expect(pid_t(pidText.trimmingCharacters(in: .whitespacesAndNewlines)) == cluster.pid)

            let nodes = try await cluster.tctl(["get", "nodes", "--format", "text"])
            #expect(nodes.stdout.contains("testnode"), "\(nodes)")
            #expect(nodes.stdout.contains("env=test"))

            let perms = try FileManager.default.attributesOfItem(atPath: cluster.dataDir.path)[.posixPermissions] as? Int
            #expect(perms == 0o700)
            for key in ["admin.key", "node.key", "proxy.key", "webproxy_key.pem"] {
                let keyPerms = try FileManager.default.attributesOfItem(
                    atPath: cluster.dataDir.appendingPathComponent("keys/\(key)").path)[.posixPermissions] as? Int
                #expect(keyPerms == 0o600, "\(key)")
            }

            #expect(await cluster.stop(), "teleport did not stop gracefully on SIGTERM:\n\(cluster.log)")
            // The fixture logs at DEBUG, where service descriptions are printed: no key may appear.
            #expect(cluster.log.contains("Starting service"), "debug logging is on")
            #expect(!cluster.log.contains("PRIVATE KEY"), "a private key reached the log")
            #expect(!FileManager.default.fileExists(atPath: cluster.pidFileURL.path))
        }
    }

    @Test("state survives a restart: resources, cluster name and CAs")
    func restartKeepsState() async throws {
        try await withCluster(try ClusterFixture(clusterName: "restart.example")) { cluster in
            try await cluster.start()
            let user = cluster.directory.appendingPathComponent("joe.yaml")
            try TestSupport.write(
                """
                kind: user
                version: v2
                metadata:
                  name: joe
                  labels: {team: ops}
                spec:
                  roles: [access]
                  traits:
                    logins: [joe, root]
                """, to: user)
            let created = try await cluster.tctl(["create", user.path])
            #expect(created.exitCode == 0, "\(created)")
            let before = try await cluster.tctl(["status"])
            #expect(await cluster.stop())

            try await cluster.start()
            let after = try await cluster.tctl(["status"])
            #expect(after.stdout == before.stdout)
            let joe = try await cluster.tctl(["get", "user/joe", "--format", "json"])
            #expect(joe.exitCode == 0, "\(joe)")
            #expect(joe.stdout.contains("\"root\""))
            #expect(joe.stdout.contains("\"team\" : \"ops\"") || joe.stdout.contains("\"team\": \"ops\""))
            await cluster.stop()
        }
    }
}
