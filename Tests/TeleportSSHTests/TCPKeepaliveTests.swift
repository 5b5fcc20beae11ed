import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import TeleportSSH

/// Issue 13 item 5 (a client whose host vanishes) and issue 12 item 4 (refused logins in the audit
/// log): the keepalive timers of dialed byte pipes, and the bound on refused-login events.
@Suite("TCP keepalive of dialed pipes; refused-login event budget")
struct TCPKeepaliveTests {
    @Test("a byte pipe dialed with GlueHandler.connect carries SO_KEEPALIVE and the short timers")
    func dialedPipeHasKeepalive() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let listener = try await ServerBootstrap(group: group)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)
        let loop = group.next()
        // As its callers do: on the loop the pipe lives on.
        let dialed = try await loop.flatSubmit {
            GlueHandler.connect(host: "127.0.0.1", port: port, on: loop, with: GlueHandler.matchedPair().0)
        }.get()
        let keepalive = try await dialed.getOption(.socketOption(.so_keepalive)).get()
        let idle = try await dialed.getOption(TCPKeepalive.idleOption).get()
        let interval = try await dialed.getOption(TCPKeepalive.intervalOption).get()
        let count = try await dialed.getOption(TCPKeepalive.countOption).get()
        #expect(keepalive != 0)
        #expect(idle == 60 && interval == 15 && count == 4, "idle \(idle) interval \(interval) count \(count)")
        // A dead peer is dropped in about two minutes, not the kernel's two hours.
        #expect(TCPKeepalive.idleSeconds + TCPKeepalive.intervalSeconds * TCPKeepalive.probeCount <= 180)
        try await dialed.close()
        try await listener.close()
    }

    @Test("at most perMinute refused-login events a minute; the next one counts those left out")
    func refusalBudget() {
        let budget = RefusalBudget()
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for index in 0..<RefusalBudget.perMinute {
            #expect(budget.admit(at: start.addingTimeInterval(Double(index) / 10)) == 0)
        }
        for _ in 0..<25 { #expect(budget.admit(at: start.addingTimeInterval(30)) == nil) }
        #expect(budget.admit(at: start.addingTimeInterval(60)) == 25)
        #expect(budget.admit(at: start.addingTimeInterval(61)) == 0)
    }
}
