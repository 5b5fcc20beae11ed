import Foundation
import Testing

@testable import TeleportCrypto

@Suite("Sec-WebSocket-Accept")
struct WebSocketAcceptTests {
    @Test("RFC 6455's example key gives its example answer; new keys are 16 random bytes")
    func rfcExample() {
        #expect(WebSocketAccept.value(for: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        let key = WebSocketAccept.newKey()
        #expect(Data(base64Encoded: key)?.count == 16)
        #expect(key != WebSocketAccept.newKey())
    }
}
