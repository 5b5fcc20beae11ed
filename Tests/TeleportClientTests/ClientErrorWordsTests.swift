import Foundation
import TeleportAPI
@testable import TeleportClient
import TeleportTestSupport
import Testing

@Suite("errors a user meets, in sentences")
struct ClientErrorWordsTests {
    /// Before: `the request to the proxy at ... failed: sslError([... SSLV3_ALERT_CERTIFICATE_EXPIRED ...])`.
    @Test func expiredIdentityFileNamesTheFileTheTimeAndTheFix() async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "identity")
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualClock(Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)))
        let key = try FakeCluster().clientKey(user: "joe", ttl: 600, clock: clock)
        let path = directory.appendingPathComponent("joe.pem").path
        try IdentityFile(key).write(path: path)
        let facts = try CertificateFacts(key: key) { "\($0)" }
        clock.advance(by: 3600)
        let context = ClientContext(
            environment: [:], store: ProfileStore(home: directory), prompter: CannedPrompter([]),
            transport: { _, _ in throw TeleportError.internalError("no network in this test") }, agent: nil, clock: clock,
            warn: { _ in }, localUser: "joe",
            userTransport: { _, _, _ in throw TeleportError.internalError("no network in this test") })
        let options = ClientOptions(proxy: "proxy.example.com:3080", identityFile: path)
        await #expect {
            _ = try await TSHCommands.list(options, labels: "", format: .text, verbose: false, context: context)
        } throws: { error in
            (error as? TeleportError)?.message
                == "the certificate in \(path) expired at \(RFC3339.format(facts.validBefore)): get a new one with "
                + "tctl auth sign --user=joe --out=\(path) on the auth server, or tsh login --out=\(path)"
        }
    }

    static let address = ProxyAddress(host: "proxy.example.com", port: 3080)

    @Test(arguments: [
        ("sslError([Error: 268436501 error:10000415:SSL routines:OPENSSL_internal:SSLV3_ALERT_CERTIFICATE_EXPIRED])", "because it expired"),
        ("sslError([Error: 268436502 error:10000416:SSL routines:OPENSSL_internal:SSLV3_ALERT_CERTIFICATE_REVOKED])", "revoked"),
        ("sslError([error:10000418:SSL routines:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA])", "does not trust your certificate"),
        ("handshakeFailed(sslError([error:1000009c:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER]))", "does not answer TLS"),
        ("sslError([error:1000009c:SSL routines:OPENSSL_internal:HTTP_REQUEST])", "does not answer TLS"),
        ("handshakeFailed(sslError([error:10000410:SSL routines:OPENSSL_internal:SSLV3_ALERT_HANDSHAKE_FAILURE]))", "ended the TLS handshake"),
        ("uncleanShutdown", "closed the TLS connection abruptly"),
    ])
    func tlsFailuresBecomeSentences(raw: String, expected: String) throws {
        let sentence = try #require(ProxyHTTPSClient.tlsSentence(raw, address: Self.address))
        #expect(sentence.message.contains(expected), "\(sentence.message)")
        #expect(!sentence.message.contains("OPENSSL") && !sentence.message.contains("sslError"))
    }

    @Test func unknownTextIsLeftAlone() {
        #expect(ProxyHTTPSClient.tlsSentence("something else", address: Self.address) == nil)
    }
}
