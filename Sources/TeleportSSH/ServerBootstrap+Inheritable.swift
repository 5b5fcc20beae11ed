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

/// The errno of a listener's start failure (NIO's or ``ListenerSockets``'), for ``ListenError``.
package func listenErrno(_ error: any Error) -> Int32? {
    (error as? IOError)?.errnoCode ?? (error as? ListenSocketError)?.errno
}

/// Counts `channel` as an open connection of `service` until it closes (``ListenerSockets/opened(_:close:)``).
package func countConnection(_ service: String, _ channel: any Channel) {
    let done = ListenerSockets.shared.opened(service) { channel.close(promise: nil) }
    channel.closeFuture.whenComplete { _ in done() }
}
