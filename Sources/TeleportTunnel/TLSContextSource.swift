public import NIOSSL
import Synchronization

/// A TLS context that can be replaced while a listener or an agent runs: each new connection
/// takes the current one (a host identity renewed during a CA rotation, new trusted CAs).
public final class TLSContextSource: Sendable {
    private let state: Mutex<NIOSSLContext>

    /// Starts with `context`.
    public init(_ context: NIOSSLContext) {
        state = Mutex(context)
    }

    /// The context for the next connection.
    public var current: NIOSSLContext { state.withLock { $0 } }

    /// Replaces the context for later connections (open ones keep theirs).
    public func set(_ context: NIOSSLContext) {
        state.withLock { $0 = context }
    }
}
