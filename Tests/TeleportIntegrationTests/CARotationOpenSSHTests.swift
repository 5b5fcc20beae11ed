import Foundation
import TeleportTestSupport
import Testing

/// CA rotation with an OpenSSH `sshd` node (the real sshd and ssh): the node trusts the user CA
/// through `TrustedUserCAKeys` (from `tctl auth export --type=user`) and presents a host
/// certificate from `tctl auth sign --host --format=openssh`; the client trusts the host CA through
/// a `@cert-authority` line of `tctl auth export --type=host`. Nothing follows a rotation on its
/// own there, so `tctl auth rotate` says what to re-export or sign again, and doing what it says
/// keeps OpenSSH logins working: a certificate of the new user CA is refused until the user CA is
/// re-exported, a host certificate of the new host CA is refused by a `known_hosts` exported before
/// `init`, and after `standby` the re-exported files trust only the new CA.
@Suite("CA rotation with OpenSSH sshd", .serialized)
struct CARotationOpenSSHTests {
    /// `ssh` to `sshd` with user key `name` (`name-cert.pub`), checking the host against `knownHosts`.
    static func login(_ sshd: SSHDFixture, work: URL, user name: String, knownHosts: URL, alias: String) async throws -> CommandResult {
        let key = work.appendingPathComponent(name).path
        return try await TestSupport.run(
            TestSupport.ssh,
            [
                "-F", "/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=\(knownHosts.path)", "-o",
                "GlobalKnownHostsFile=/dev/null", "-o", "HostKeyAlias=\(alias)", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o",
                "ConnectTimeout=10", "-o", "LogLevel=ERROR", "-i", key, "-o", "CertificateFile=\(key)-cert.pub", "-p", String(sshd.port),
                "root@127.0.0.1", "echo hello",
            ])
    }

