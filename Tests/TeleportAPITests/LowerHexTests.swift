import Foundation
import Testing
import TeleportAPI

@Suite("LowerHex")
struct LowerHexTests {
    @Test(arguments: [
        ([UInt8](), ""),
        ([0x00], "00"),
        ([0x0f, 0xf0], "0ff0"),
        ([0xde, 0xad, 0xbe, 0xef, 0x01, 0x9a], "deadbeef019a"),
    ])
    func encodes(bytes: [UInt8], expected: String) {
        #expect(LowerHex.string(bytes) == expected)
    }

    @Test func matchesFormatForEveryByte() {
        let all = (0...255).map { UInt8($0) }
        #expect(LowerHex.string(all) == all.map { String(format: "%02x", $0) }.joined())
    }
}
