import Foundation
import TeleportAPI
import TeleportCrypto
import Testing

@Suite("SSH wire encoding")
struct SSHWireTests {
    @Test(arguments: [UInt32(0), 1, 0x1234_5678, .max])
    func uint32RoundTrip(value: UInt32) throws {
        var writer = SSHWireWriter()
        writer.writeUInt32(value)
        #expect(writer.bytes.count == 4)
        var reader = SSHWireReader(writer.bytes)
        #expect(try reader.readUInt32() == value)
        #expect(reader.isAtEnd)
    }

    @Test(arguments: [UInt64(0), 1, 0x0102_0304_0506_0708, .max])
    func uint64RoundTrip(value: UInt64) throws {
        var writer = SSHWireWriter()
        writer.writeUInt64(value)
        #expect(writer.bytes.count == 8)
        var reader = SSHWireReader(writer.bytes)
        #expect(try reader.readUInt64() == value)
        #expect(reader.isAtEnd)
    }

    @Test(arguments: ["", "ssh-ed25519", "ünïcödé principal", String(repeating: "x", count: 5000)])
    func stringRoundTrip(value: String) throws {
        var writer = SSHWireWriter()
        writer.writeString(value)
        writer.writeUInt32(7)
        #expect(writer.bytes.count == 4 + value.utf8.count + 4)
        var reader = SSHWireReader(writer.bytes)
        #expect(try reader.readUTF8String() == value)
        #expect(try reader.readUInt32() == 7)
        try reader.expectEnd("test")
    }

    /// The examples of RFC 4251 section 5 (the non-negative ones).
    @Test(arguments: [
        ([UInt8](), [UInt8]([0, 0, 0, 0])),
        (
            [0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7],
            [0, 0, 0, 8, 0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]
        ),
        ([0x80], [0, 0, 0, 2, 0x00, 0x80]),
        ([0x00, 0x00, 0x7f], [0, 0, 0, 1, 0x7f]),
    ])
    func mpintMatchesRFC4251(magnitude: [UInt8], encoded: [UInt8]) throws {
        var writer = SSHWireWriter()
        writer.writeUnsignedMPInt(magnitude)
        #expect(writer.bytes == encoded)
        var reader = SSHWireReader(encoded)
        #expect(try reader.readUnsignedMPInt() == Array(magnitude.drop { $0 == 0 }))
    }

    @Test(arguments: [
        [UInt8]([0, 0, 0, 1, 0x80]),  // negative
        [0, 0, 0, 2, 0x00, 0x7f],  // needless leading zero
        [0, 0, 0, 1, 0x00],  // zero written as one byte
    ])
    func mpintRejectsNegativeAndNonMinimal(encoded: [UInt8]) {
        var reader = SSHWireReader(encoded)
        #expect(throws: TeleportError.badParameter("")) { try reader.readUnsignedMPInt() }
    }

    enum Read: String, CaseIterable, Sendable {
        case byte, uint32, uint64, string, utf8, mpint, raw4
    }

    @Test(arguments: Read.allCases, [[UInt8](), [0], [0, 0, 0], [0, 0, 0, 5, 1, 2, 3, 4]])
    func truncatedInputThrowsBadParameter(read: Read, input: [UInt8]) {
        var reader = SSHWireReader(input)
        let needed: Int =
            switch read {
            case .byte: 1
            case .uint32: 4
            case .uint64: 8
            case .string, .utf8, .mpint: input.count >= 4 ? 4 + 5 : 4
            case .raw4: 4
            }
        guard input.count < needed else { return }
        #expect(throws: TeleportError.badParameter("")) {
            switch read {
            case .byte: _ = try reader.readByte()
            case .uint32: _ = try reader.readUInt32()
            case .uint64: _ = try reader.readUInt64()
            case .string: _ = try reader.readString()
            case .utf8: _ = try reader.readUTF8String()
            case .mpint: _ = try reader.readUnsignedMPInt()
            case .raw4: _ = try reader.readRaw(count: 4)
            }
        }
    }

    @Test func absurdLengthIsRejectedWithoutAllocating() throws {
        var huge = SSHWireReader([0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        let error = try #require(throws: TeleportError.self) { try huge.readString() }
        #expect(error.code == .badParameter)
        #expect(error.message.contains("exceeds the limit"))

        var writer = SSHWireWriter()
        writer.writeString([UInt8](repeating: 1, count: 100))
        var limited = SSHWireReader(writer.bytes, maximumStringLength: 99)
        #expect(throws: TeleportError.badParameter("")) { try limited.readString() }
        var enough = SSHWireReader(writer.bytes, maximumStringLength: 100)
        #expect(try enough.readString().count == 100)
    }

    @Test func invalidUTF8IsRejected() {
        var reader = SSHWireReader([0, 0, 0, 2, 0xc3, 0x28])
        #expect(throws: TeleportError.badParameter("")) { try reader.readUTF8String() }
    }

    @Test func trailingBytesAreReported() throws {
        var reader = SSHWireReader([0, 0, 0, 1, 9])
        _ = try reader.readUInt32()
        #expect(reader.remainingCount == 1)
        #expect(throws: TeleportError.badParameter("")) { try reader.expectEnd("thing") }
        #expect(throws: TeleportError.badParameter("")) { try reader.readRaw(count: -1) }
    }
}
