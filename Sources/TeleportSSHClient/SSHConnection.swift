import Foundation
public import NIOCore
import NIOPosix
public import NIOSSH
public import TeleportAPI
public import TeleportCrypto
import TeleportSSH

/// Decides whether a server's host key is one the cluster vouches for (never trust on first use).
public struct HostKeyCheck: Sendable {
    /// The keys acceptable for this hop.
    public let accepted: [SSHPublicKey]
    /// What the hop is, for the error message.
    public let what: String

    /// Creates a check.
    public init(accepted: [SSHPublicKey], what: String) {
        self.accepted = accepted
        self.what = what
    }

    func validate(_ key: NIOSSHPublicKey) throws {
        let presented = try SSHKeyBridge.publicKey(key)
        guard accepted.contains(presented) else {
            throw TeleportError.accessDenied(
                "the host key of \(what) (\(presented.fingerprintSHA256)) is not one the cluster vouches for: "
                    + "the host may have been replaced or someone may be intercepting the connection; run tsh login again to refresh "
                    + "the cluster's host keys, and if the error stays, ask your administrator")
        }
    }
}

/// How a client authenticates: the login and the key (with its certificate, offered first to
/// servers that understand certificates, such as OpenSSH `sshd`).
public struct SSHClientCredentials: Sendable {
    public var login: String
    public var key: OpenSSHPrivateKey
    public var certificate: SSHCertificate?
    /// What the login is for, in a refusal's words (`node luna`, also when the proxy in front of
    /// it refuses); nil: the host-key check's name of the server.
    public var target: String?
    /// Asked when a server refuses a valid certificate that lists the login (a refusal the client
    /// cannot explain by itself, see ``SSHRefusal/mayBeLocked(login:certificate:now:)``): the
    /// refusal in words, such as the caller's lock and its message; nil keeps the generic words.
    public var explainRefusal: (@Sendable (_ login: String) async -> String?)?

    public init(login: String, key: OpenSSHPrivateKey, certificate: SSHCertificate?, target: String? = nil) {
        self.login = login
        self.key = key
        self.certificate = certificate
        self.target = target
    }
}

/// Offers the certificate (when there is one), then the plain key, then gives up at once with
/// ``SSHRefusal`` in words (the library would otherwise wait for the server's login timeout).
final class KeyOfferDelegate: NIOSSHClientUserAuthenticationDelegate, @unchecked Sendable {
    private var offers: [NIOSSHUserAuthenticationOffer]
    private let credentials: SSHClientCredentials
    private let what: String
    private let failure: FailureBox

    init(_ credentials: SSHClientCredentials, what: String, failure: FailureBox) {
        self.credentials = credentials
        self.what = what
        self.failure = failure
        let key = SSHKeyBridge.nioPrivateKey(credentials.key)
        var offers: [NIOSSHUserAuthenticationOffer] = []
        if let certificate = credentials.certificate, let certified = try? SSHKeyBridge.nioCertifiedKey(certificate) {
            offers.append(
                .init(username: credentials.login, serviceName: "ssh-connection", offer: .privateKey(.init(privateKey: key, certifiedKey: certified))))
        }
        offers.append(.init(username: credentials.login, serviceName: "ssh-connection", offer: .privateKey(.init(privateKey: key))))
        self.offers = offers
    }

    func nextAuthenticationType(
        availableMethods: NIOSSHAvailableUserAuthenticationMethods, nextChallengePromise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>
    ) {
        guard availableMethods.contains(.publicKey), !offers.isEmpty else {
            // Every key was refused: fail now (the error closes the connection) instead of
            // answering "no more methods", after which the library waits for the server to hang up.
            let now = Date()
            let generic = SSHRefusal.message(login: credentials.login, what: what, certificate: credentials.certificate, now: now)
            guard let explain = credentials.explainRefusal,
                SSHRefusal.mayBeLocked(login: credentials.login, certificate: credentials.certificate, now: now)
            else {
                refuse(generic, nextChallengePromise)
                return
            }
            // Ask (the proxy) why, briefly, then fail with its words or the generic ones.
            let login = credentials.login
            Task { [self] in
                let explained = await Self.within(.seconds(5)) { await explain(login) }
                refuse(explained ?? generic, nextChallengePromise)
            }
            return
        }
        nextChallengePromise.succeed(offers.removeFirst())
    }

    private func refuse(_ message: String, _ promise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>) {
        let error = TeleportError.accessDenied(message)
        failure.record(error)
        promise.fail(error)
    }

