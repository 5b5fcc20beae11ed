import TeleportAPI
import TeleportCrypto
import Testing

@Suite("CIDR matching for source-address")
struct SSHCIDRBlockTests {
    @Test(arguments: [
        ("10.0.0.0/8", "10.0.0.1", true),
        ("10.0.0.0/8", "10.255.255.255", true),
        ("10.0.0.0/8", "11.0.0.0", false),
        ("10.0.0.0/8", "9.255.255.255", false),
        ("192.168.1.0/24", "192.168.1.77", true),
        ("192.168.1.0/24", "192.168.2.1", false),
        ("192.168.1.128/25", "192.168.1.127", false),
        ("192.168.1.128/25", "192.168.1.128", true),
        ("172.16.0.0/12", "172.31.255.1", true),
        ("172.16.0.0/12", "172.32.0.1", false),
        ("127.0.0.1", "127.0.0.1", true),
        ("127.0.0.1", "127.0.0.2", false),
        ("127.0.0.1/32", "127.0.0.1", true),
        ("0.0.0.0/0", "203.0.113.5", true),
        ("0.0.0.0/0", "::1", false),
        ("10.0.0.0/8", "::ffff:10.1.2.3", true),  // IPv4-mapped client, as sshd normalises it
        ("10.0.0.0/8", "::ffff:11.1.2.3", false),
        ("::1", "::1", true),
        ("::1/128", "0:0:0:0:0:0:0:1", true),
        ("::1", "127.0.0.1", false),
        ("::/0", "2001:db8::1", true),
        ("::/0", "10.0.0.1", false),
        ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:0db8:0000::", true),
        ("2001:db8::/32", "2001:db9::", false),
        ("2001:db8:0:0:8000::/65", "2001:db8::8000:0:0:1", true),
        ("2001:db8:0:0:8000::/65", "2001:db8::7fff:0:0:1", false),
        ("fe80::/10", "febf:1::1", true),
        ("fe80::/10", "fec0::1", false),
        ("::ffff:0:0/96", "::ffff:1.2.3.4", false),  // the client is matched as IPv4 1.2.3.4
        ("64:ff9b::/96", "64:ff9b::192.0.2.33", true),
        ("10.0.0.0/8", "10.0.0.1%eth0", false),
        ("10.0.0.0/8", "garbage", false),
        ("10.0.0.0/8", "", false),
    ])
    func matching(block: String, address: String, expected: Bool) throws {
        let cidr = try SSHCIDRBlock(block)
        #expect(cidr.contains(address) == expected)
    }

    @Test(arguments: [
        "", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/08", "10.0.0.1/8", "10.0.0/8",
        "10.0.0.0.0", "256.0.0.0", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4", "1.2.3.a", "::/129", "2001:db8::1/32",
        ":::", "1:2:3:4:5:6:7:8:9", "1::2::3", "1:2:3:4:5:6:7::8", "12345::", "g::", "::1%lo", "[::1]",
        "example.com", "1.2.3.4/32/1", "::ffff:1.2.3", "1.2.3.4::", "١٢٣.0.0.0",
    ])
    func invalidBlocksAreRejected(text: String) {
        #expect(throws: TeleportError.badParameter("")) { try SSHCIDRBlock(text) }
    }

    @Test(arguments: [
        ("1.2.3.4", [UInt8]([1, 2, 3, 4])),
        ("::", [UInt8](repeating: 0, count: 16)),
        ("::1", [UInt8](repeating: 0, count: 15) + [1]),
        ("1::", [0, 1] + [UInt8](repeating: 0, count: 14)),
        ("1:2:3:4:5:6:7:8", [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]),
        ("1:2:3:4:5:6::8", [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 0, 0, 8]),
        ("::ffff:192.0.2.1", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]),
        ("1:2:3:4:5:6:1.2.3.4", [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4]),
        ("ABCD:ef01::", [0xab, 0xcd, 0xef, 0x01] + [UInt8](repeating: 0, count: 12)),
    ])
    func addressParsing(text: String, bytes: [UInt8]) {
        #expect(SSHCIDRBlock.parseAddress(text) == bytes)
    }

    @Test func description() throws {
        #expect(try SSHCIDRBlock("10.0.0.0/8").description == "10.0.0.0/8")
        #expect(try SSHCIDRBlock("127.0.0.1").description == "127.0.0.1/32")
        #expect(try SSHCIDRBlock("2001:db8::/32").prefixLength == 32)
    }
}
