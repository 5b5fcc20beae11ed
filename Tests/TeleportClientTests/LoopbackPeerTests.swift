import Testing
@testable import TeleportClient

@Suite("loopback peer uid from /proc/net/tcp")
struct LoopbackPeerTests {
    /// Three sockets: the listener on 0x1F90 (8080), the client's end 127.0.0.1:0xC350 (50000) →
    /// 8080 owned by uid 1000, and the server's accepted end owned by uid 0.
    static let table = """
          sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
           1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0000000000000000 20 4 30 10 -1
           2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
        """

    @Test(arguments: [
        (50000, 8080, UInt32?.some(1000)),
        (8080, 50000, UInt32?.some(0)),
        (50001, 8080, UInt32?.none),
        (50000, 8081, UInt32?.none),
    ])
    func findsTheClientsOwner(clientPort: Int, serverPort: Int, expected: UInt32?) {
        #expect(LoopbackPeer.uid(table: Self.table, clientPort: clientPort, serverPort: serverPort) == expected)
    }

    @Test func malformedLinesAreSkipped() {
        let table = "header\n  garbage\n 1: 0100007F:ZZZZ 0100007F:1F90 01 0 0 0 notanumber\n"
        #expect(LoopbackPeer.uid(table: table, clientPort: 50000, serverPort: 8080) == nil)
    }
}
