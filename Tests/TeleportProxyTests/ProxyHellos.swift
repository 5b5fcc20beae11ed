/// A ClientHello captured from `openssl s_client -servername proxy.example.com -alpn
/// teleport-auth,http/1.1` (OpenSSL 3.0), the same bytes as TeleportWireTests' fixture.
enum ProxyHellos {
    static let alpnAndSNI = hex(
        "160301015b01000157030369f3b78d7e495f4e27136f0085c8fd7d118f10145e1dfe679179b27f5141486620b4c593954881"
            + "20323d5136fd5a688d5aa9e2b844c059cb5663fe15a708ff509d003e130213031301c02cc030009fcca9cca8ccaac02bc02f"
            + "009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000d0000000160014"
            + "00001170726f78792e6578616d706c652e636f6d000b000403000102000a00160014001d0017001e00190018010001010102"
            + "01030104002300000010001900170d74656c65706f72742d6175746808687474702f312e310016000000170000000d002a00"
            + "28040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b00090803040303"
            + "03020301002d00020101003300260024001d002056cdff5fd0740c47d11074497eca844d0d2442f6c5ae82fad20312316411"
            + "c40f")

    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes
    }
}
