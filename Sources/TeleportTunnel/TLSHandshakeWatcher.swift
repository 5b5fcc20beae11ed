public import NIOCore
import NIOTLS
import TeleportAPI

/// Completes a promise when the TLS handshake below it finishes (or fails), so a caller can
/// check the peer before any byte of the session flows.
public final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny
    let done: EventLoopPromise<Void>

    /// Creates a watcher that completes `done`.
    public init(done: EventLoopPromise<Void>) { self.done = done }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event { done.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.fireErrorCaught(error)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        done.fail(TeleportError.connectionProblem("the connection closed during the TLS handshake"))
        context.fireChannelInactive()
    }
}