    /// `work`'s answer, or nil when it takes longer than `limit`.
    static func within(_ limit: Duration, _ work: @escaping @Sendable () async -> String?) async -> String? {
        await withTaskGroup(of: String?.self) { group in
            group.addTask { await work() }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}

/// Validates the host key with a ``HostKeyCheck`` and remembers a refusal for the error message.
final class HostKeyDelegate: NIOSSHClientServerAuthenticationDelegate, @unchecked Sendable {
    let check: HostKeyCheck
    let failure: FailureBox

    init(check: HostKeyCheck, failure: FailureBox) {
        self.check = check
        self.failure = failure
    }

    func validateHostKey(hostKey: NIOSSHPublicKey, validationCompletePromise: EventLoopPromise<Void>) {
        do {
            try check.validate(hostKey)
            validationCompletePromise.succeed(())
        } catch {
            failure.record(error)
            validationCompletePromise.fail(error)
        }
    }
}

/// The first meaningful error of a connection (a host-key refusal explains a closed connection).
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var first: (any Error)?

    func record(_ error: any Error) {
        lock.withLock { if first == nil { first = error } }
    }

    var error: (any Error)? { lock.withLock { first } }
}

/// An authenticated SSH connection, over TCP or tunnelled inside another SSH channel.
public final class SSHConnection: Sendable {
    /// The channel the SSH handler is on.
    public let channel: any Channel
    let failure: FailureBox

    init(channel: any Channel, failure: FailureBox) {
        self.channel = channel
        self.failure = failure
    }

    static func clientConfiguration(_ credentials: SSHClientCredentials, _ check: HostKeyCheck, _ failure: FailureBox)
        -> SSHClientConfiguration
    {
        SSHClientConfiguration(
            userAuthDelegate: KeyOfferDelegate(credentials, what: credentials.target ?? check.what, failure: failure), serverAuthDelegate: HostKeyDelegate(check: check, failure: failure))
    }

    /// Connects to `host:port` over TCP.
    public static func connect(
        host: String, port: Int, credentials: SSHClientCredentials, hostKey: HostKeyCheck,
        inbound: (@Sendable (any Channel, SSHChannelType) -> EventLoopFuture<Void>)? = nil
    ) async throws -> SSHConnection {
        let group = MultiThreadedEventLoopGroup.singleton
        let failure = FailureBox()
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(15))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = NIOSSHHandler(
                            role: .client(clientConfiguration(credentials, hostKey, failure)), allocator: channel.allocator,
                            inboundChildChannelInitializer: inbound)
                        try channel.pipeline.syncOperations.addHandlers([handler, ErrorRecorder(failure: failure)])
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw TeleportError.connectionProblem("cannot connect to \(HostPort.join(host, port)): \(error)")
        }
        return SSHConnection(channel: channel, failure: failure)
    }

    /// Opens a `session` channel with `handlers`.
    public func openSession(_ handlers: @escaping @Sendable (any Channel) throws -> Void) async throws -> any Channel {
        try await openChannel(type: .session, handlers)
    }

    /// Opens a channel of `type`; fails with the connection's first error when authentication or
    /// the host key check failed.
    public func openChannel(type: SSHChannelType, _ handlers: @escaping @Sendable (any Channel) throws -> Void) async throws -> any Channel {
        let channel = self.channel
        let failure = self.failure
        do {
            return try await channel.eventLoop.flatSubmit {
                let promise = channel.eventLoop.makePromise(of: (any Channel).self)
                do {
                    let ssh = try channel.pipeline.syncOperations.handler(type: NIOSSHHandler.self)
                    ssh.createChannel(promise, channelType: type) { child, _ in
                        child.eventLoop.makeCompletedFuture { try handlers(child) }
                    }
                } catch {
                    promise.fail(error)
                }
                return promise.futureResult
            }.get()
        } catch {
            if let recorded = failure.error { throw recorded }
            if let error = error as? TeleportError { throw error }
            if "\(error)".contains("userAuth") || "\(error)".contains("allAuthenticationOptionsFailed") {
                throw TeleportError.accessDenied("the server refused the certificate: is it expired (tsh status), or is the login not allowed?")
            }
            throw TeleportError.connectionProblem("SSH channel refused: \(error)")
        }
    }

    /// Opens a `proxy:HOST:PORT@CLUSTER` subsystem channel on a proxy connection and runs another
    /// SSH connection inside it (to the node).
    public func tunnel(
        to target: String, credentials: SSHClientCredentials, hostKey: HostKeyCheck,
        inbound: (@Sendable (any Channel, SSHChannelType) -> EventLoopFuture<Void>)? = nil
    ) async throws -> SSHConnection {
        let failure = FailureBox()
        let channel = try await proxyChannel(to: target) { channel in
            let handler = NIOSSHHandler(
                role: .client(Self.clientConfiguration(credentials, hostKey, failure)), allocator: channel.allocator,
                inboundChildChannelInitializer: inbound)
            try channel.pipeline.syncOperations.addHandlers([CloseOnEndOfInput(), SSHChannelDataCodec(), handler, ErrorRecorder(failure: failure)])
        }
        return SSHConnection(channel: channel, failure: failure)
    }

    /// A channel connected to `target` through the proxy's `proxy:` subsystem: a byte stream
    /// (`SSHChannelData`) once this returns; the proxy's refusal text becomes the error.
    ///
    /// `handlers` adds what reads the stream; bytes that arrive before it is added are kept for it.
    public func proxyChannel(to target: String, handlers: @escaping @Sendable (any Channel) throws -> Void) async throws -> any Channel {
        try await subsystemChannel("proxy:\(target)", handlers: handlers)
    }

    /// A session channel running `subsystem` (such as `sftp`) once this returns; the server's
    /// refusal text becomes the error. Bytes that arrive before `handlers` is added are kept for it.
    public func subsystemChannel(_ subsystem: String, handlers: @escaping @Sendable (any Channel) throws -> Void) async throws -> any Channel {
        let setup = SubsystemSetupHandler(subsystem: subsystem)
        let result = setup.result
        let channel = try await openSession { child in
            _ = child.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            try child.pipeline.syncOperations.addHandler(setup)
        }
        try await result.get()
        try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
            do {
                try handlers(channel)
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
            return channel.pipeline.syncOperations.removeHandler(setup)
        }.get()
        return channel
    }

    /// Closes the connection.
    public func close() {
        channel.close(promise: nil)
    }
}

