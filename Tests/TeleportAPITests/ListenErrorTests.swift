import Foundation
import TeleportAPI
import Testing

/// One wording for every listener's bind failure: the address, the cause, and the key to change.
@Suite("listen errors")
struct ListenErrorTests {
    struct Bind: Error {}

    @Test(arguments: [
        "auth_service.listen_addr", "proxy_service.web_listen_addr", "proxy_service.listen_addr", "ssh_service.listen_addr",
        "teleport.diag_addr or --diag-addr",
    ])
    func portInUseNamesTheKey(key: String) {
        let error = ListenError.describe(Bind(), errno: EADDRINUSE, address: "127.0.0.1:3022", key: key)
        #expect(error.code == .connectionProblem)
        #expect(error.message == "cannot listen on 127.0.0.1:3022: address already in use (is another teleport running? stop it or change \(key))")
    }

    @Test func otherCausesAreWordsNotCallNames() {
        let denied = ListenError.describe(Bind(), errno: EACCES, address: "0.0.0.0:22", key: "ssh_service.listen_addr")
        #expect(denied.message == "cannot listen on 0.0.0.0:22: permission denied (ports below 1024 need root; change ssh_service.listen_addr)")
        let elsewhere = ListenError.describe(Bind(), errno: EADDRNOTAVAIL, address: "10.9.9.9:3025", key: "auth_service.listen_addr")
        #expect(elsewhere.message.contains("the address is not on this host (change auth_service.listen_addr)"))
        let other = ListenError.describe(Bind(), errno: EMFILE, address: "127.0.0.1:3080", key: "proxy_service.web_listen_addr")
        #expect(!other.message.contains("bind("), "\(other.message)")
        #expect(other.message.hasSuffix("(change proxy_service.web_listen_addr)"))
    }
}
