public import NIOCore
import NIOPosix
public import NIOSSH
public import Logging
import TeleportCrypto
import TeleportAPI

/// Connects an SSH channel to a TCP connection and pipes bytes both ways.
public enum ChannelBridge {
    /// Dials `host:port` and glues it to `sshChannel` (a `direct-tcpip` or `proxy:` channel).
    /// The SSH channel is not read until the TCP connection is up.
    public static func connect(_ sshChannel: any Channel, toHost host: String, port: Int) -> EventLoopFuture<Void> {
        let loop = sshChannel.eventLoop
        return loop.flatSubmit {
            let (sshSide, tcpSide) = GlueHandler.matchedPair()
            let sshBound = NIOLoopBound(sshSide, eventLoop: loop)
            // The TCP side's handler is there from the start (what the peer sends first is kept).
            return GlueHandler.connect(host: host, port: port, on: loop, with: tcpSide).flatMapThrowing { tcp in
                do {
                    _ = sshChannel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                    try sshChannel.pipeline.syncOperations.addHandlers([SSHChannelDataCodec(), sshBound.value])
                } catch {
                    tcp.close(promise: nil)
                    throw error
                }
                sshChannel.read()
            }
        }
    }

    /// Glues an SSH channel to another byte channel (already connected).
    public static func glue(_ sshChannel: any Channel, _ other: any Channel) -> EventLoopFuture<Void> {
        let loop = sshChannel.eventLoop
        return loop.flatSubmit {
            let (sshSide, otherSide) = GlueHandler.matchedPair()
            do {
                _ = sshChannel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                try sshChannel.pipeline.syncOperations.addHandlers([SSHChannelDataCodec(), sshSide])
            } catch {
                other.close(promise: nil)
                return loop.makeFailedFuture(error)
            }
            return other.eventLoop.submit {
                try other.pipeline.syncOperations.addHandler(otherSide)
            }.map {
                sshChannel.read()
                // Accepted connections wait with autoRead off until they are glued.
                _ = other.setOption(ChannelOptions.autoRead, value: true)
                other.read()
            }
        }
    }
}

/// `tcpip-forward` (`ssh -R`): listens on the requested address on behalf of the client and opens a
/// `forwarded-tcpip` channel to it for each connection. Allowed only when `permitted` says so.
public final class RemoteForwardingDelegate: GlobalRequestDelegate, @unchecked Sendable {
    let connection: SSHConnectionInfo
    let audit: SSHAudit?
    let authorize: @Sendable (SSHAuthenticatedUser) -> AccessRefusal?
    let logger: Logger
    private var listeners: [String: any Channel] = [:]

    /// Creates the delegate of one connection; `audit` gets a `port` event per request and
    /// `authorize` says whether the user's roles allow port forwarding.
    public init(
        connection: SSHConnectionInfo, audit: SSHAudit? = nil, authorize: @escaping @Sendable (SSHAuthenticatedUser) -> AccessRefusal? = { _ in nil },
        logger: Logger
    ) {
        self.connection = connection
        self.audit = audit
        self.authorize = authorize
        self.logger = logger
    }

    public func tcpForwardingRequest(
        _ request: GlobalRequest.TCPForwardingRequest, handler: NIOSSHHandler,
        promise: EventLoopPromise<GlobalRequest.TCPForwardingResponse>
    ) {
        guard let user = connection.user, user.permits(SSHCertificate.permitPortForwarding) else {
            logger.info("refused remote port forwarding: the certificate does not permit port forwarding")
            let error = TeleportError.accessDenied("port forwarding is not permitted")
            if case .listen(let host, let port) = request {
                audit?.portForward(connection, user: connection.user, target: "remote " + HostPort.join(host, port), error: error)
            }
            promise.fail(error)
            return
        }
        if let refused = authorize(user) {
            logger.info("refused remote port forwarding: \(refused.reason)")
            if case .listen(let host, let port) = request {
                audit?.portForward(connection, user: user, target: "remote " + HostPort.join(host, port), error: refused)
            }
            promise.fail(TeleportError.accessDenied(refused.reason))
            return
        }
        let loop = promise.futureResult.eventLoop
        switch request {
        case .listen(let host, let port):
            let bindHost = host.isEmpty || host == "localhost" ? "127.0.0.1" : host
            let handlerBox = NIOLoopBound(handler, eventLoop: loop)
            ServerBootstrap(group: loop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.autoRead, value: false)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { inbound in
                    loop.execute {
                        let origin = inbound.remoteAddress ?? (try! SocketAddress(ipAddress: "127.0.0.1", port: 0))
                        let boundPort = inbound.localAddress?.port ?? port
                        handlerBox.value.createChannel(
                            nil,
                            channelType: .forwardedTCPIP(.init(listeningHost: host, listeningPort: boundPort, originatorAddress: origin))
                        ) { sshChannel, _ in
                            ChannelBridge.glue(sshChannel, inbound)
                        }
                    }
                    return inbound.eventLoop.makeSucceededVoidFuture()
                }
                .bind(host: bindHost, port: port)
                .whenComplete { result in
                    switch result {
                    case .success(let listener):
                        let bound = listener.localAddress?.port ?? port
                        self.audit?.portForward(self.connection, user: user, target: "remote " + HostPort.join(host, bound), error: nil)
                        self.listeners["\(host):\(bound)"] = listener
                        if port == 0 { self.listeners["\(host):0"] = listener }
                        promise.succeed(.init(boundPort: port == 0 ? bound : nil))
                    case .failure(let error):
                        self.audit?.portForward(self.connection, user: user, target: "remote " + HostPort.join(host, port), error: error)
                        promise.fail(error)
                    }
                }
        case .cancel(let host, let port):
            if let listener = listeners.removeValue(forKey: "\(host):\(port)") {
                listener.close(promise: nil)
            }
            promise.succeed(.init(boundPort: nil))
        }
    }

    /// Stops every listener (the connection ended).
    public func closeAll() {
        for listener in listeners.values { listener.close(promise: nil) }
        listeners.removeAll()
    }
}
