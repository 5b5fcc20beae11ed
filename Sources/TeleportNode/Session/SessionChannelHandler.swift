public import Foundation
import Glibc
public import Logging
public import NIOCore
import NIOPosix
public import NIOSSH
import TeleportAPI
public import TeleportRecording
import TeleportCrypto
public import TeleportSSH

/// What a node's session channels need to know beyond the channel itself.
public struct SessionSettings: Sendable {
    /// The cluster's name (`TELEPORT_CLUSTER_NAME`).
    public var clusterName: String
    /// The node's host UUID (`SSH_TELEPORT_HOST_UUID`).
    public var hostUUID: String
    /// The node's name (`TELEPORT_NODENAME`, shown by `teleport status`), when known.
    public var nodeName: String?
    /// The `sftp-server` program, or nil when the host has none.
    public var sftpServerPath: String?
    /// Called when a session's process started (audit), with a session ID and what runs.
    public var onStart: @Sendable (_ event: SessionEvent) -> Void = { _ in }
    /// Called when a session ended, with when it started and everyone who took part.
    public var onEnd: @Sendable (_ event: SessionEvent, _ exit: ProcessExit, _ started: Date, _ participants: [String]) -> Void = { _, _, _, _ in }
    /// Called when the terminal of a session changed size.
    public var onResize: @Sendable (_ event: SessionEvent, _ columns: Int, _ rows: Int) -> Void = { _, _, _ in }
    /// The node's live sessions, which parties may join (nil: joining is not offered).
    public var live: LiveSessions?
    /// Whether `joiner` may join `session` (`tsh join`); the owner always may.
    public var mayJoin: @Sendable (_ joiner: SSHAuthenticatedUser, _ session: LiveSession) -> Bool = { joiner, session in
        joiner.username == session.owner.username
    }
    /// Called when a party joins (true) or leaves (false) a session.
    public var onParty: @Sendable (_ session: LiveSession, _ user: SSHAuthenticatedUser, _ joined: Bool) -> Void = { _, _, _ in }
    /// Starts the recording of an interactive session (nil: not recorded, as `session_recording: off`).
    public var makeRecorder: @Sendable (_ event: SessionEvent) -> SessionRecorder? = { _ in nil }
    /// Called when a request in a session channel was refused (`session.rejected`): what was asked
    /// (`shell`, `exec`, `env NAME`, `subsystem NAME`, `join`) and why.
    public var onRejected: @Sendable (_ connection: SSHConnectionInfo, _ user: SSHAuthenticatedUser, _ request: String, _ refusal: AccessRefusal) -> Void = { _, _, _, _ in }
    /// Whether the user's roles allow the request on this node now: nil, or why not.
    public var authorize: @Sendable (_ user: SSHAuthenticatedUser, _ request: AccessRequest) -> AccessRefusal? = { _, _ in nil }
    /// How long a session may go without input from the client before it is closed (the
    /// shortest `client_idle_timeout` of the user's roles), or nil for no limit.
    public var idleTimeout: @Sendable (_ user: SSHAuthenticatedUser) -> TimeInterval? = { _ in nil }
    /// Says why no session may start now (the audit log is unavailable under fail-closed), or nil.
    public var refusal: @Sendable () -> String? = { nil }

    /// Creates settings.
    public init(clusterName: String, hostUUID: String, nodeName: String? = nil, sftpServerPath: String? = SessionSettings.findSFTPServer()) {
        self.clusterName = clusterName
        self.hostUUID = hostUUID
        self.nodeName = nodeName
        self.sftpServerPath = sftpServerPath
    }

