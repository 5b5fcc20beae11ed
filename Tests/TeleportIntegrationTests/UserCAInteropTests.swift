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
