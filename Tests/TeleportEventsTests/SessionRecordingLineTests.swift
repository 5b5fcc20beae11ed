import Foundation
import Testing

@testable import TeleportEvents

@Suite("session recording: the output line without JSONEncoder")
struct SessionRecordingLineTests {
    /// Output that covers every byte, base64's `/` and `+`, padding of 0, 1 and 2, and sizes up to 64 KiB.
    static var outputs: [[UInt8]] {
        var generator = SystemRandomNumberGenerator()
        var samples: [[UInt8]] = [[], [0x78], [0xFF, 0xFF, 0xFF], [0xFB, 0xEF], [0x0D, 0x0A], Array(0...255), Array("héllo\u{1b}[0m/\\\"".utf8)]
        for size in [1, 2, 3, 4, 57, 1000, 65_536] {
            samples.append((0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) })
        }
        return samples
    }

    @Test("outputLine gives JSONEncoder's bytes for Frame(ms:output:), and parses back")
    func sameBytesAsTheEncoder() throws {
        for output in Self.outputs {
            for ms in [0, 7, 1234, 86_400_000, Int.max] {
                let fast = output.withUnsafeBytes { SessionRecording.outputLine(ms: ms, output: $0) }
                let encoded = try SessionRecording.line(SessionRecording.Frame(ms: ms, output: Data(output)))
                #expect(fast == encoded, "ms \(ms), \(output.count) bytes: \(String(decoding: fast.prefix(80), as: UTF8.self))")
                let frame = try JSONDecoder().decode(SessionRecording.Frame.self, from: fast.dropLast())
                #expect(frame.output == Data(output) && frame.ms == ms)
            }
        }
    }
}
