import CTeleportShims
import Foundation
import Glibc
public import NIOCore
public import NIOSSH
import TeleportAPI

/// What to run in a remote session.
public struct RemoteSessionRequest: Sendable {
    /// The command, or nil for a login shell.
    public var command: String?
    /// A terminal (`-t`): its type and size.
    public var terminal: (term: String, rows: Int, columns: Int)?
    /// Environment variables to send (`LANG`, `LC_*`).
    public var environment: [String: String]

    public init(command: String?, terminal: (term: String, rows: Int, columns: Int)?, environment: [String: String]) {
        self.command = command
        self.terminal = terminal
        self.environment = environment
    }
}

/// Where a session's output goes.
public struct SessionOutput: Sendable {
    public var stdout: @Sendable (ByteBuffer) -> Void
    public var stderr: @Sendable (ByteBuffer) -> Void

    public init(stdout: @escaping @Sendable (ByteBuffer) -> Void, stderr: @escaping @Sendable (ByteBuffer) -> Void) {
        self.stdout = stdout
        self.stderr = stderr
    }

    /// Writes to this process's standard output and error (blocking writes: backpressure reaches
    /// the server through the SSH window).
    public static let standard = SessionOutput(
        stdout: { FileDescriptorWriter.writeAll(1, $0) }, stderr: { FileDescriptorWriter.writeAll(2, $0) })
}

/// Blocking writes of a buffer to a descriptor.
public enum FileDescriptorWriter {
    public static func writeAll(_ fd: CInt, _ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN {
                        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                        _ = poll(&poller, 1, 1000)
                        continue
                    }
                    // The reader of our standard output or error went away (`tsh play SID | head`):
                    // there is nobody left to show anything to, so stop quietly.
                    if errno == EPIPE, fd == 1 || fd == 2 { _exit(StandardStreams.brokenPipeStatus) }
                    return
                }
                offset += written
            }
        }
    }
}

/// How a remote command ended.
public enum RemoteExit: Sendable, Equatable {
    case status(Int)
    case signal(String)
    /// The channel closed without an exit status (the connection dropped or the server refused).
    case unknown

    /// The exit code `tsh` exits with: the command's, 128+N for a signal (as shells report it),
    /// 255 when unknown (as OpenSSH's ssh does).
    public var exitCode: Int32 {
        switch self {
        case .status(let code): Int32(truncatingIfNeeded: code)
        case .signal(let name): 128 + (SignalNames.number(name) ?? 127)
        case .unknown: 255
        }
    }
}

enum SignalNames {
    static func number(_ name: String) -> Int32? {
        ["HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "ILL": SIGILL, "ABRT": SIGABRT, "FPE": SIGFPE, "KILL": SIGKILL,
         "SEGV": SIGSEGV, "PIPE": SIGPIPE, "ALRM": SIGALRM, "TERM": SIGTERM, "USR1": SIGUSR1, "USR2": SIGUSR2][name]
    }
}

/// The client side of a `session` channel: asks for a terminal and environment, starts the shell
/// or command, forwards output, and completes with how the command ended.
public final class RemoteSessionHandler: ChannelDuplexHandler, @unchecked Sendable {
    public typealias InboundIn = SSHChannelData
    public typealias OutboundIn = SSHChannelData
    public typealias OutboundOut = SSHChannelData

    let request: RemoteSessionRequest
    let output: SessionOutput
    private let exitPromise: EventLoopPromise<RemoteExit>
    private let startPromise: EventLoopPromise<Void>
    private var exit: RemoteExit = .unknown
    private var started = false
    private var awaitingStart = false
    /// The start request was answered.
    private var startAnswered = false
    /// The channel closed (both promises are complete).
    private var ended = false
    /// Standard error that arrived before the start was answered.
    private var heldStderr = ByteBuffer()
    /// The server refused the shell or command; the refusal is reported soon.
    private var refused = false
    /// The last bytes of standard error passed on (to tell whether a reason was shown already).
    private var stderrTail: [UInt8] = []

    /// Why the server ended the session, when it said so: the error message of its `exit-signal`
    /// (our nodes send one when a lock or the idle timeout ends a session).
    public private(set) var serverReason: String?
    /// Whether `serverReason` reached standard error (our nodes write it there first, for every
    /// client): then `tsh` does not print it again. Asked once the channel closed: the exit-signal,
    /// a request, can overtake the data before it (data is read on demand, requests are not).
    public var serverReasonShown: Bool {
        guard let serverReason else { return false }
        return String(decoding: stderrTail, as: UTF8.self).contains(serverReason)
    }

    /// Completes with how the command ended, when the channel closes.
    public var exitFuture: EventLoopFuture<RemoteExit> { exitPromise.futureResult }
    /// Completes when the server accepted the shell or command (fails when it refused).
    public var startFuture: EventLoopFuture<Void> { startPromise.futureResult }

    public init(request: RemoteSessionRequest, output: SessionOutput, eventLoop: any EventLoop) {
        self.request = request
        self.output = output
        self.exitPromise = eventLoop.makePromise()
        self.startPromise = eventLoop.makePromise()
    }

