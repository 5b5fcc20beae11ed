import Crypto
import Foundation
import TeleportCrypto
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Drives the real OpenSSH `sshd` and `ssh` with keys and certificates made by this module.
@Suite("OpenSSH sshd interop", .serialized)
struct SSHServerInteropTests {
    static var canRunSSHD: Bool {
        TestSupport.hasOpenSSHClient && FileManager.default.isExecutableFile(atPath: TestSupport.sshd)
            && getuid() == 0
    }

    @Test(.enabled(if: canRunSSHD, "needs openssh-server, openssh-client and root"), .timeLimit(.minutes(2)))
    func sshdAcceptsOurCertificatesAndRefusesBadOnes() async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "sshd")
        defer { try? FileManager.default.removeItem(at: directory) }
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        func write(_ text: String, _ name: String) throws {
            try TestSupport.write(text, to: URL(fileURLWithPath: path(name)))
        }

        // sshd needs its privilege separation directory; a container often lacks it.
        try FileManager.default.createDirectory(
            atPath: "/run/sshd", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755]
        )

        // Keys: our user CA and host CA, a foreign CA, our user key; the host key from ssh-keygen,
        // certified by our host CA so that ssh can trust the host through @cert-authority.
        let userCA = Curve25519.Signing.PrivateKey()
        let hostCA = Curve25519.Signing.PrivateKey()
        let otherCA = Curve25519.Signing.PrivateKey()
        let userKey = OpenSSHPrivateKey(.ed25519(Curve25519.Signing.PrivateKey()), comment: "interop")
        try write(userKey.pemRepresentation(), "user")
        try write(
            SSHPublicKey.ed25519(userCA.publicKey).authorizedKeyLine(comment: "test-user-ca") + "\n", "user_ca.pub")
        try await TestSupport.runChecked(
            TestSupport.sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-f", path("host")])
        let hostKey = try SSHPublicKey(
            authorizedKeyLine: try TestSupport.read(URL(fileURLWithPath: path("host.pub"))))
        let now = Date()
        let hostCert = try SSHCertificate.sign(
            publicKey: hostKey, type: .host, serial: 2, keyID: "host", validPrincipals: ["127.0.0.1", "localhost"],
            validAfter: now.addingTimeInterval(-60), validBefore: now.addingTimeInterval(3600), caKey: hostCA
        )
        try write(hostCert.authorizedKeyLine() + "\n", "host-cert.pub")
        try write("@cert-authority * \(SSHPublicKey.ed25519(hostCA.publicKey).authorizedKeyLine())\n", "known_hosts")
        try write(
            "@cert-authority * \(SSHPublicKey.ed25519(otherCA.publicKey).authorizedKeyLine())\n", "other_known_hosts")

        let port = try TestSupport.freeLoopbackPort()
        try write(
            """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(path("host"))
            HostCertificate \(path("host-cert.pub"))
            TrustedUserCAKeys \(path("user_ca.pub"))
            AuthorizedKeysFile none
            AuthorizedPrincipalsFile none
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PubkeyAuthentication yes
            PermitRootLogin prohibit-password
            UsePAM no
            StrictModes no
            PidFile \(path("sshd.pid"))
            LogLevel VERBOSE

            """,
            "sshd_config"
        )
        let logURL = directory.appendingPathComponent("sshd.log")
        let sshd = try TestSupport.spawnDaemon(
            TestSupport.sshd, ["-D", "-e", "-f", path("sshd_config")], logPath: logURL.path
        )
        do {
            let listening = await TestSupport.waitForPort(port)
            try #require(listening, "sshd did not start: \((try? TestSupport.read(logURL)) ?? "")")

            func sign(
                principals: [String] = ["root"], after: TimeInterval = -60, before: TimeInterval = 3600,
                caKey: Curve25519.Signing.PrivateKey? = nil, options: [String: String] = [:]
            ) throws -> SSHCertificate {
                try SSHCertificate.sign(
                    publicKey: userKey.publicKey, type: .user, serial: 1, keyID: "interop", validPrincipals: principals,
                    validAfter: now.addingTimeInterval(after), validBefore: now.addingTimeInterval(before),
                    criticalOptions: options, extensions: SSHCertificate.standardUserExtensions, caKey: caKey ?? userCA
                )
            }
            func ssh(with cert: SSHCertificate, name: String, knownHosts: String? = nil) async throws -> CommandResult {
                try write(cert.authorizedKeyLine(comment: name) + "\n", "\(name)-cert.pub")
                let hostChecking =
                    if let knownHosts {
                        [
                            "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=\(path(knownHosts))",
                            "-o", "GlobalKnownHostsFile=/dev/null",
                        ]
                    } else {
                        ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
                    }
                return try await TestSupport.run(
                    TestSupport.ssh,
                    ["-F", "/dev/null"] + hostChecking + [
                        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                        "-o", "LogLevel=ERROR", "-i", path("user"), "-o", "CertificateFile=\(path("\(name)-cert.pub"))",
                        "-p", String(port), "root@127.0.0.1", "echo", "hello",
                    ]
                )
            }
            func sshdLog() -> String { (try? TestSupport.read(logURL)) ?? "" }

            let good = try await ssh(with: try sign(), name: "good")
            #expect(good.exitCode == 0, "\(good)\nsshd log:\n\(sshdLog())")
            #expect(good.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "hello")

            // The host is trusted through our host certificate, with strict host key checking.
            let hostTrusted = try await ssh(with: try sign(), name: "hostca", knownHosts: "known_hosts")
            #expect(hostTrusted.exitCode == 0, "\(hostTrusted)")
            #expect(hostTrusted.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "hello")
            let hostUntrusted = try await ssh(with: try sign(), name: "otherhostca", knownHosts: "other_known_hosts")
            #expect(hostUntrusted.exitCode != 0, "\(hostUntrusted)")
            #expect(hostUntrusted.stderr.contains("Host key verification failed"), "\(hostUntrusted)")

            // sshd enforces force-command from our certificate.
            let forced = try await ssh(with: try sign(options: ["force-command": "echo forced"]), name: "forced")
            #expect(forced.exitCode == 0, "\(forced)")
            #expect(forced.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "forced")

            let refused: [(String, SSHCertificate)] = [
                ("expired", try sign(after: -7200, before: -3600)),
                ("notyet", try sign(after: 3600, before: 7200)),
                ("noroot", try sign(principals: ["alice", "bob"])),
                ("otherca", try sign(caKey: otherCA)),
                ("wrongsource", try sign(options: ["source-address": "10.0.0.0/8"])),
            ]
            for (name, cert) in refused {
                let result = try await ssh(with: cert, name: name)
                #expect(result.exitCode != 0, "\(name) should be refused: \(result)")
                #expect(!result.stdout.contains("hello"), "\(name)")
                #expect(result.stderr.contains("Permission denied"), "\(name): \(result)")
            }

            let log = sshdLog()
            let caFingerprint = SSHPublicKey.ed25519(userCA.publicKey).fingerprintSHA256
            #expect(log.contains("Accepted publickey for root"), "\(log)")
            #expect(log.contains("ID interop (serial 1) CA ED25519 \(caFingerprint)"), "\(log)")
            #expect(log.contains("expired"), "\(log)")
            #expect(log.contains("not a listed principal") || log.contains("name is not a listed principal"), "\(log)")
        } catch {
            await TestSupport.stopDaemon(sshd)
            throw error
        }
        #expect(await TestSupport.stopDaemon(sshd), "sshd ignored SIGTERM")
    }
}