/// Sends a subsystem request when the channel becomes active and completes with its outcome
/// (failing with the stderr text the server sent, if any).
final class SubsystemSetupHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = SSHChannelData
    let subsystem: String
    private let promise: EventLoopPromise<Void>?
    private var pendingPromise: EventLoopPromise<Void>?
    private var stderr = ""
    private var done = false
    private var refused = false
    private var held: [NIOAny] = []
    let result: EventLoopFuture<Void>

    init(subsystem: String) {
        self.subsystem = subsystem
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let promise = loop.makePromise(of: Void.self)
        self.promise = promise
        self.result = promise.futureResult
    }

    deinit {
        // Never opened (the connection failed first): the waiter gets an error, not a leak.
        if !done { promise?.fail(TeleportError.connectionProblem("the channel for \(subsystem) was not opened")) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { send(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context)
        context.fireChannelActive()
    }

    private var sent = false
    private func send(_ context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        context.triggerUserOutboundEvent(SSHChannelRequestEvent.SubsystemRequest(subsystem: subsystem, wantReply: true), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        if !done, message.type == .stdErr, case .byteBuffer(let bytes) = message.data {
            stderr += String(buffer: bytes)
            return
        }
        // The stream's first bytes (a server's version line) can arrive before its reader is added.
        held.append(data)
    }

    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        let pending = held
        held.removeAll()
        for data in pending { context.fireChannelRead(data) }
        if !pending.isEmpty { context.fireChannelReadComplete() }
        context.leavePipeline(removalToken: removalToken)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelSuccessEvent, !done {
            done = true
            promise?.succeed(())
        } else if event is ChannelFailureEvent, !done {
            // The refusal's explanation (stderr data) may be delivered after this event: wait for
            // it, for the close that follows, or for a moment at most.
            refused = true
            if !stderr.isEmpty {
                done = true
                fail()
            } else {
                context.eventLoop.scheduleTask(in: .seconds(2)) { [self] in
                    if !done {
                        done = true
                        fail()
                    }
                }
            }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if refused, !done, !stderr.isEmpty {
            done = true
            fail()
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            fail()
        }
        context.fireChannelInactive()
    }

    private func fail() {
        let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        promise?.fail(TeleportError.connectionProblem(text.isEmpty ? "the server refused the \(subsystem) subsystem" : text))
    }
}

/// Closes a channel that carries an SSH transport when the other side ends its input: SSH has no
/// use for a half-closed transport, and without this a node that died would leave the tunnelled
/// connection open until something is written.
final class CloseOnEndOfInput: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Records connection errors (so the caller can explain a closed connection) and closes.
final class ErrorRecorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Any
    let failure: FailureBox

    init(failure: FailureBox) { self.failure = failure }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failure.record(error)
        context.close(promise: nil)
    }
}
