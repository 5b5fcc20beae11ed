import Crypto
import Foundation
import TeleportAPI
import TeleportCrypto
import TeleportTestSupport
import Testing

/// `tctl auth export --type=user` works as `TrustedUserCAKeys` for a real OpenSSH sshd: a
/// certificate signed by the cluster's user CA logs in; one signed by the host CA does not.
@Suite("user CA with OpenSSH sshd", .serialized)
struct UserCAInteropTests {
    @Test(.enabled(if: SSHDFixture.available, "needs root, openssh-server and openssh-client"), .timeLimit(.minutes(3)))
    func exportedUserCAIsTrustedBySSHD() async throws {
        try await withCluster(try ClusterFixture(clusterName: "sshd.example")) { cluster in
            try await cluster.start()
            let exported = try await cluster.tctl(["auth", "export", "--type=user"])
            #expect(exported.exitCode == 0, "\(exported)")
            let sshd = try await SSHDFixture(trustedUserCAKeys: exported.stdout)
            do {
                // The CA's private key, as a backup would read it (admin only).
                func caKey(_ type: String) async throws -> Curve25519.Signing.PrivateKey {
                    let result = try await cluster.tctl(["get", "cert_authority/\(type)", "--with-secrets", "--format", "yaml"])
                    let ca = try ResourceCodec.decodeDocuments(result.stdout, source: "tctl")
                    guard case .certAuthority(let authority)? = ca.first, let pem = authority.spec.activeKeys.ssh.first?.privateKey,
                        case .ed25519(let key) = try OpenSSHPrivateKey(pemRepresentation: pem).key
                    else { throw TestSupportError("no Ed25519 key in cert_authority/\(type)") }
                    return key
                }
                let userKey = OpenSSHPrivateKey(.ed25519(Curve25519.Signing.PrivateKey()), comment: "joe")
                let keyPath = sshd.directory.appendingPathComponent("joe").path
                try TestSupport.write(userKey.pemRepresentation(), to: URL(fileURLWithPath: keyPath))
                func login(signedBy ca: Curve25519.Signing.PrivateKey, name: String) async throws -> CommandResult {
                    let now = Date()
                    let certificate = try SSHCertificate.sign(
                        publicKey: userKey.publicKey, type: .user, keyID: "joe", validPrincipals: ["root"],
                        validAfter: now.addingTimeInterval(-60), validBefore: now.addingTimeInterval(600),
                        extensions: SSHCertificate.standardUserExtensions, caKey: ca)
                    let certPath = sshd.directory.appendingPathComponent("\(name)-cert.pub").path
                    try TestSupport.write(certificate.authorizedKeyLine() + "\n", to: URL(fileURLWithPath: certPath))
                    return try await sshd.ssh(key: keyPath, certificate: certPath, login: "root", command: "echo hello")
                }
                let accepted = try await login(signedBy: try await caKey("user"), name: "user")
                #expect(accepted.exitCode == 0, "\(accepted)\n\(sshd.log)")
                #expect(accepted.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "hello")
                let refused = try await login(signedBy: try await caKey("host"), name: "host")
                #expect(refused.exitCode != 0)
                #expect(refused.stderr.contains("Permission denied"), "\(refused)")
            } catch {
                await sshd.stop()
                throw error
            }
            await sshd.stop()
            await cluster.stop()
        }
    }
}