    deinit {
        // Never added to an open channel (the connection failed first): waiters get an answer.
        if !startAnswered { startPromise.fail(TeleportError.connectionProblem("the session channel was not opened")) }
        if !ended { exitPromise.succeed(.unknown) }
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        _ = context.channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        if context.channel.isActive { begin(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        begin(context)
        context.fireChannelActive()
    }

    private func begin(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        if let terminal = request.terminal {
            context.triggerUserOutboundEvent(
                SSHChannelRequestEvent.PseudoTerminalRequest(
                    wantReply: false, term: terminal.term, terminalCharacterWidth: terminal.columns, terminalRowHeight: terminal.rows,
                    terminalPixelWidth: 0, terminalPixelHeight: 0, terminalModes: .init([:])),
                promise: nil)
        }
        for (name, value) in request.environment.sorted(by: { $0.key < $1.key }) {
            context.triggerUserOutboundEvent(SSHChannelRequestEvent.EnvironmentRequest(wantReply: false, name: name, value: value), promise: nil)
        }
        awaitingStart = true
        if let command = request.command {
            context.triggerUserOutboundEvent(SSHChannelRequestEvent.ExecRequest(command: command, wantReply: true), promise: nil)
        } else {
            context.triggerUserOutboundEvent(SSHChannelRequestEvent.ShellRequest(wantReply: true), promise: nil)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard case .byteBuffer(var bytes) = message.data else { return }
        if message.type == .stdErr, awaitingStart {
            // Before the start is answered, stderr is the server's reason if it refuses: keep it
            // for the error (printed once, in order), or pass it on when the start succeeds.
            if heldStderr.readableBytes < 4096 { heldStderr.writeBuffer(&bytes) }
            return
        }
        if message.type == .stdErr { passStderr(bytes) } else { output.stdout(bytes) }
    }

    private func passStderr(_ bytes: ByteBuffer) {
        stderrTail.append(contentsOf: bytes.readableBytesView)
        if stderrTail.count > 4096 { stderrTail.removeFirst(stderrTail.count - 4096) }
        output.stderr(bytes)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let status as SSHChannelRequestEvent.ExitStatus:
            exit = .status(status.exitStatus)
        case let signal as SSHChannelRequestEvent.ExitSignal:
            exit = .signal(signal.signalName)
            let reason = signal.errorMessage.trimmingCharacters(in: .whitespacesAndNewlines)
            if !reason.isEmpty { serverReason = reason }
        case is ChannelSuccessEvent where awaitingStart:
            awaitingStart = false
            startAnswered = true
            if heldStderr.readableBytes > 0 { passStderr(heldStderr) }
            heldStderr.clear()
            startPromise.succeed(())
        case is ChannelFailureEvent where awaitingStart:
            // The reason the server wrote to stderr may still be on its way (channel data is read
            // on demand, replies are not): report the refusal when the server closes the channel,
            // or after a moment.
            refused = true
            context.eventLoop.scheduleTask(in: .milliseconds(500)) { self.reportRefusal() }
        case let channelEvent as ChannelEvent where channelEvent == .inputClosed:
            break
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func reportRefusal() {
        guard awaitingStart else { return }
        awaitingStart = false
        startAnswered = true  // answered (with a refusal)
        let reason = String(decoding: heldStderr.readableBytesView, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let what = request.command == nil ? "a shell" : "the command"
        startPromise.fail(
            TeleportError.accessDenied(reason.isEmpty ? "the server refused to start \(what)" : "the server refused to start \(what): \(reason)"))
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if refused { reportRefusal() }
        if !startAnswered {
            startAnswered = true
            awaitingStart = false
            startPromise.fail(TeleportError.connectionProblem("the session closed before it started"))
        }
        ended = true
        exitPromise.succeed(exit)
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Sends a window-change request (call on the channel's event loop).
    public static func resize(_ channel: any Channel, rows: Int, columns: Int) {
        channel.triggerUserOutboundEvent(
            SSHChannelRequestEvent.WindowChangeRequest(
                terminalCharacterWidth: columns, terminalRowHeight: rows, terminalPixelWidth: 0, terminalPixelHeight: 0),
            promise: nil)
    }
}

/// The local terminal: raw mode while a remote shell runs, and its size.
public final class LocalTerminal: @unchecked Sendable {
    private var saved = termios()
    private var isRaw = false

    public init() {}

    /// Whether standard input is a terminal.
    public static var isInteractive: Bool { isatty(0) == 1 }

    /// The terminal's size (rows, columns), or 24x80.
    public static func size() -> (rows: Int, columns: Int) {
        var rows: UInt16 = 0, columns: UInt16 = 0
        for fd in [CInt(1), 0, 2] where teleport_get_window_size(fd, &rows, &columns) == 0 && rows > 0 && columns > 0 {
            return (Int(rows), Int(columns))
        }
        return (24, 80)
    }

    /// Puts the terminal in raw mode (no echo, no line editing, no signals: they go to the remote side).
    public func makeRaw() {
        guard isatty(0) == 1, tcgetattr(0, &saved) == 0 else { return }
        var raw = saved
        cfmakeraw(&raw)
        if tcsetattr(0, TCSADRAIN, &raw) == 0 { isRaw = true }
    }

    /// Restores the terminal.
    public func restore() {
        guard isRaw else { return }
        _ = tcsetattr(0, TCSADRAIN, &saved)
        isRaw = false
    }
}
