import Foundation
import TeleportAPI
import TeleportAuthClient
import TeleportClient
import TeleportTestSupport
import Testing

/// The identity file format shared with `tctl auth sign --format=file`.
@Suite("identity files")
struct IdentityFileTests {
    @Test("text and parse round-trip, in the documented order")
    func roundTrip() throws {
        let key = try FakeCluster().clientKey()
        let file = IdentityFile(key)
        let text = file.text
        #expect(try IdentityFile(text: text) == file)
        #expect(try IdentityFile(text: text).clientKey == key)

        let markers = [
            "-----BEGIN OPENSSH PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----", "ssh-ed25519-cert-v01@openssh.com ",
            "-----BEGIN CERTIFICATE-----", "@cert-authority ",
        ]
        let positions = try markers.map { marker in try #require(text.range(of: marker), "\(marker) missing").lowerBound }
        #expect(positions == positions.sorted(), "the parts are in order")
        #expect(text.components(separatedBy: "-----BEGIN CERTIFICATE-----").count - 1 == 1 + key.caPEMs.count)
        #expect(text.hasSuffix("\n"))
    }

    @Test("the TLS identity is what tctl -i needs: the PKCS#8 key, the user's certificate, the CAs")
    func clientIdentity() throws {
        let key = try FakeCluster().clientKey()
        let identity = IdentityFile(key).clientIdentity
        #expect(identity.keyPEM == key.tlsKeyPEM)
        #expect(identity.certificatePEM == key.tlsCertificatePEM)
        #expect(identity.trustedCAPEMs == key.caPEMs)
    }

    @Test("write is 0600 and load reads it back; facts come from its certificates")
    func writeAndLoad() throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "identity")
        defer { try? FileManager.default.removeItem(at: directory) }
        let cluster = try FakeCluster()
        let key = try cluster.clientKey(logins: ["joe", "root"])
        let path = directory.appendingPathComponent("joe.pem").path
        try IdentityFile(key).write(path: path)
        #expect(try mode(URL(fileURLWithPath: path)) == 0o600)
        let loaded = try IdentityFile.load(path: path)
        #expect(loaded.clientKey == key)
        let facts = try CertificateFacts(key: loaded.clientKey) { "\($0)" }
        #expect(facts.logins == ["joe", "root"] && facts.clusterName == cluster.name)
    }

    @Test("CRLF line ends, blank lines and comments are accepted")
    func lenientWhitespace() throws {
        let file = IdentityFile(try FakeCluster().clientKey())
        let text = "# written by hand\n\n" + file.text.replacingOccurrences(of: "\n", with: "\r\n")
        #expect(try IdentityFile(text: text).clientKey == file.clientKey)
    }

    @Test("missing or extra parts are named in the error")
    func badFiles() throws {
        let file = IdentityFile(try FakeCluster().clientKey())
        let cases: [(String, String)] = [
            ("", "no OpenSSH private key"),
            (file.text.replacingOccurrences(of: file.sshCertificate, with: ""), "no SSH certificate line"),
            (file.sshKeyPEM + file.sshCertificate + "\n" + file.tlsCertificatePEM, "no TLS private key"),
            (file.sshKeyPEM + file.tlsKeyPEM + file.sshCertificate + "\n", "no X.509 certificate"),
            (file.sshKeyPEM + file.tlsKeyPEM + file.sshCertificate + "\n" + file.tlsCertificatePEM, "no CA certificates"),
            (file.text + "something else\n", "is not part of an identity file"),
            (file.text + file.sshKeyPEM, "two OpenSSH private keys"),
            (file.text + "-----BEGIN CERTIFICATE-----\nAAAA\n", "has no END line"),
            (file.text + "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n", "RSA PUBLIC KEY block"),
        ]
        for (text, expected) in cases {
            let error = try #require(throws: TeleportError.self) { try IdentityFile(text: text, source: "FILE") }
            #expect(error.message.hasPrefix("FILE"), "\(error.message)")
            #expect(error.message.contains(expected), "\(expected): \(error.message)")
        }
        let missing = try #require(throws: TeleportError.self) { try IdentityFile.load(path: "/nonexistent/identity") }
        #expect(missing.code == .notFound && missing.message.contains("/nonexistent/identity"))
    }
}
