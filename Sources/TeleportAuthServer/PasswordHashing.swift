import HummingbirdBcrypt
import NIOCore
import NIOPosix

/// bcrypt on threads of its own. A bcrypt verification takes tens to hundreds of milliseconds of
/// CPU; run inline in an async handler it holds one of Swift's cooperative threads (two on a
/// 2-core host) for that long, and a storm of logins stalls every other request, heartbeat and
/// backend call of the auth service behind them (the HA restart test saw node heartbeats written
/// 32 s late during 200 logins). These threads compete for the CPU like any other, but the
/// cooperative pool stays free.
enum PasswordHashing {
    /// Started once, for the process's lifetime (like NIO's singletons).
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(2, System.coreCount))
        pool.start()
        return pool
    }()

    /// Whether `password` matches `hash` (false if the pool could not run it).
    static func verify(_ password: String, hash: String) async -> Bool {
        (try? await pool.runIfActive { Bcrypt.verify(password, hash: hash) }) ?? false
    }

    /// A new bcrypt hash of `password`.
    static func hash(_ password: String, cost: UInt8) async throws -> String {
        try await pool.runIfActive { Bcrypt.hash(password, cost: cost) }
    }
}
