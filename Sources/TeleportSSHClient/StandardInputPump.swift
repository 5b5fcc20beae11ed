import Foundation
import Glibc
// glibc's `struct stat` is declared by headers that CoreFoundation's and Dispatch's C modules
// include too; with MemberImportVisibility the compiler may name any of them its defining module
// (a release build did), so this file imports each (they are loaded through Foundation anyway).
#if canImport(CoreFoundation)
    import CoreFoundation
#endif
#if canImport(CDispatch)
    import CDispatch
#endif
public import NIOCore
import NIOPosix

/// OpenSSH's escape: `~.` at the start of a line disconnects; `~~` sends one `~`; a `~` before
/// any other byte is sent with it. Pure: fed what standard input gave, it says what to send.
public struct EscapeFilter: Sendable, Equatable {
    private var atLineStart = true
    private var sawTilde = false

    public init() {}

    /// What `bytes` leave to send, or nil when they hold the disconnect (`~.` at a line's start):
    /// then nothing of this read is sent.
    public mutating func filter(_ bytes: some Sequence<UInt8>) -> [UInt8]? {
        var kept: [UInt8] = []
        for byte in bytes {
            if sawTilde {
                sawTilde = false
                if byte == UInt8(ascii: ".") { return nil }
                if byte != UInt8(ascii: "~") { kept.append(UInt8(ascii: "~")) }
                kept.append(byte)
            } else if atLineStart && byte == UInt8(ascii: "~") {
                sawTilde = true
                continue
            } else {
                kept.append(byte)
            }
            atLineStart = byte == 13 || byte == 10
        }
        return kept
    }
}

/// Copies this process's standard input into a channel, waiting while the channel is not
/// writable. With `escape`, `~.` at the start of a line disconnects, as in OpenSSH.
///
/// A terminal or a pipe is read on the channel's own event loop (a `NIOPipeBootstrap` channel
/// over the same terminal or pipe opened again through `/proc/self/fd/0`): a keystroke goes out
/// from the thread that woke for it, with no hop between threads. A file, or anything else epoll
/// cannot wait on or `/proc` cannot open again, is read with blocking reads on a thread of its own.
public enum StandardInputPump {
    public static func start(into channel: any Channel, escape: Bool, wrap: @escaping @Sendable (ByteBuffer) -> Any, onEOF: @escaping @Sendable () -> Void) {
        if pollable(0) {
            // A new open file for the same terminal or pipe: its non-blocking flag, which NIO
            // sets, is not shared with the descriptor 0 of the shell that started us.
            let copy = open("/proc/self/fd/0", O_RDONLY | O_NOCTTY | O_CLOEXEC)
            if copy >= 0 {
                let handler = StandardInputHandler(target: channel, escape: escape, wrap: wrap, onEOF: onEOF)
                NIOPipeBootstrap(group: channel.eventLoop)
                    .channelOption(.allowRemoteHalfClosure, value: true)
                    .channelInitializer { $0.pipeline.addHandler(handler) }
                    .takingOwnershipOfDescriptor(input: copy)
                    .whenComplete { result in
                        switch result {
                        case .success(let input):
                            channel.closeFuture.whenComplete { _ in input.close(promise: nil) }
                        case .failure:
                            // (NIO closed the copy.) Read on a thread instead.
                            startThread(into: channel, escape: escape, wrap: wrap, onEOF: onEOF)
                        }
                    }
                return
            }
        }
        startThread(into: channel, escape: escape, wrap: wrap, onEOF: onEOF)
    }

    /// A terminal or a pipe: what epoll can wait on (a socket cannot be opened through `/proc`).
    static func pollable(_ fd: CInt) -> Bool {
        var status = stat()
        guard fstat(fd, &status) == 0 else { return false }
        switch status.st_mode & S_IFMT {
        case S_IFIFO: return true
        case S_IFCHR: return isatty(fd) == 1
        default: return false
        }
    }

    /// Blocking reads on a dedicated thread (a file, `/dev/null`).
    static func startThread(into channel: any Channel, escape: Bool, wrap: @escaping @Sendable (ByteBuffer) -> Any, onEOF: @escaping @Sendable () -> Void) {
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            var filter = EscapeFilter()
            while true {
                let count = read(0, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 {
                    onEOF()
                    return
                }
                var bytes = Array(buffer[0..<count])
                if escape {
                    guard let kept = filter.filter(bytes) else {
                        disconnect(channel)
                        return
                    }
                    bytes = kept
                    if bytes.isEmpty { continue }
                }
                let future = channel.writeAndFlush(wrap(ByteBuffer(bytes: bytes)))
                if !channel.isWritable || !channel.isActive {
                    do { try future.wait() } catch { return }
                }
                if !channel.isActive { return }
            }
        }
        thread.stackSize = 256 * 1024
        thread.start()
    }

    static func disconnect(_ channel: any Channel) {
        FileDescriptorWriter.writeAll(2, ByteBuffer(string: "\r\nConnection closed.\r\n"))
        channel.parent?.close(promise: nil)
        channel.close(promise: nil)
    }
}

/// Standard input on the target channel's event loop: each read goes on at once; reading pauses
/// while the target is not writable.
final class StandardInputHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let target: any Channel
    private let escape: Bool
    private let wrap: @Sendable (ByteBuffer) -> Any
    private let onEOF: @Sendable () -> Void
    private var filter = EscapeFilter()
    private var ended = false

    init(target: any Channel, escape: Bool, wrap: @escaping @Sendable (ByteBuffer) -> Any, onEOF: @escaping @Sendable () -> Void) {
        self.target = target
        self.escape = escape
        self.wrap = wrap
        self.onEOF = onEOF
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard target.isActive else {
            context.close(promise: nil)
            return
        }
        if escape {
            guard let kept = filter.filter(bytes.readableBytesView) else {
                ended = true
                StandardInputPump.disconnect(target)
                context.close(promise: nil)
                return
            }
            if kept.isEmpty { return }
            if kept.count != bytes.readableBytes { bytes = ByteBuffer(bytes: kept) }
        }
        let written = target.writeAndFlush(wrap(bytes))
        if !target.isWritable {
            // Backpressure: read no more until this write is taken.
            let input = context.channel
            input.setOption(.autoRead, value: false).whenSuccess {
                written.whenComplete { _ in
                    _ = input.setOption(.autoRead, value: true)
                }
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            end(context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        end(context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        end(context)
    }

    private func end(_ context: ChannelHandlerContext) {
        guard !ended else { return }
        ended = true
        onEOF()
        context.close(promise: nil)
    }
}
