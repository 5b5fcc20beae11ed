public import Foundation
public import NIOCore
import NIOSSH
import Synchronization

/// The live reverse tunnels of a proxy, by agent host UUID. The newest tunnel of a host wins (an
/// agent that redialled after a network change must not be shadowed by its half-dead
/// predecessor): new channels go to it, and the older one is closed once it carries no channel
/// (at once when it carries none; a half-dead one ends by its idle timeout), so a session open
/// through the older tunnel — the host's teleport was restarted gracefully — goes on. A tunnel is
/// removed when it closes.
public final class TunnelRegistry: @unchecked Sendable {
    struct Entry: Sendable {
        let channel: any Channel
        let handler: NIOLoopBound<NIOSSHHandler>
        let since: Date
        let channels: ChannelCount
    }

    /// The channels open on one tunnel; a superseded tunnel closes when none is left.
    final class ChannelCount: Sendable {
        private let state = Mutex((open: 0, superseded: false))
        let tunnel: any Channel
        init(tunnel: any Channel) { self.tunnel = tunnel }

        func opened() { state.withLock { $0.open += 1 } }

        func closed() {
            let close = state.withLock { state -> Bool in
                state.open = max(state.open - 1, 0)
                return state.open == 0 && state.superseded
            }
            if close { tunnel.close(promise: nil) }
        }

        /// A newer tunnel of the host registered: close now, or when the last channel ends.
        func supersede() {
            let close = state.withLock { state -> Bool in
                state.superseded = true
                return state.open == 0
            }
            if close { tunnel.close(promise: nil) }
        }
    }

    private let lock = NSLock()
    private var tunnels: [String: Entry] = [:]
    /// Superseded tunnels still open for their channels, by host (``close(_:)`` ends them too).
    private var superseded: [String: [ObjectIdentifier: any Channel]] = [:]
    /// Callers waiting for a host's tunnel (``whenConnected(_:within:on:)``), by host.
    private var waiters: [String: [Int: EventLoopPromise<Entry?>]] = [:]
    private var nextWaiter = 0

    /// Creates an empty registry.
    public init() {}

    /// Registers `channel` as the tunnel of `hostUUID`, closing an older one.
    func add(_ hostUUID: String, channel: any Channel, handler: NIOLoopBound<NIOSSHHandler>) {
        let entry = Entry(channel: channel, handler: handler, since: Date(), channels: ChannelCount(tunnel: channel))
        let (older, waiting) = lock.withLock { () -> (Entry?, [EventLoopPromise<Entry?>]) in
            (tunnels.updateValue(entry, forKey: hostUUID), Array((waiters.removeValue(forKey: hostUUID) ?? [:]).values))
        }
        if let older, older.channel !== channel {
            let key = ObjectIdentifier(older.channel)
            lock.withLock { superseded[hostUUID, default: [:]][key] = older.channel }
            older.channel.closeFuture.whenComplete { [weak self] _ in
                guard let self else { return }
                lock.withLock {
                    superseded[hostUUID]?.removeValue(forKey: key)
                    if superseded[hostUUID]?.isEmpty == true { superseded[hostUUID] = nil }
                }
            }
            older.channels.supersede()
        }
        for promise in waiting { promise.succeed(entry) }
        channel.closeFuture.whenComplete { [weak self] _ in self?.remove(hostUUID, channel: channel) }
    }

    /// Forgets `channel` if it is still the tunnel of `hostUUID`.
    func remove(_ hostUUID: String, channel: any Channel) {
        lock.withLock {
            if let current = tunnels[hostUUID], current.channel === channel { tunnels[hostUUID] = nil }
        }
    }

    func entry(_ hostUUID: String) -> Entry? {
        lock.withLock { tunnels[hostUUID] }
    }

    /// The tunnel of `hostUUID`: now if there is one, else as soon as one registers, else nil
    /// after `timeout` (woken by the registration, no polling).
    func whenConnected(_ hostUUID: String, within timeout: TimeAmount, on loop: any EventLoop) -> EventLoopFuture<Entry?> {
        let promise = loop.makePromise(of: Entry?.self)
        let waiter = lock.withLock { () -> Int? in
            if tunnels[hostUUID] != nil { return nil }
            nextWaiter += 1
            waiters[hostUUID, default: [:]][nextWaiter] = promise
            return nextWaiter
        }
        guard let waiter else {
            promise.succeed(entry(hostUUID))
            return promise.futureResult
        }
        loop.scheduleTask(in: timeout) { [weak self] in
            guard let self else {
                promise.succeed(nil)
                return
            }
            let expired = lock.withLock { () -> EventLoopPromise<Entry?>? in
                let removed = waiters[hostUUID]?.removeValue(forKey: waiter)
                if waiters[hostUUID]?.isEmpty == true { waiters[hostUUID] = nil }
                return removed
            }
            expired?.succeed(nil)
        }
        return promise.futureResult
    }

    /// Every live tunnel's SSH handler (a drain notice goes to each).
    var handlers: [(hostUUID: String, handler: NIOLoopBound<NIOSSHHandler>, channel: any Channel)] {
        lock.withLock { tunnels.map { (hostUUID: $0.key, handler: $0.value.handler, channel: $0.value.channel) } }
    }

    /// Whether `hostUUID` holds a tunnel to this proxy.
    public func isConnected(_ hostUUID: String) -> Bool {
        lock.withLock { tunnels[hostUUID] != nil }
    }

    /// When the live tunnel of `hostUUID` was established.
    public func connectedSince(_ hostUUID: String) -> Date? {
        lock.withLock { tunnels[hostUUID]?.since }
    }

    /// The host UUIDs with a live tunnel.
    public var connectedHosts: [String] {
        lock.withLock { tunnels.keys.sorted() }
    }

    /// Closes the tunnel of `hostUUID` (the node was removed or locked), and any superseded one
    /// still open for its channels; true when there was a current one.
    @discardableResult public func close(_ hostUUID: String) -> Bool {
        let (entry, older) = lock.withLock { (tunnels.removeValue(forKey: hostUUID), superseded.removeValue(forKey: hostUUID) ?? [:]) }
        entry?.channel.close(promise: nil)
        for channel in older.values { channel.close(promise: nil) }
        return entry != nil
    }
}
