public import NIOCore
import Synchronization

/// Remembers the first error a channel's pipeline reports. When a TLS handshake fails, the write
/// of the request may fail first with "I/O on closed channel"; the handshake's own error (an
/// untrusted certificate, a wrong name) is the one worth reporting, and this keeps it.
public final class FirstErrorRecorder: ChannelInboundHandler, Sendable {
    public typealias InboundIn = NIOAny

    private let first = Mutex<(any Error)?>(nil)

    /// Creates a recorder; add it to the pipeline right after the TLS handler.
    public init() {}

    /// The first error seen, if any.
    public var error: (any Error)? { first.withLock { $0 } }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        first.withLock { if $0 == nil { $0 = error } }
        context.fireErrorCaught(error)
    }
}
