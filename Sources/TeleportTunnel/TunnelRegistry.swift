public import Foundation
public import NIOCore
import NIOSSH

/// The live reverse tunnels of a proxy, by agent host UUID. The newest tunnel of a host wins (the
/// older one is closed: an agent that redialled after a network change must not be shadowed by
/// its half-dead predecessor); a tunnel is removed when it closes.
public final class TunnelRegistry: @unchecked Sendable {
    struct Entry {
        let channel: any Channel
        let handler: NIOLoopBound<NIOSSHHandler>
        let since: Date
    }

    private let lock = NSLock()
    private var tunnels: [String: Entry] = [:]

    /// Creates an empty registry.
    public init() {}

    /// Registers `channel` as the tunnel of `hostUUID`, closing an older one.
    func add(_ hostUUID: String, channel: any Channel, handler: NIOLoopBound<NIOSSHHandler>) {
        let older = lock.withLock { tunnels.updateValue(Entry(channel: channel, handler: handler, since: Date()), forKey: hostUUID) }
        if let older, older.channel !== channel { older.channel.close(promise: nil) }
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

    /// Closes the tunnel of `hostUUID` (the node was removed or locked); true when there was one.
    @discardableResult public func close(_ hostUUID: String) -> Bool {
        let entry = lock.withLock { tunnels.removeValue(forKey: hostUUID) }
        entry?.channel.close(promise: nil)
        return entry != nil
    }
}
