import Crypto
import Foundation
import TeleportAPI
import TeleportClient
import TeleportCrypto
import TeleportTestSupport
import Testing

/// The SSH agent protocol against OpenSSH's own `ssh-agent`, checked with `ssh-add`.
@Suite("SSH agent client", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/ssh-agent")))
struct SSHAgentClientTests {
    @Test("add puts the key with its certificate in the agent: ssh-add -L lists the certificate; remove takes it out")
    func addListRemove() async throws {
        try await withAgent { agent in
            let key = try FakeCluster().clientKey(ttl: 600)
            let certificate = try key.parsedSSHCertificate()
            try agent.client.add(key: try key.sshPrivateKey(), certificate: certificate, comment: "teleport:joe")

            let listed = try await agent.sshAdd(["-L"])
            #expect(listed.exitCode == 0, "\(listed)")
            let certificateBlob = certificate.wireBytes.base64EncodedString()
            #expect(listed.stdout.contains("ssh-ed25519-cert-v01@openssh.com \(certificateBlob) teleport:joe"), "\(listed.stdout)")
            let fingerprints = try await agent.sshAdd(["-l"])
            #expect(fingerprints.stdout.contains("ED25519-CERT"), "\(fingerprints)")

            let identities = try agent.client.list()
            #expect(identities.contains { $0.blob == certificate.wireBytes && $0.comment == "teleport:joe" })

            #expect(try agent.client.remove(blob: certificate.wireBytes))
            let after = try await agent.sshAdd(["-L"])
            #expect(!after.stdout.contains(certificateBlob), "\(after)")
            #expect(try agent.client.remove(blob: certificate.wireBytes) == false, "removing twice reports it was not there")
        }
    }

    @Test("the agent signs with the added certificate: ssh-keygen -Y sign through the agent verifies against the user CA")
    func agentSigns() async throws {
        try await withAgent { agent in
            let directory = try TestSupport.makeTemporaryDirectory(prefix: "agent-sign")
            defer { try? FileManager.default.removeItem(at: directory) }
            let cluster = try FakeCluster()
            let key = try cluster.clientKey(logins: ["joe", "root"], ttl: 600)
            try agent.client.add(key: try key.sshPrivateKey(), certificate: try key.parsedSSHCertificate(), comment: "joe")
            // With only the certificate on disk, ssh-keygen must get the signature from the agent.
            let certificate = directory.appendingPathComponent("joe-cert.pub")
            try TestSupport.write(key.sshCertificate + "\n", to: certificate)
            let message = directory.appendingPathComponent("message")
            try TestSupport.write("hello\n", to: message)
            let signed = try await TestSupport.run(
                TestSupport.sshKeygen, ["-Y", "sign", "-n", "file", "-f", certificate.path, message.path],
                environment: ["SSH_AUTH_SOCK": agent.socketPath])
            #expect(signed.exitCode == 0, "\(signed)")
            let signers = directory.appendingPathComponent("allowed")
            try TestSupport.write("joe cert-authority \(SSHPublicKey.ed25519(cluster.sshCA.publicKey).authorizedKeyLine())\n", to: signers)
            let verified = try await TestSupport.run(
                "/bin/sh",
                ["-c", "\(TestSupport.sshKeygen) -Y verify -f \(signers.path) -I joe -n file -s \(message.path).sig < \(message.path)"])
            #expect(verified.exitCode == 0, "\(verified)")
        }
    }

    @Test("the agent forgets the key when the certificate expires (lifetime constraint)")
    func lifetime() async throws {
        try await withAgent { agent in
            // Ten seconds of life: enough to be added on a loaded machine (a 2 s certificate had
            // expired before the add when the whole suite ran at once).
            let key = try FakeCluster().clientKey(ttl: 10)
            let certificate = try key.parsedSSHCertificate()
            try agent.client.add(key: try key.sshPrivateKey(), certificate: certificate, comment: "short")
            #expect(try agent.client.list().contains { $0.blob == certificate.wireBytes })
            var listed = true
            for _ in 0..<80 where listed {
                try await Task.sleep(for: .milliseconds(500))
                listed = try agent.client.list().contains { $0.blob == certificate.wireBytes }
            }
            #expect(!listed, "the agent still holds the key 40 s after a 10 s certificate was added")
        }
    }

    @Test("an expired certificate or a key that does not match is refused before talking to the agent")
    func refusals() throws {
        let cluster = try FakeCluster()
        let key = try cluster.clientKey(ttl: 600)
        let other = try cluster.clientKey(ttl: 600)
        let agent = SSHAgentClient(socketPath: "/nonexistent/agent.sock")
        let mismatch = try #require(throws: TeleportError.self) {
            try agent.add(key: try key.sshPrivateKey(), certificate: try other.parsedSSHCertificate(), comment: "")
        }
        #expect(mismatch.code == .badParameter)
        let expired = try #require(throws: TeleportError.self) {
            try agent.add(key: try key.sshPrivateKey(), certificate: try key.parsedSSHCertificate(), comment: "", now: Date().addingTimeInterval(3600))
        }
        #expect(expired.message.contains("expired"))
        let unreachable = try #require(throws: TeleportError.self) {
            try agent.add(key: try key.sshPrivateKey(), certificate: try key.parsedSSHCertificate(), comment: "")
        }
        #expect(unreachable.code == .connectionProblem && unreachable.message.contains("/nonexistent/agent.sock"))
    }
}