/// `tctl auth sign --user --format=openssh` gives a key and certificate that a real sshd trusting
/// the exported user CA accepts for the user's logins only, and only until it expires.
@Suite("tctl auth sign with OpenSSH sshd", .serialized)
struct AuthSignInteropTests {
    @Test(.enabled(if: SSHDFixture.available, "needs root, openssh-server and openssh-client"), .timeLimit(.minutes(3)))
    func signedUserCertificateWorksWithSSHD() async throws {
        try await withCluster(try ClusterFixture(clusterName: "sign.example")) { cluster in
            try await cluster.start()
            let added = try await cluster.tctl(["users", "add", "joe", "joe,root"])
            #expect(added.exitCode == 0, "\(added)")
            #expect(added.stdout.contains("/web/newuser/"), "\(added)")
            let exported = try await cluster.tctl(["auth", "export", "--type=user"])
            let sshd = try await SSHDFixture(trustedUserCAKeys: exported.stdout)
            do {
                let out = sshd.directory.appendingPathComponent("joe").path
                let signed = try await cluster.tctl(["auth", "sign", "--user=joe", "--out=\(out)", "--format=openssh", "--ttl=1h"])
                #expect(signed.exitCode == 0, "\(signed)")
                let mode = try FileManager.default.attributesOfItem(atPath: out)[.posixPermissions] as? Int
                #expect(mode == 0o600)
                let listing = try await TestSupport.run(TestSupport.sshKeygen, ["-L", "-f", out + "-cert.pub"])
                #expect(listing.stdout.contains("Key ID: \"joe\""), "\(listing)")
                #expect(listing.stdout.contains("user certificate"))

                let asRoot = try await sshd.ssh(key: out, certificate: out + "-cert.pub", login: "root", command: "echo hello")
                #expect(asRoot.exitCode == 0, "\(asRoot)\n\(sshd.log)")
                #expect(asRoot.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "hello")
                let asNobody = try await sshd.ssh(key: out, certificate: out + "-cert.pub", login: "nobody", command: "echo hello")
                #expect(asNobody.exitCode != 0, "a login not in the principals is refused")

                let short = sshd.directory.appendingPathComponent("short").path
                #expect(try await cluster.tctl(["auth", "sign", "--user=joe", "--out=\(short)", "--format=openssh", "--ttl=2s"]).exitCode == 0)
                try await Task.sleep(for: .seconds(3))
                let expired = try await sshd.ssh(key: short, certificate: short + "-cert.pub", login: "root", command: "echo hello")
                #expect(expired.exitCode != 0, "an expired certificate is refused")
                #expect(expired.stderr.contains("Permission denied"), "\(expired)")

                let unknown = try await cluster.tctl(["auth", "sign", "--user=nobody", "--out=\(short)2"])
                #expect(unknown.exitCode != 0)
                #expect(unknown.stderr.contains("user \"nobody\" is not found"), "\(unknown)")
            } catch {
                await sshd.stop()
                throw error
            }
            await sshd.stop()
            await cluster.stop()
        }
    }

    @Test(.enabled(if: SSHDFixture.available, "needs root, openssh-server and openssh-client"), .timeLimit(.minutes(3)))
    func hostCertificateForOpenSSHIsSignedByTheHostCA() async throws {
        try await withCluster(try ClusterFixture(clusterName: "hostsign.example")) { cluster in
            try await cluster.start()
            let out = cluster.directory.appendingPathComponent("sshhost").path
            let signed = try await cluster.tctl(["auth", "sign", "--host=node1.hostsign.example,127.0.0.1", "--out=\(out)", "--format=openssh"])
            #expect(signed.exitCode == 0, "\(signed)")
            let listing = try await TestSupport.run(TestSupport.sshKeygen, ["-L", "-f", out + "-cert.pub"])
            #expect(listing.stdout.contains("host certificate"), "\(listing)")
            #expect(listing.stdout.contains("node1.hostsign.example"))
            #expect(listing.stdout.contains("127.0.0.1"))
            let hostCA = try await cluster.tctl(["auth", "export", "--type=host"])
            let caKey = try #require(hostCA.stdout.split(separator: " ").dropFirst(2).prefix(2).joined(separator: " ") as String?)
            let caFile = cluster.directory.appendingPathComponent("ca.pub")
            try TestSupport.write(caKey + "\n", to: caFile)
            let caFingerprint = try await TestSupport.run(TestSupport.sshKeygen, ["-l", "-f", caFile.path])
            let fingerprint = try #require(caFingerprint.stdout.split(separator: " ").dropFirst().first.map(String.init))
            #expect(listing.stdout.contains("Signing CA: ED25519 \(fingerprint)"), "\(listing)")
            await cluster.stop()
        }
    }
}
