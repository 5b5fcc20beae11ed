import Synchronization
import Testing

@testable import TeleportDaemon

/// The gate that keeps two renewals of the local admin identity from interleaving their files.
@Suite("one caller at a time")
struct SerialGateTests {
    final class Inside: Sendable {
        let now = Mutex(0)
        let most = Mutex(0)
        let done = Mutex(0)
    }

    @Test("twenty callers that yield while inside are never inside together, and all get through")
    func exclusive() async {
        let gate = SerialGate()
        let inside = Inside()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    await gate.acquire()
                    let count = inside.now.withLock { $0 += 1; return $0 }
                    inside.most.withLock { $0 = max($0, count) }
                    await Task.yield()
                    try? await Task.sleep(for: .milliseconds(1))
                    inside.now.withLock { $0 -= 1 }
                    inside.done.withLock { $0 += 1 }
                    await gate.release()
                }
            }
        }
        #expect(inside.most.withLock { $0 } == 1)
        #expect(inside.done.withLock { $0 } == 20)
    }
}
