import Foundation
import Logging
import NIOCore
import TeleportAPI
import TeleportEvents
import TeleportNode
import TeleportRecording
import TeleportSSH
import Testing

/// Issue 12 ("Also"): a session that ended normally must be uploaded complete. The uploader's
/// start-up adoption of crash leftovers used to take a running session's `.recording` too, so it
/// was uploaded as partial and its real end was lost.
@Suite("session uploader: crash leftovers only")
struct SessionUploaderLeftoverTests {
    static func header(_ sid: String) -> SessionRecording.Header {
        .init(sid: sid, user: "joe", login: "root", serverID: "node-1", serverHostname: "db1", start: Date(), size: "80:24")
    }

    @Test("a running session's recording is not adopted as a leftover; it ends complete; a real leftover is adopted as partial")
    func runningSessionIsNotALeftover() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uploader-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let running = UUID().uuidString.lowercased()
        let recorder = try SessionRecorder(directory: directory, header: Self.header(running))
        recorder.output(ByteBuffer(string: "still running\r\n"))
        // A crash leftover: a recording file nobody writes any more.
        let crashed = UUID().uuidString.lowercased()
        try (try SessionRecording.line(Self.header(crashed)) + SessionRecording.line(SessionRecording.Frame(ms: 1, output: Data("cut".utf8))))
            .write(to: directory.appendingPathComponent("\(crashed).recording"))

        let adopted = SessionUploader.adoptLeftovers(in: directory, logger: Logger(label: "test"))
        #expect(adopted == [crashed])
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("\(running).recording").path))
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("\(running).done").path))

        recorder.output(ByteBuffer(string: "the end\r\n"))
        recorder.finish()
        let done = try Data(contentsOf: directory.appendingPathComponent("\(running).done"))
        let parsed = try SessionRecording.parse(done)
        #expect(parsed.complete, "the session ended normally: its recording is complete")
        #expect(String(decoding: parsed.output, as: UTF8.self) == "still running\r\nthe end\r\n")
        let leftover = try SessionRecording.parse(try Data(contentsOf: directory.appendingPathComponent("\(crashed).done")))
        #expect(!leftover.complete)
    }
}