    /// The system's `sftp-server`, where Debian, Red Hat and others install it.
    public static func findSFTPServer() -> String? {
        ["/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/lib/ssh/sftp-server", "/usr/libexec/sftp-server"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// A session that started, for audit events.
public struct SessionEvent: Sendable {
    public let sessionID: String
    public let user: SSHAuthenticatedUser
    public let kind: Kind
    public let remoteAddress: SocketAddress?
    public let localAddress: SocketAddress?
    public let terminal: Bool
    /// `COLUMNS:ROWS` of the terminal at the start, as the seed's `size` field.
    public let terminalSize: String?

    /// Whether the session is live for others (`tsh sessions ls`, `tsh join`): a shell or a
    /// command with a terminal (`tsh ssh -t NODE CMD`); file copies and subsystems are not.
    public var isJoinable: Bool {
        guard terminal else { return false }
        switch kind {
        case .shell, .exec: return true
        case .subsystem: return false
        }
    }

    /// What the session runs.
    public enum Kind: Sendable, Equatable {
        case shell
        case exec(String)
        case subsystem(String)

        /// The request as `session.rejected` names it.
        public var requestName: String {
            switch self {
            case .shell: "shell"
            case .exec(let command): "exec \(command)"
            case .subsystem(let name): "subsystem \(name)"
            }
        }
    }
}

/// The environment variables a client may set with `env` requests: locale and terminal settings.
/// Anything that changes how programs load or run (`LD_*`, `BASH_ENV`, `PATH`, ...) is refused.
public enum SessionEnvironment {
    static let allowedNames: Set<String> = ["LANG", "LANGUAGE", "TERM", "COLORTERM", "TZ", "COLUMNS", "LINES"]

    /// Whether a client may set `name`.
    public static func isAllowed(_ name: String) -> Bool {
        if allowedNames.contains(name) { return true }
        return name.hasPrefix("LC_") && name.count > 3 && name.dropFirst(3).allSatisfy { $0.isUppercase || $0 == "_" }
    }
}

/// Handles one `session` channel on a node: terminal, environment, shell/exec/sftp, window size,
/// signals, and the exit status. The process runs as the login user; its output is forwarded with
/// backpressure (the process is not read while the client's window is full).
/// Confined to its channel's event loop (the process channels share that loop).
public final class SessionChannelHandler: ChannelDuplexHandler, @unchecked Sendable {
    public typealias InboundIn = SSHChannelData
    public typealias OutboundIn = SSHChannelData
    public typealias OutboundOut = SSHChannelData

    let settings: SessionSettings
    let connection: SSHConnectionInfo
    let user: SSHAuthenticatedUser
    let logger: Logger
    let sessionID = UUID().uuidString.lowercased()

    private var context: ChannelHandlerContext?
    private var environment: [String: String] = [:]
    private var terminal: SSHChannelRequestEvent.PseudoTerminalRequest?
    private var process: SessionProcess?
    private var event: SessionEvent?
    private var ioChannel: (any Channel)?
    private var errorChannel: (any Channel)?
    private var pendingInput: [ByteBuffer] = []
    private var inputClosed = false
    private var outputsOpen = 0
    private var exit: ProcessExit?
    private var lastWrite: EventLoopFuture<Void>?
    private var finished = false
    /// The server ended the session with a notice (a lock, the idle timeout): no exit status follows.
    private var endedByServer = false
    private var pendingSSHRead = false
    private var startedAt = Date()
    private var recorder: SessionRecorder?
    /// The live session this channel owns (its shell) or has joined (`TELEPORT_SESSION`).
    private var liveSession: LiveSession?
    private var joined: LiveSession?
    private var joinTarget: String?
    private var joinMode = LiveSession.Mode.observer
    /// When the client last sent input (for `client_idle_timeout`).
    private var lastInput = NIODeadline.now()

    /// Creates the handler for a channel of an authenticated connection.
    public init(settings: SessionSettings, connection: SSHConnectionInfo, user: SSHAuthenticatedUser, logger: Logger) {
        self.settings = settings
        self.connection = connection
        self.user = user
        self.logger = logger
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        _ = context.channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        let loop = context.eventLoop
        connection.addNoticeWriter(ObjectIdentifier(self)) { [weak self] text in
            loop.flatSubmit { self?.endWithNotice(text, on: loop) ?? loop.makeSucceededVoidFuture() }
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        connection.removeNoticeWriter(ObjectIdentifier(self))
    }

    /// Ends the session from the server's side (a lock, the idle timeout) so that the user sees
    /// why: `text` on its own line on the session's stderr (with a terminal, its screen), then an
    /// `exit-signal` HUP carrying `text` as its error message (the client learns how the session
    /// ended instead of seeing the channel close without an exit status; `tsh` does not print the
    /// reason twice), then the channel closes and its process gets SIGHUP. Completes once the
    /// reason and the exit-signal were written (the server may close the connection then).
    private func endWithNotice(_ text: String, on loop: any EventLoop) -> EventLoopFuture<Void> {
        guard let context, !finished, !endedByServer else { return loop.makeSucceededVoidFuture() }
        endedByServer = true
        let loopContext = NIOLoopBound(context, eventLoop: loop)
        let bytes = context.channel.allocator.buffer(string: "\r\n\(text)\r\n")
        // Channel data waits for the client's window, requests do not: the exit-signal goes once the
        // text was written, so the client reads the reason first.
        return context.writeAndFlush(wrapOutboundOut(SSHChannelData(type: .stdErr, data: .byteBuffer(bytes))))
            .flatMapError { _ in loop.makeSucceededVoidFuture() }
            .flatMap {
                let signalled = loop.makePromise(of: Void.self)
                loopContext.value.triggerUserOutboundEvent(
                    SSHChannelRequestEvent.ExitSignal(signalName: "HUP", errorMessage: text, language: "", dumpedCore: false),
                    promise: signalled)
                loopContext.value.flush()
                return signalled.futureResult.always { _ in loopContext.value.close(promise: nil) }
            }
    }

    /// `tsh join`: attaches this channel to a live session as a party.
    private func join(_ context: ChannelHandlerContext, _ sid: String, wantReply: Bool) {
        guard joined == nil, process == nil, let session = settings.live?.session(sid) else {
            return refuse(context, wantReply, "no live session \(sid) on this node (tsh sessions ls lists them)\r\n")
        }
        guard settings.mayJoin(user, session) else {
            logger.warning("refused to let a user join a session", metadata: ["tp.user": "\(user.username)", "tp.sid": "\(sid)"])
            settings.onRejected(connection, user, "join \(sid)", AccessRefusal(reason: "the user may not join this session"))
            return refuse(context, wantReply, "\(user.username) may not join session \(sid)\r\n")
        }
        joined = session
        session.join(context.channel, user: user, mode: joinMode)
        settings.onParty(session, user, true)
        reply(context, wantReply, ok: true)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if let joined {
            // Unless the session ended first (its end reported this party's leaving).
            if joined.leave(context.channel) { settings.onParty(joined, user, false) }
            self.joined = nil
        }
        // The client went away: end the process group and release the descriptors.
        if let process, exit == nil { process.signal(SIGHUP) }
        ioChannel?.close(promise: nil)
        errorChannel?.close(promise: nil)
        context.fireChannelInactive()
    }

    // MARK: Requests

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let request as SSHChannelRequestEvent.PseudoTerminalRequest:
            guard process == nil, user.permits(SSHCertificate.permitPTY) else {
                return reply(context, request.wantReply, ok: false)
            }
            terminal = request
            environment["TERM"] = request.term
            reply(context, request.wantReply, ok: true)
        case let request as SSHChannelRequestEvent.EnvironmentRequest where request.name == "TELEPORT_SESSION" || request.name == "TELEPORT_JOIN_MODE":
            // `tsh join`: the session to join and how.
            if request.name == "TELEPORT_SESSION" { joinTarget = request.value } else { joinMode = LiveSession.Mode(rawValue: request.value) ?? .observer }
            reply(context, request.wantReply, ok: process == nil)
        case let request as SSHChannelRequestEvent.EnvironmentRequest:
            let allowed = process == nil && SessionEnvironment.isAllowed(request.name) && !request.value.contains("\0")
            if allowed {
                environment[request.name] = request.value
            } else {
                logger.info("refused an environment variable", metadata: ["tp.name": "\(request.name.debugDescription)", "tp.user": "\(user.username)"])
                settings.onRejected(
                    connection, user, "env \(request.name)",
                    AccessRefusal(
                        reason: process != nil
                            ? "the session already started" : "the variable is not on the node's allow-list (locale and terminal settings)"))
            }
            reply(context, request.wantReply, ok: allowed)
        case let request as SSHChannelRequestEvent.ShellRequest:
            if let joinTarget {
                join(context, joinTarget, wantReply: request.wantReply)
            } else {
                start(context, kind: .shell, wantReply: request.wantReply)
            }
        case let request as SSHChannelRequestEvent.ExecRequest:
            start(context, kind: .exec(request.command), wantReply: request.wantReply)
        case let request as SSHChannelRequestEvent.SubsystemRequest:
            start(context, kind: .subsystem(request.subsystem), wantReply: request.wantReply)
        case let request as SSHChannelRequestEvent.WindowChangeRequest:
            process?.resize(rows: request.terminalRowHeight, columns: request.terminalCharacterWidth)
            if let event = self.event { settings.onResize(event, request.terminalCharacterWidth, request.terminalRowHeight) }
            recorder?.resize(columns: request.terminalCharacterWidth, rows: request.terminalRowHeight)
        case let request as SSHChannelRequestEvent.SignalRequest:
            if let number = Signals.number(of: request.signal) { process?.signal(number) }
        case let channelEvent as ChannelEvent where channelEvent == .inputClosed:
            inputClosed = true
            if let process, !process.hasTerminal, pendingInput.isEmpty {
                ioChannel?.close(mode: .output, promise: nil)
            }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func reply(_ context: ChannelHandlerContext, _ wantReply: Bool, ok: Bool) {
        guard wantReply else { return }
        context.triggerUserOutboundEvent(ok ? ChannelSuccessEvent() as Any : ChannelFailureEvent() as Any, promise: nil)
    }

    private func start(_ context: ChannelHandlerContext, kind requested: SessionEvent.Kind, wantReply: Bool) {
        guard process == nil else { return reply(context, wantReply, ok: false) }
        if let refusal = settings.refusal() {
            logger.error("refused a session: \(refusal)", metadata: ["tp.user": "\(user.username)"])
            settings.onRejected(connection, user, requested.requestName, AccessRefusal(reason: refusal))
            return refuse(context, wantReply, "\(refusal)\r\n")
        }
        var kind = requested
        var original: String?
        if let forced = user.checked.forceCommand {
            if case .exec(let command) = requested { original = command }
            kind = .exec(forced)
        }
        var fileCopy = false
        switch kind {
        case .subsystem(let name): fileCopy = name == "sftp"
        case .exec(let command): fileCopy = SSHAudit.scpTransfer(command) != nil
        case .shell: break
        }
        if let refused = settings.authorize(user, fileCopy ? .fileCopy : .session) {
            logger.warning("refused a session: \(refused.reason)", metadata: ["tp.user": "\(user.username)", "tp.login": "\(user.login)"])
            settings.onRejected(connection, user, kind.requestName, refused)
            return refuse(context, wantReply, "\(refused.reason)\r\n")
        }
        let account: LoginUser
        let changeUser = getuid() == 0
        do {
            account = try LoginUser.lookup(user.login)
            if !changeUser, account.uid != getuid() {
                throw TeleportError.accessDenied(
                    "this node runs as \((try? LoginUser.current().name) ?? "uid \(getuid())"), not as root, so it can only start sessions as that user, not \(user.login.debugDescription)")
            }
        } catch {
            logger.warning("cannot start a session: \(error)", metadata: ["tp.user": "\(user.username)", "tp.login": "\(user.login)"])
            settings.onRejected(connection, user, requested.requestName, AccessRefusal(reason: Self.message(error)))
            return refuse(context, wantReply, "\(Self.message(error))\r\n")
        }
        var argv: [String]
        var arg0: String?
        switch kind {
        case .shell:
            argv = [account.shell]
            arg0 = "-" + (account.shell.split(separator: "/").last.map(String.init) ?? "sh")
        case .exec(let command):
            argv = [account.shell, "-c", command]
        case .subsystem(let name):
            guard name == "sftp", let sftp = settings.sftpServerPath else {
                logger.info("refused an unknown subsystem", metadata: ["tp.subsystem": "\(name.debugDescription)"])
                settings.onRejected(connection, user, kind.requestName, AccessRefusal(reason: "the node serves no subsystem \(name.debugDescription)"))
                return reply(context, wantReply, ok: false)
            }
            argv = [sftp]
        }
        var env = environment
        env["HOME"] = account.home
        env["USER"] = account.name
        env["LOGNAME"] = account.name
        env["SHELL"] = account.shell
        env["PATH"] = account.defaultPath
        if let original { env["SSH_ORIGINAL_COMMAND"] = original }
        if let remote = connection.remoteAddress, let local = connection.localAddress {
            let remoteIP = remote.ipAddress ?? "", localIP = local.ipAddress ?? ""
            env["SSH_CLIENT"] = "\(remoteIP) \(remote.port ?? 0) \(local.port ?? 0)"
            env["SSH_CONNECTION"] = "\(remoteIP) \(remote.port ?? 0) \(localIP) \(local.port ?? 0)"
        }
        env["SSH_SESSION_ID"] = sessionID
        env["SSH_TELEPORT_USER"] = user.username
        env["SSH_TELEPORT_HOST_UUID"] = settings.hostUUID
        env["SSH_TELEPORT_CLUSTER_NAME"] = settings.clusterName
        env["TELEPORT_USERNAME"] = user.username
        env["TELEPORT_LOGIN"] = user.login
        env["TELEPORT_CLUSTER_NAME"] = settings.clusterName
        env["TELEPORT_ROLES"] = user.roles.joined(separator: " ")
        // What `teleport status` shows inside the session.
        env["TELEPORT_SESSION"] = sessionID
        env["TELEPORT_HOST_UUID"] = settings.hostUUID
        if let nodeName = settings.nodeName { env["TELEPORT_NODENAME"] = nodeName }
        let size = terminal.map { (rows: max($0.terminalRowHeight, 1), columns: max($0.terminalCharacterWidth, 1)) }
        let process: SessionProcess
        do {
            process = try SessionProcess.spawn(
                argv: argv, arg0: arg0, environment: env, user: account, changeUser: changeUser, terminal: size)
        } catch {
            logger.warning("cannot start a session: \(error)", metadata: ["tp.user": "\(user.username)"])
            settings.onRejected(connection, user, kind.requestName, AccessRefusal(reason: Self.message(error)))
            return refuse(context, wantReply, "\(Self.message(error))\r\n")
        }
        self.process = process
        let event = SessionEvent(
            sessionID: sessionID, user: user, kind: kind, remoteAddress: connection.remoteAddress,
            localAddress: connection.localAddress, terminal: terminal != nil,
            terminalSize: terminal.map { "\($0.terminalCharacterWidth):\($0.terminalRowHeight)" })
        self.event = event
        startedAt = Date()
        if terminal != nil {
            recorder = settings.makeRecorder(event)
            if let live = settings.live, event.isJoinable {
                let loop = context.eventLoop
                let session = LiveSession(sessionID: sessionID, owner: user) { [weak self] bytes in
                    loop.execute { self?.ioChannel?.writeAndFlush(bytes, promise: nil) }
                }
                live.add(session)
                liveSession = session
            }
        }
        settings.onStart(event)
        reply(context, wantReply, ok: true)
        attach(context, process)
        if let idle = settings.idleTimeout(user), idle > 0 {
            lastInput = .now()
            watchIdle(context, limit: .milliseconds(Int64(idle * 1000)))
        }
    }

    /// Closes the session once the client sent nothing for `limit` (its process gets SIGHUP).
    private func watchIdle(_ context: ChannelHandlerContext, limit: TimeAmount) {
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(deadline: lastInput + limit) { [weak self] in
            guard let self, self.exit == nil, self.context != nil else { return }
            let context = loopContext.value
            guard NIODeadline.now() - self.lastInput >= limit else { return self.watchIdle(context, limit: limit) }
            self.logger.info(
                "closing an idle session (client_idle_timeout)", metadata: ["tp.user": "\(self.user.username)", "tp.sid": "\(self.sessionID)"])
            _ = self.endWithNotice("the session was idle too long (client_idle_timeout of your roles); closing it", on: context.eventLoop)
        }
    }

    static func message(_ error: any Error) -> String {
        (error as? TeleportError)?.message ?? "\(error)"
    }

    /// Writes `text` to standard error, then answers the request with a failure: the client reads
    /// the reason before it learns of the refusal (SSH channel data and requests are not ordered
    /// otherwise: data waits for the window, replies do not).
    private func refuse(_ context: ChannelHandlerContext, _ wantReply: Bool, _ text: String) {
        let bytes = context.channel.allocator.buffer(string: text)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(SSHChannelData(type: .stdErr, data: .byteBuffer(bytes)))).whenComplete { _ in
            self.reply(loopContext.value, wantReply, ok: false)
            // Nothing more can happen on this channel: close it (the client reports the reason).
            loopContext.value.close(promise: nil)
        }
    }

    // MARK: Process I/O

    private func attach(_ context: ChannelHandlerContext, _ process: SessionProcess) {
        let loop = context.eventLoop
        outputsOpen = process.hasTerminal ? 1 : 2
        let bootstrap = NIOPipeBootstrap(group: loop)
            .channelOption(.autoRead, value: true)
            .channelOption(.allowRemoteHalfClosure, value: true)
        let main: EventLoopFuture<any Channel> =
            process.hasTerminal
            ? bootstrap.channelInitializer { $0.pipeline.addHandler(ProcessOutputHandler(session: self, type: .channel)) }
                .takingOwnershipOfDescriptor(inputOutput: process.inputFD)
            : bootstrap.channelInitializer { $0.pipeline.addHandler(ProcessOutputHandler(session: self, type: .channel)) }
                .takingOwnershipOfDescriptors(input: process.outputFD, output: process.inputFD)
        main.whenComplete { result in
            switch result {
            case .success(let channel):
                self.ioChannel = channel
                self.flushPendingInput()
            case .failure(let error):
                self.logger.warning("cannot attach to the session's process: \(error)")
                process.signal(SIGKILL)
            }
        }
        if let errorFD = process.errorFD {
            NIOPipeBootstrap(group: loop)
                .channelInitializer { $0.pipeline.addHandler(ProcessOutputHandler(session: self, type: .stdErr)) }
                .takingOwnershipOfDescriptor(input: errorFD)
                .whenComplete { result in
                    if case .success(let channel) = result { self.errorChannel = channel } else { self.outputEnded() }
                }
        }
        process.waitForExit(on: loop).whenSuccess { exit in
            self.exit = exit
            // The client may be gone already: the session still ends, audited and recorded.
            if self.context == nil { self.conclude(exit) }
            if process.hasTerminal {
                // Background jobs may hold the terminal open; give the output a moment, then end.
                loop.scheduleTask(in: .milliseconds(300)) {
                    if !self.finished { self.ioChannel?.close(promise: nil) }
                }
            }
            self.finishIfDone()
        }
    }

    /// Output from the process, to the client.
    fileprivate func forward(_ bytes: ByteBuffer, type: SSHChannelData.DataType) {
        recorder?.output(bytes)
        liveSession?.broadcast(bytes)
        guard let context else { return }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.write(wrapOutboundOut(SSHChannelData(type: type, data: .byteBuffer(bytes))), promise: promise)
        lastWrite = promise.futureResult
    }

    fileprivate func flushOutput() {
        context?.flush()
    }

    fileprivate var clientWritable: Bool { context?.channel.isWritable ?? false }

    fileprivate func outputEnded() {
        outputsOpen -= 1
        finishIfDone()
    }

    private func finishIfDone() {
        guard !finished, let exit, outputsOpen <= 0 else { return }
        guard let context else {
            // The client left after the process ended but before its output drained: the session
            // still ended normally, and its recording and audit say so.
            finished = true
            conclude(exit)
            return
        }
        finished = true
        context.flush()
        let done = lastWrite ?? context.eventLoop.makeSucceededVoidFuture()
        done.whenComplete { _ in
            self.conclude(exit)
            guard let context = self.context, !self.endedByServer else { return }
            switch exit {
            case .status(let code):
                context.triggerUserOutboundEvent(SSHChannelRequestEvent.ExitStatus(exitStatus: code), promise: nil)
            case .signal(let name, let core):
                context.triggerUserOutboundEvent(
                    SSHChannelRequestEvent.ExitSignal(signalName: name, errorMessage: "", language: "", dumpedCore: core),
                    promise: nil)
            }
            context.close(promise: nil)
        }
    }

    private var concluded = false

    /// Ends the recording and reports the end, once, however the session ended.
    private func conclude(_ exit: ProcessExit) {
        guard !concluded else { return }
        concluded = true
        recorder?.finish()
        recorder = nil
        if let liveSession {
            settings.live?.remove(liveSession.sessionID)
            for party in liveSession.end(exit) { settings.onParty(liveSession, party, false) }
        }
        if let event { settings.onEnd(event, exit, startedAt, liveSession?.allParticipants ?? [user.username]) }
    }

    // MARK: Client input

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard message.type == .channel, case .byteBuffer(let bytes) = message.data else { return }
        lastInput = .now()
        if let joined {
            joined.typed(bytes, by: context.channel)
            return
        }
        if let ioChannel, pendingInput.isEmpty {
            ioChannel.write(bytes, promise: nil)
        } else {
            pendingInput.append(bytes)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        ioChannel?.flush()
        context.fireChannelReadComplete()
    }

    public func read(context: ChannelHandlerContext) {
        if let ioChannel, !ioChannel.isWritable {
            pendingSSHRead = true
        } else {
            context.read()
        }
    }

    fileprivate func processInputWritable() {
        if pendingSSHRead {
            pendingSSHRead = false
            context?.read()
        }
    }

    private func flushPendingInput() {
        guard let ioChannel else { return }
        for bytes in pendingInput { ioChannel.write(bytes, promise: nil) }
        pendingInput.removeAll()
        ioChannel.flush()
        if inputClosed, let process, !process.hasTerminal { ioChannel.close(mode: .output, promise: nil) }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            ioChannel?.read()
            errorChannel?.read()
        }
        context.fireChannelWritabilityChanged()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("session channel error: \(error)")
        context.close(promise: nil)
    }
}

/// Reads a session process's output (a terminal master or a stdout/stderr pipe) into its session.
final class ProcessOutputHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let session: SessionChannelHandler
    let type: SSHChannelData.DataType
    private var ended = false

    init(session: SessionChannelHandler, type: SSHChannelData.DataType) {
        self.session = session
        self.type = type
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        session.forward(unwrapInboundIn(data), type: type)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        session.flushOutput()
    }

    func read(context: ChannelHandlerContext) {
        // Stop reading the process while the client cannot take more; the session asks again.
        if session.clientWritable { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { session.processInputWritable() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { end(context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        end(context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A terminal master reports EIO once the last slave descriptor is closed: that is the end.
        end(context)
        context.close(promise: nil)
    }

    private func end(_ context: ChannelHandlerContext) {
        guard !ended else { return }
        ended = true
        session.outputEnded()
    }
}
