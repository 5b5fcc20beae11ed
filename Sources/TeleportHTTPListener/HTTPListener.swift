import Foundation
public import HummingbirdCore
public import Logging
public import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import TeleportAPI

/// Runs a Hummingbird server's connections on a socket from ``ListenerSockets`` (issue 19), so that
/// a graceful restart can hand the socket to the new process.
///
/// Hummingbird binds by address only. The listener lends the application an `HTTPServerBuilder`
/// that records the child channel the application builds (its responder, request contexts and
/// middleware stay Hummingbird's own); the application's own server listens on a Unix socket in
/// a private 0700 directory that nothing connects to, and every real connection is accepted here,
/// set up and handled by that child channel, and counted per service.
public final class HTTPListener: Sendable {
    /// The listen address.
    public let host: String
    /// The listen port.
    public let port: Int
    /// The service name connections are counted under (`auth API`, `proxy web`, `diagnostics`).
    public let service: String
    let logger: Logger
    private let built: AsyncStream<any ServerChildChannel>
    private let build: AsyncStream<any ServerChildChannel>.Continuation
    private let directory: URL

    /// A listener for `host:port`.
    public init(host: String, port: Int, service: String, logger: Logger) {
        self.host = host
        self.port = port
        self.service = service
        self.logger = logger
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("teleport-\(getpid())-\(UUID().uuidString.prefix(8))")
        (built, build) = AsyncStream.makeStream(of: (any ServerChildChannel).self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The builder to hand the application: `make` builds the child channel from its responder.
    public func builder(
        _ make: @escaping @Sendable (@escaping HTTPChannelHandler.Responder) throws -> any ServerChildChannel
    ) -> HTTPServerBuilder {
        HTTPServerBuilder { [self] responder in
            let child = try make(responder)
            build.yield(child)
            build.finish()
            return child
        }
    }

    /// The application's own (unused) address: a Unix socket in a private directory.
    public var applicationAddress: BindAddress {
        .unixDomainSocket(path: directory.appendingPathComponent("http.sock").path)
    }

    /// Runs `application` (Hummingbird's `Application.run`) and accepts connections on the
    /// listener's socket until graceful shutdown; then closes the socket and the connections
    /// still open. `onListening` runs once the socket accepts.
    public func run(_ application: @escaping @Sendable () async throws -> Void, onListening: @escaping @Sendable () async -> Void) async throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: directory) }
        let socket = try ListenerSockets.shared.socket(host: host, port: port)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [build] in
                // An application that fails before it built its child ends the wait below.
                defer { build.finish() }
                try await application()
            }
            // The application builds its child channel as it starts.
            var children = built.makeAsyncIterator()
            guard let child = await children.next() else {
                try await group.waitForAll()
                return
            }
            try await accept(child, socket: socket, onListening: onListening)
            // The application stops with the same graceful shutdown.
            try await group.waitForAll()
        }
    }

    func accept<Child: ServerChildChannel>(_ child: Child, socket: ListenerSockets.Socket, onListening: @Sendable () async -> Void) async throws {
        let logger = self.logger
        // Listening already (connections queue): ready, though a process started by a graceful
        // restart accepts only once its parent stopped.
        await onListening()
        await ListenerSockets.shared.untilAccepting()
        let serverChannel: NIOAsyncChannel<HandOver<Child.Value>, Never>
        let connections = OpenConnections()
        let service = self.service
        /// Serves one connection, counted for the drain and closed by a fast stop.
        @Sendable func serve(_ value: Child.Value) async {
            let connection = value.channel
            let id = ObjectIdentifier(connection)
            connections.add(id, connection)
            let done = ListenerSockets.shared.opened(service) { connection.close(promise: nil) }
            await child.handle(value: value, logger: logger)
            done()
            connections.remove(id)
        }
        // NIO drops a connection whose set-up completes after the listener closed (a graceful
        // restart stops accepting) without handing it to the loop; its value may hold an
        // NIOAsyncChannel, which must be run before it goes. The ledger keeps each set-up
        // connection until the loop takes it; those the loop never took are served after it.
        let handOvers = HandOvers<Child.Value>()
        do {
            serverChannel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .bind(socket.fd) { channel in
                    child.setup(channel: channel, logger: logger).map { value in
                        let handOver = HandOver(value)
                        if !handOvers.add(handOver) {
                            // The loop has ended: serve it here.
                            if handOver.take() { Task { await serve(value) } }
                        }
                        // Closed before the loop took it (or dropped by NIO): run it on the
                        // closed channel, which ends at once.
                        channel.closeFuture.whenComplete { _ in
                            handOvers.remove(handOver)
                            if handOver.take() { Task { await serve(value) } }
                        }
                        return handOver
                    }
                }
        } catch {
            close(socket.fd)
            ListenerSockets.shared.closed(socket)
            throw error
        }
        let channel = serverChannel.channel
        channel.closeFuture.whenComplete { _ in ListenerSockets.shared.closed(socket) }
        let stop = await ListenerSockets.shared.onStopAccepting { try? await channel.close() }
        defer { ListenerSockets.shared.unregister(stop) }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                do {
                    try await serverChannel.executeThenClose { inbound in
                        for try await handOver in inbound {
                            handOvers.remove(handOver)
                            guard handOver.take() else { continue }
                            let value = handOver.value
                            group.addTask { await serve(value) }
                        }
                    }
                } catch {
                    logger.debug("the \(service) listener stopped: \(error)")
                }
                for handOver in handOvers.close() where handOver.take() {
                    let value = handOver.value
                    group.addTask { await serve(value) }
                }
            }
        } onGracefulShutdown: {
            // Sessions were drained before the group stopped: what is left (idle keep-alives,
            // tunnels on the web port) closes now.
            channel.close(promise: nil)
            for connection in connections.all() { connection.close(promise: nil) }
        }
        // A listener closed by ListenerSockets.stopAccepting (a graceful restart): the service
        // stays until the process stops.
        try? await gracefulShutdown()
    }
}

/// A set-up connection on its way to the accept loop: served by whoever takes it first (the loop,
/// or the listener after the loop ended without it).
final class HandOver<Value: ServerChildChannelValue>: Sendable {
    let value: Value
    private let taken = Mutex(false)

    init(_ value: Value) { self.value = value }

    /// True for the first caller only.
    func take() -> Bool { taken.withLock { was in defer { was = true }; return !was } }
}

/// The set-up connections not yet taken by the accept loop.
final class HandOvers<Value: ServerChildChannelValue>: Sendable {
    private let state = Mutex<(open: Bool, pending: [ObjectIdentifier: HandOver<Value>])>((true, [:]))

    /// Keeps `handOver` until it is taken; false once the loop has ended (the caller serves it).
    func add(_ handOver: HandOver<Value>) -> Bool {
        state.withLock { state in
            guard state.open else { return false }
            state.pending[ObjectIdentifier(handOver)] = handOver
            return true
        }
    }

    func remove(_ handOver: HandOver<Value>) {
        _ = state.withLock { $0.pending.removeValue(forKey: ObjectIdentifier(handOver)) }
    }

    /// The loop has ended: what it did not take.
    func close() -> [HandOver<Value>] {
        state.withLock { state in
            state.open = false
            defer { state.pending = [:] }
            return Array(state.pending.values)
        }
    }
}

/// A listener's open connections.
final class OpenConnections: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    func add(_ id: ObjectIdentifier, _ channel: any Channel) { channels.withLock { $0[id] = channel } }
    func remove(_ id: ObjectIdentifier) { _ = channels.withLock { $0.removeValue(forKey: id) } }
    func all() -> [any Channel] { channels.withLock { Array($0.values) } }
}
