package import NIOCore
package import NIOPosix
import TeleportAPI

#if canImport(Glibc)
    import Glibc
#endif

extension ServerBootstrap {
    /// Starts a listener on the socket ``ListenerSockets`` gives for `host:port` (inherited from
    /// the process a graceful restart replaced, or bound now), registered so that
    /// ``ListenerSockets/stopAccepting()`` closes it. Accepting starts once the parent process
    /// stopped (``ListenerSockets/untilAccepting()``).
    package func bindInheritable(host: String, port: Int) async throws -> any Channel {
        let socket = try ListenerSockets.shared.socket(host: host, port: port)
        await ListenerSockets.shared.untilAccepting()
        let channel: any Channel
        do {
            channel = try await withBoundSocket(socket.fd).get()
        } catch {
            close(socket.fd)
            ListenerSockets.shared.closed(socket)
            throw error
        }
        let token = await ListenerSockets.shared.onStopAccepting { try? await channel.close() }
        channel.closeFuture.whenComplete { _ in
            ListenerSockets.shared.closed(socket)
            ListenerSockets.shared.unregister(token)
        }
        return channel
    }
}

extension ServerBootstrap {
    /// ``bindInheritable(host:port:)`` for a listener whose connections are async channels
    /// (`childChannelInitializer`'s output), counted as open connections of `service`.
    package func bindInheritable<Output: Sendable>(
        host: String, port: Int, service: String, childChannelInitializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Output>
    ) async throws -> NIOAsyncChannel<Output, Never> {
        let socket = try ListenerSockets.shared.socket(host: host, port: port)
        await ListenerSockets.shared.untilAccepting()
        let server: NIOAsyncChannel<Output, Never>
        do {
            server = try await bind(socket.fd) { channel in
                countConnection(service, channel)
                return childChannelInitializer(channel)
            }
        } catch {
            close(socket.fd)
            ListenerSockets.shared.closed(socket)
            throw error
        }
        let channel = server.channel
        let token = await ListenerSockets.shared.onStopAccepting { try? await channel.close() }
        channel.closeFuture.whenComplete { _ in
            ListenerSockets.shared.closed(socket)
            ListenerSockets.shared.unregister(token)
        }
        return server
    }
}

/// The errno of a listener's start failure (NIO's or ``ListenerSockets``'), for ``ListenError``.
package func listenErrno(_ error: any Error) -> Int32? {
    (error as? IOError)?.errnoCode ?? (error as? ListenSocketError)?.errno
}

/// Counts `channel` as an open connection of `service` until it closes (``ListenerSockets/opened(_:close:)``).
package func countConnection(_ service: String, _ channel: any Channel) {
    let done = ListenerSockets.shared.opened(service) { channel.close(promise: nil) }
    channel.closeFuture.whenComplete { _ in done() }
}
