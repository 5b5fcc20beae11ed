import Foundation
import Glibc
import NIOCore
import NIOPosix
import TeleportRecording
import Testing

@testable import TeleportNode
@testable import TeleportSSH

/// Issue 13 item 5 (the daemon's memory after 100 sessions): session processes are waited for on
/// one reaper thread, not a thread each, and the heap is trimmed once the last SSH connection closes.
@Suite("Session process reaper; idle heap trim", .serialized)
struct ProcessReaperTests {
    private static func threads() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
    }

    @Test("30 session processes waited for at once take one reaper thread, not 30; exits and signals come through")
    func oneThreadForManyProcesses() async throws {
        let user = try LoginUser.current()
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        // `cat` on pipes: it runs until its input closes, so all 30 are waited for at the same time.
        var processes: [SessionProcess] = []
        for _ in 0..<30 {
            processes.append(
                try SessionProcess.spawn(
                    argv: ["/bin/cat"], environment: [:], user: user, changeUser: false, terminal: nil))
        }
        let before = Self.threads()
        let exits = processes.map { $0.waitForExit(on: loop) }
        let during = Self.threads()
        // At least these 30 (dynamic-label commands of suites running meanwhile share the reaper).
        #expect(ProcessReaper.shared.count >= 30)
        // Before: one waiting thread per process (+30). Now the reaper, once; a little room for
        // threads other suites start meanwhile.
        #expect(during - before <= 4, "\(before) threads before waiting, \(during) while waiting for 30 processes")
        processes[0].signal(SIGTERM)
        for process in processes.dropFirst() {
            close(process.inputFD)
        }
        #expect(try await exits[0].get() == .signal("TERM", coreDumped: false))
        for exit in exits.dropFirst() {
            #expect(try await exit.get() == .status(0))
        }
        for process in processes {
            close(process.outputFD)
            if let errorFD = process.errorFD { close(errorFD) }
        }
        close(processes[0].inputFD)
        #expect(ProcessReaper.shared.count < 30, "these 30 are no longer waited for")
    }

    @Test("a process that has exited before it is waited for is reaped with its status")
    func exitedBeforeWaiting() async throws {
        let user = try LoginUser.current()
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let process = try SessionProcess.spawn(
            argv: ["/bin/sh", "-c", "exit 7"], environment: [:], user: user, changeUser: false, terminal: nil)
        // Its output closes when it exits: then it is a zombie, not yet reaped.
        var byte: UInt8 = 0
        _ = fcntl(process.outputFD, F_SETFL, fcntl(process.outputFD, F_GETFL) & ~O_NONBLOCK)
        #expect(read(process.outputFD, &byte, 1) == 0)
        #expect(try await process.waitForExit(on: loop).get() == .status(7))
        for fd in [process.inputFD, process.outputFD] + (process.errorFD.map { [$0] } ?? []) { close(fd) }
    }

    @Test("the heap is trimmed once the last connection closes, not while one is still open or reopened")
    func trimWhenIdle() async throws {
        let checks = AsyncStream<Bool>.makeStream()
        let trim = IdleMemoryTrim(delay: .milliseconds(500)) { checks.continuation.yield($0) }
        var results = checks.stream.makeAsyncIterator()
        trim.opened()
        trim.opened()
        trim.closed()  // one still open: nothing scheduled
        trim.closed()  // idle: scheduled
        trim.opened()  // a new connection within the delay: the scheduled trim is skipped
        #expect(await results.next() == false)
        #expect(trim.trims == 0)
        trim.closed()
        #expect(await results.next() == true)
        #expect(trim.trims == 1)
    }
}
