import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 18's fault "the store full": the PostgreSQL store's database lives in a tablespace on a
/// small tmpfs this test mounts (48 MiB, owned by `postgres`; unmounted afterwards), which a filler
/// file then fills, so PostgreSQL really reports `could not extend file ...: No space left on
/// device` (SQLSTATE 53100). Writes fail with one line naming the cause, nothing is half-written,
/// `/readyz` says not ready and why, and once the filler is removed everything recovers.
@Suite("the PostgreSQL store full", .timeLimit(.minutes(10)), .enabled(if: DatabaseServers.postgresAvailable, "PostgreSQL 15 is not installed"))
struct HAStoreFullTests {
    /// A tmpfs of `megabytes` mounted on a fresh directory, owned by `owner` (mode 0700).
    final class SmallFilesystem: Sendable {
        let parent: URL
        let path: String

        init(megabytes: Int, owner: String) throws {
            guard let entry = getpwnam(owner) else { throw TestSupportError("no system user \(owner)") }
            let uid = entry.pointee.pw_uid
            let gid = entry.pointee.pw_gid
            parent = try TestSupport.makeTemporaryDirectory(prefix: "small-fs")
            chmod(parent.path, 0o755)
            path = parent.appendingPathComponent("space").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            guard mount("tmpfs", path, "tmpfs", 0, "size=\(megabytes)m,uid=\(uid),gid=\(gid),mode=0700") == 0 else {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(at: parent)
                throw TestSupportError("cannot mount a tmpfs on \(path) (\(reason)); this test needs CAP_SYS_ADMIN (root)")
            }
        }

        var filler: String { path + "/filler" }

        /// Writes a file until the filesystem says it is full; returns its size.
        func fill() throws -> Int {
            let fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            guard fd >= 0 else { throw TestSupportError("cannot create \(filler): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let chunk = [UInt8](repeating: 0x5a, count: 64 * 1024)
            var total = 0
            while true {
                let written = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if written > 0 {
                    total += written
                    continue
                }
                if errno == ENOSPC { return total }
                throw TestSupportError("writing \(filler) failed: \(String(cString: strerror(errno)))")
            }
        }

        /// Gives the space back.
        func free() { unlink(filler) }

        /// Unmounts (lazily, so a straggling file handle cannot keep it) and removes the directory.
        func remove() {
            umount2(path, Int32(MNT_DETACH))
            try? FileManager.default.removeItem(at: parent)
        }
    }

    @Test func aFullStore() async throws {
        let space = try SmallFilesystem(megabytes: 48, owner: "postgres")
        defer { space.remove() }
        try await PostgresBackendServer.with { server in
            let database = "teleport_full"
            try await server.postgres.superuser("CREATE TABLESPACE full_disk LOCATION '\(space.path)'")
            try await server.postgres.superuser("CREATE DATABASE \(database) OWNER \(PostgresBackendServer.user) TABLESPACE full_disk")
            func sql(_ query: String) async throws -> String {
                let result = try await TestSupport.run(
                    DatabaseServers.psql,
                    ["-h", server.postgres.directory.path, "-p", String(server.port), "-U", "postgres", "-d", database, "-tAc", query])
                try #require(result.exitCode == 0, "\(result)")
                return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let storage = """
                  storage:
                    type: postgresql
                    conn_string: "\(server.connString(database: database))"
                """
            try await withCluster(try ClusterFixture(clusterName: "full.example", teleportSection: storage)) { cluster in
                try await cluster.start(["--roles=auth"])
                let before = try await cluster.tctl(["users", "add", "before", "root"])
                try #require(before.exitCode == 0, "\(before)")

                // The disk fills. Rows that fit in free space of existing pages may still be
                // written; the first write that needs a new page fails.
                let filled = try space.fill()
                print("HA store full: a filler of \(filled) bytes filled the tablespace's filesystem")
                var refused: (name: String, result: CommandResult)?
                var added: [String] = []
                for index in 0..<60 where refused == nil {
                    let name = "full\(index)"
                    let result = try await cluster.tctl(["users", "add", name, "root"])
                    if result.exitCode == 0 { added.append(name) } else { refused = (name, result) }
                }
                let (name, result) = try #require(refused, "60 users were added on a full disk")
                print("HA store full: after \(added.count) users added, a write failed: \(result.stderr)")
                // One line naming the cause and the fix.
                #expect(result.stderr.contains("out of disk space") && result.stderr.contains("free space"), "\(result)")
                #expect(result.stderr.split(separator: "\n").count <= 2, "\(result)")
                #expect(server.postgres.log.contains("could not extend file"), "\(server.postgres.log.suffix(2000))")
                // Nothing half-written: neither the user nor its signup token.
                let get = try await cluster.tctl(["get", "users/\(name)"])
                #expect(get.exitCode != 0, "\(get)")
                let rows = try await sql(
                    """
                    SELECT count(*) FROM teleport_items WHERE key = convert_to('/users/\(name)', 'UTF8')
                    OR (key >= '/usertokens/'::bytea AND key < '/usertokens0'::bytea AND position(convert_to('"\(name)"', 'UTF8') in value) > 0)
                    """)
                #expect(rows == "0", "rows of \(name) were written: \(rows)")

                // /readyz says not ready and why; /healthz stays 200.
                var readiness = try await cluster.diag("readyz")
                let degraded = try await HACluster.eventually(within: .seconds(30)) {
                    readiness = try await cluster.diag("readyz")
                    return readiness.status == 503 && readiness.body.contains("disk space")
                }
                #expect(degraded, "\(readiness)")
                #expect(try await cluster.diag("healthz").status == 200)
                // It stays so while the disk is full (the probe needs new space, not free room in a page).
                try await Task.sleep(for: .seconds(7))
                readiness = try await cluster.diag("readyz")
                #expect(readiness.status == 503 && readiness.body.contains("disk space"), "\(readiness)")

                // Space returns: ready again, the refused write succeeds, the earlier ones are intact.
                space.free()
                let back = try await HACluster.eventually(within: .seconds(30)) { try await cluster.diag("readyz").status == 200 }
                let final = try await cluster.diag("readyz")
                #expect(back, "\(final)")
                let again = try await cluster.tctl(["users", "add", name, "root"])
                #expect(again.exitCode == 0, "\(again)")
                let users = try await cluster.tctl(["get", "users", "--format", "json"])
                for expected in ["before", name] + added {
                    #expect(users.stdout.contains("\"\(expected)\""), "\(expected) is missing: \(users)")
                }
                #expect(cluster.log.contains("out of disk space") && cluster.log.contains("disk space again"), "\(cluster.log.suffix(3000))")
            }
            // The database and tablespace go before the filesystem is unmounted.
            _ = try? await server.postgres.superuser("DROP DATABASE IF EXISTS \(database) WITH (FORCE)")
            _ = try? await server.postgres.superuser("DROP TABLESPACE IF EXISTS full_disk")
        }
    }
}