    @Test(.enabled(if: SSHDFixture.available, "needs root, openssh-server and openssh-client"), .timeLimit(.minutes(4)))
    func reExportAndReSignAsTCTLSays() async throws {
        try await withCluster(try ClusterFixture(clusterName: "rotate-sshd.example")) { cluster in
            try await cluster.start()
            let work = try TestSupport.makeTemporaryDirectory(prefix: "rotate-sshd")
            defer { try? FileManager.default.removeItem(at: work) }
            let added = try await cluster.tctl(["users", "add", "joe", "root"])
            try #require(added.exitCode == 0, "\(added)")
            let alias = "legacy.\(cluster.clusterName)"

            func tctl(_ arguments: [String]) async throws -> CommandResult {
                let result = try await cluster.tctl(arguments)
                try #require(result.exitCode == 0, "tctl \(arguments.joined(separator: " ")): \(result)")
                return result
            }
            func export(_ type: String, to name: String) async throws -> (URL, Int) {
                let exported = try await tctl(["auth", "export", "--type=\(type)"])
                let file = work.appendingPathComponent(name)
                try TestSupport.write(exported.stdout, to: file)
                return (file, exported.stdout.split(separator: "\n").count)
            }
            func signUser(_ name: String) async throws {
                _ = try await tctl(["auth", "sign", "--user=joe", "--format=openssh", "--ttl=1h", "--out=\(work.appendingPathComponent(name).path)"])
            }
            func signHost(_ name: String) async throws -> String {
                let path = work.appendingPathComponent(name).path
                _ = try await tctl(["auth", "sign", "--host=\(alias),legacy,127.0.0.1", "--format=openssh", "--out=\(path)"])
                return path
            }
            func rotate(_ type: String, _ phase: String) async throws -> String {
                // The cluster's own node and tctl's identity look every 2 s; an administrator moves
                // phases minutes apart.
                try await Task.sleep(for: .seconds(3))
                return try await tctl(["auth", "rotate", "--manual", "--type=\(type)", "--phase=\(phase)"]).stdout
            }

            // Before: sshd trusts the exported user CA and presents a host certificate; the client
            // trusts the exported host CA.
            let (userCA, userLines) = try await export("user", to: "user_ca.pub")
            #expect(userLines == 1)
            let (knownHostsBefore, hostLines) = try await export("host", to: "known_hosts.before")
            #expect(hostLines == 1)
            let firstHostKey = try await signHost("host-before")
            try await signUser("joe-before")
            let sshd = try await SSHDFixture(trustedUserCAKeys: try TestSupport.read(userCA), hostKey: firstHostKey)
            var secondSSHD: SSHDFixture?
            do {
                /// Gives sshd (and the second one, once started) the user CA keys of `file`.
                func trust(_ file: URL) throws {
                    let text = try TestSupport.read(file)
                    for server in [sshd] + (secondSSHD.map { [$0] } ?? []) {
                        try TestSupport.write(text, to: server.directory.appendingPathComponent("user_ca.pub"))
                    }
                }
                let before = try await Self.login(sshd, work: work, user: "joe-before", knownHosts: knownHostsBefore, alias: alias)
                #expect(before.exitCode == 0 && before.stdout == "hello\n", "\(before)\n\(sshd.log)")

                // The user CA. init: tctl says to re-export it for TrustedUserCAKeys.
                let initUser = try await rotate("user", "init")
                #expect(initUser.contains("OpenSSH nodes: re-export the user CA for TrustedUserCAKeys (tctl auth export --type=user"), "\(initUser)")
                let (userDuring, duringLines) = try await export("user", to: "user_ca.during")
                #expect(duringLines == 2, "during a rotation the export holds the old and the new key")
                _ = try await rotate("user", "update_clients")
                try await signUser("joe-new")
                // Not re-exported yet: sshd refuses a certificate of the new user CA.
                let stale = try await Self.login(sshd, work: work, user: "joe-new", knownHosts: knownHostsBefore, alias: alias)
                #expect(stale.exitCode != 0 && stale.stderr.contains("Permission denied"), "\(stale)")
                // Re-exported (as in init): both the new and the old certificate log in.
                try trust(userDuring)
                for name in ["joe-new", "joe-before"] {
                    let result = try await Self.login(sshd, work: work, user: name, knownHosts: knownHostsBefore, alias: alias)
                    #expect(result.exitCode == 0 && result.stdout == "hello\n", "\(name): \(result)\n\(sshd.log)")
                }
                _ = try await rotate("user", "update_servers")
                let standbyUser = try await rotate("user", "standby")
                #expect(standbyUser.contains("re-export the user CA for TrustedUserCAKeys"), "\(standbyUser)")
                let (userAfter, afterLines) = try await export("user", to: "user_ca.after")
                #expect(afterLines == 1)
                try trust(userAfter)
                let newUser = try await Self.login(sshd, work: work, user: "joe-new", knownHosts: knownHostsBefore, alias: alias)
                #expect(newUser.exitCode == 0 && newUser.stdout == "hello\n", "\(newUser)\n\(sshd.log)")
                let oldUser = try await Self.login(sshd, work: work, user: "joe-before", knownHosts: knownHostsBefore, alias: alias)
                #expect(oldUser.exitCode != 0 && oldUser.stderr.contains("Permission denied"), "the old user CA is still trusted: \(oldUser)")

                // The host CA. init: re-export known_hosts now, sign the hosts again in update_servers.
                let initHost = try await rotate("host", "init")
                #expect(initHost.contains("OpenSSH clients: re-export the host CA for known_hosts (tctl auth export --type=host"), "\(initHost)")
                #expect(initHost.contains("OpenSSH nodes: sign their host keys again once the rotation reaches update_servers"), "\(initHost)")
                let (knownHostsDuring, knownDuringLines) = try await export("host", to: "known_hosts.during")
                #expect(knownDuringLines == 2)
                _ = try await rotate("host", "update_clients")
                let updateServers = try await rotate("host", "update_servers")
                #expect(updateServers.contains("tctl auth sign --host="), "\(updateServers)")
                // A second sshd with a host certificate of the new host CA (sshd reads it at start).
                let secondHostKey = try await signHost("host-new")
                let second = try await SSHDFixture(trustedUserCAKeys: try TestSupport.read(userAfter), hostKey: secondHostKey)
                secondSSHD = second
                // known_hosts from before init does not know the new host CA; the one from init does,
                // and still accepts the old host certificate.
                let unknown = try await Self.login(second, work: work, user: "joe-new", knownHosts: knownHostsBefore, alias: alias)
                #expect(unknown.exitCode != 0 && unknown.stderr.contains("Host key verification failed"), "\(unknown)")
                for (server, name) in [(second, "new"), (sshd, "old")] {
                    let result = try await Self.login(server, work: work, user: "joe-new", knownHosts: knownHostsDuring, alias: alias)
                    #expect(result.exitCode == 0 && result.stdout == "hello\n", "\(name) host certificate: \(result)\n\(server.log)")
                }
                let standbyHost = try await rotate("host", "standby")
                #expect(standbyHost.contains("re-export the host CA for known_hosts"), "\(standbyHost)")
                let (knownHostsAfter, knownAfterLines) = try await export("host", to: "known_hosts.after")
                #expect(knownAfterLines == 1)
                let signedAgain = try await Self.login(second, work: work, user: "joe-new", knownHosts: knownHostsAfter, alias: alias)
                #expect(signedAgain.exitCode == 0 && signedAgain.stdout == "hello\n", "\(signedAgain)\n\(second.log)")
                let notSignedAgain = try await Self.login(sshd, work: work, user: "joe-new", knownHosts: knownHostsAfter, alias: alias)
                #expect(
                    notSignedAgain.exitCode != 0 && notSignedAgain.stderr.contains("Host key verification failed"),
                    "a host certificate of the old host CA is still accepted: \(notSignedAgain)")
            } catch {
                await sshd.stop()
                await secondSSHD?.stop()
                throw error
            }
            await sshd.stop()
            await secondSSHD?.stop()
        }
    }
}
