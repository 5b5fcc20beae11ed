import NIOCore
import Testing

@testable import TeleportSSHClient

/// The request size tsh's SFTP client takes from a server's `limits@openssh.com` reply.
@Suite("SFTP request size from the server's limits")
struct SFTPLimitsTests {
    static func reply(_ type: SFTPClient.PacketType, _ write: (inout ByteBuffer) -> Void) -> SFTPClient.Reply {
        var body = ByteBuffer()
        write(&body)
        return SFTPClient.Reply(type: type.rawValue, body: body)
    }

    static func limits(packet: UInt64, read: UInt64, write: UInt64) -> SFTPClient.Reply {
        reply(.extendedReply) {
            $0.writeInteger(packet)
            $0.writeInteger(read)
            $0.writeInteger(write)
            $0.writeInteger(UInt64(64))  // max-open-handles
        }
    }

    @Test("OpenSSH's sftp-server (255 KiB), smaller and larger limits, no limit, a small packet, malformed replies")
    func chunkSizes() {
        #expect(SFTPClient.chunk(fromLimits: Self.limits(packet: 262_144, read: 261_120, write: 261_120)) == 261_120)
        #expect(SFTPClient.chunk(fromLimits: Self.limits(packet: 262_144, read: 100_000, write: 65_536)) == 65_536)
        #expect(SFTPClient.chunk(fromLimits: Self.limits(packet: 1 << 30, read: 1 << 30, write: 1 << 30)) == SFTPClient.largestChunk)
        #expect(SFTPClient.chunk(fromLimits: Self.limits(packet: 0, read: 0, write: 0)) == SFTPClient.largestChunk)
        #expect(SFTPClient.chunk(fromLimits: Self.limits(packet: 262_144, read: 1_000, write: 1_000)) == SFTPClient.chunkSize)
        // A write must fit in one packet with its handle and offset.
        #expect(SFTPClient.chunk(fromLimits: Self.limits(packet: 65_536, read: 0, write: 0)) == 64_512)
        #expect(SFTPClient.chunk(fromLimits: Self.reply(.extendedReply) { $0.writeInteger(UInt64(1)) }) == nil)
        #expect(SFTPClient.chunk(fromLimits: Self.reply(.status) { $0.writeInteger(UInt32(8)) }) == nil)
    }

    @Test("a version reply's extension names")
    func versionExtensions() {
        let version = Self.reply(.version) {
            $0.writeInteger(UInt32(3))
            for (name, data) in [("posix-rename@openssh.com", "1"), ("limits@openssh.com", "1")] {
                $0.writeInteger(UInt32(name.utf8.count))
                $0.writeString(name)
                $0.writeInteger(UInt32(data.utf8.count))
                $0.writeString(data)
            }
        }
        #expect(SFTPClient.extensions(ofVersion: version) == ["posix-rename@openssh.com", "limits@openssh.com"])
        #expect(SFTPClient.extensions(ofVersion: Self.reply(.version) { $0.writeInteger(UInt32(3)) }).isEmpty)
    }
}
