import NIOCore
import NIOSSH
import Synchronization
import TeleportAPI

/// What an agent's open tunnel carries and whether it is still the agent's tunnel: the channels
/// the proxy opened on it (counted as they open and close), whether its proxy announced that it
/// drains (``TunnelWire/drainingHost``), and whether the agent retired (its own process stops
/// accepting). A draining or retired tunnel is closed as soon as it carries no channel, so an open
/// session goes on through it until it ends.
final class TunnelUse: Sendable {
    private struct State {
        var channels = 0
        var draining = false
        var retiring = false
        var onDrain: (@Sendable (_ openChannels: Int) -> Void)?
    }

    private let state = Mutex(State())
    /// The tunnel's connection.
    let channel: any Channel

    init(channel: any Channel) { self.channel = channel }

    /// Whether the proxy announced that it drains.
    var isDraining: Bool { state.withLock { $0.draining } }

    /// The channels open on the tunnel now.
    var openChannels: Int { state.withLock { $0.channels } }

    /// Calls `body` (with the open channel count) when the proxy announces that it drains; at once
    /// when it did already.
    func onDrain(_ body: @escaping @Sendable (_ openChannels: Int) -> Void) {
        let already = state.withLock { state -> Int? in
            if state.draining { return state.channels }
            state.onDrain = body
            return nil
        }
        if let already { body(already) }
    }

    /// The proxy opened a channel.
    func channelOpened() {
        state.withLock { $0.channels += 1 }
    }

    /// A channel ended: a draining or retired tunnel with none left closes.
    func channelClosed() {
        let close = state.withLock { state -> Bool in
            state.channels = max(state.channels - 1, 0)
            return state.channels == 0 && (state.draining || state.retiring)
        }
        if close { channel.close(promise: nil) }
    }

    /// The drain notice arrived; true the first time.
    @discardableResult
    func drainAnnounced() -> Bool {
        let (first, callback, channels) = state.withLock { state -> (Bool, (@Sendable (Int) -> Void)?, Int) in
            guard !state.draining else { return (false, nil, state.channels) }
            state.draining = true
            defer { state.onDrain = nil }
            return (true, state.onDrain, state.channels)
        }
        guard first else { return false }
        callback?(channels)
        if channels == 0 { channel.close(promise: nil) }
        return true
    }

    /// The agent's process stops accepting: no new use; closes once no channel is open.
    func retire() {
        let close = state.withLock { state -> Bool in
            state.retiring = true
            return state.channels == 0
        }
        if close { channel.close(promise: nil) }
    }
}

/// The agent's side of the tunnel's global requests: the proxy's drain notice (a `tcpip-forward`
/// for ``TunnelWire/drainingHost``, answered, never bound); every other request is refused.
struct DrainNoticeReceiver: GlobalRequestDelegate {
    let use: TunnelUse

    func tcpForwardingRequest(
        _ request: GlobalRequest.TCPForwardingRequest, handler: NIOSSHHandler,
        promise: EventLoopPromise<GlobalRequest.TCPForwardingResponse>
    ) {
        if case .listen(let host, _) = request, host == TunnelWire.drainingHost {
            promise.succeed(.init(boundPort: nil))
            use.drainAnnounced()
        } else {
            promise.fail(TeleportError.accessDenied("an agent binds no port for the proxy"))
        }
    }
}
