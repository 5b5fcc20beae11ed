import Foundation
package import NIOCore
import NIOSSH
package import TeleportAPI
import TeleportSSH

/// The client side of SFTP version 3 (draft-ietf-secsh-filexfer-02, the version OpenSSH's
/// `sftp-server` speaks), enough for `tsh scp`: files and directories, read and written with many
/// requests in flight so that a transfer is not bound by round trips.
package final class SFTPClient: @unchecked Sendable {
    /// Packet types.
    package enum PacketType: UInt8 {
        case initialize = 1, version = 2, open = 3, close = 4, read = 5, write = 6, lstat = 7, fstat = 8, setstat = 9
        case opendir = 11, readdir = 12, mkdir = 14, realpath = 16, stat = 17
        case extended = 200
        case status = 101, handle = 102, data = 103, name = 104, attrs = 105, extendedReply = 201
    }

    /// `SSH_FXF_*` open flags.
    package struct OpenFlags: OptionSet {
        package let rawValue: UInt32
        /// The flags of `rawValue`.
        package init(rawValue: UInt32) { self.rawValue = rawValue }
        package static let read = OpenFlags(rawValue: 0x01)
        package static let write = OpenFlags(rawValue: 0x02)
        package static let create = OpenFlags(rawValue: 0x08)
        package static let truncate = OpenFlags(rawValue: 0x10)
    }

    /// `SSH_FX_*` status codes that the client acts on.
    package enum StatusCode: UInt32 {
        case ok = 0, eof = 1, noSuchFile = 2, permissionDenied = 3, failure = 4
    }

    /// A reply: its type and the bytes after the request id.
    package struct Reply {
        package var type: UInt8
        package var body: ByteBuffer
    }

    /// The read or write request size without the server's `limits@openssh.com` (SFTP's draft
    /// promises every server 32 KiB).
    package static let chunkSize = 32_768
    /// The largest request size taken from a server's limits (OpenSSH's sftp-server says 255 KiB).
    package static let largestChunk = 255 * 1024
    /// Bytes in flight per transfer (see ``window``).
    static let bytesInFlight = 4 << 20

    package let channel: any Channel
    private let handler: SFTPClientHandler
    /// The size of each read and write request: the server's limit when it says one (OpenSSH's
    /// `limits@openssh.com`, as its own sftp client asks), at most ``largestChunk``; else 32 KiB.
    package private(set) var chunk = SFTPClient.chunkSize

    /// Requests in flight per transfer: 4 MiB of them, at least 16.
    package var window: Int { Swift.max(16, Self.bytesInFlight / chunk) }

    private init(channel: any Channel, handler: SFTPClientHandler) {
        self.channel = channel
        self.handler = handler
    }

    /// The request size `limits@openssh.com`'s reply allows (its max-read-length and
    /// max-write-length, and its max-packet-length less 1 KiB for a request's other fields: the
    /// smallest; 0 means no limit), within 32 KiB and ``largestChunk``; nil for a malformed reply.
    static func chunk(fromLimits reply: Reply) -> Int? {
        guard reply.type == PacketType.extendedReply.rawValue else { return nil }
        var body = reply.body
        guard let packet = body.readInteger(as: UInt64.self),
            let read = body.readInteger(as: UInt64.self), let write = body.readInteger(as: UInt64.self)
        else { return nil }
        var limits = [read, write].filter { $0 > 0 }
        if packet > 1024 { limits.append(packet - 1024) }
        let allowed = limits.map { Swift.min($0, UInt64(largestChunk)) }.min() ?? UInt64(largestChunk)
        return Swift.max(chunkSize, Int(allowed))
    }

    /// The extensions a version reply names (after its version number: name and data pairs).
    static func extensions(ofVersion reply: Reply) -> [String] {
        var body = reply.body
        guard body.readInteger(as: UInt32.self) != nil else { return [] }
        var names: [String] = []
        while let name = body.readSFTPString(), body.readSFTPString() != nil { names.append(String(buffer: name)) }
        return names
    }

    /// Starts the `sftp` subsystem on `connection` and negotiates version 3.
    package static func open(on connection: SSHConnection) async throws -> SFTPClient {
        let handler = SFTPClientHandler()
        let channel = try await connection.subsystemChannel("sftp") { channel in
            try channel.pipeline.syncOperations.addHandlers([
                SSHChannelDataCodec(), ByteToMessageHandler(SFTPFrameDecoder()), handler,
            ])
        }
        let client = SFTPClient(channel: channel, handler: handler)
        let version = try await client.send(.initialize, id: false) { $0.writeInteger(UInt32(3)) }.get()
        guard version.type == PacketType.version.rawValue else {
            throw TeleportError.connectionProblem("the node's SFTP server did not answer the version handshake")
        }
        if extensions(ofVersion: version).contains("limits@openssh.com") {
            let limits = try await client.send(.extended) { $0.writeSFTPString(ByteBuffer(string: "limits@openssh.com")) }.get()
            client.chunk = chunk(fromLimits: limits) ?? chunkSize
        }
        return client
    }

    /// Closes the channel.
    package func close() {
        channel.close(promise: nil)
    }

    /// Sends a request; the future completes with its reply.
    package func send(_ type: PacketType, id: Bool = true, _ body: @escaping @Sendable (inout ByteBuffer) -> Void) -> EventLoopFuture<Reply> {
        let handler = self.handler
        let loop = channel.eventLoop
        return loop.flatSubmit { handler.send(type: type.rawValue, withID: id, on: loop, body) }
    }

    // MARK: Requests

    /// The canonical absolute form of `path` (relative paths are from the login's home).
    package func realPath(_ path: String) async throws -> String {
        let reply = try await send(.realpath) { $0.writeSFTPString(path) }.get()
        var body = try Self.expect(reply, .name, path: path)
        guard let count = body.readInteger(as: UInt32.self), count >= 1, let name = body.readSFTPString() else {
            throw Self.malformed(path)
        }
        return String(buffer: name)
    }

    /// The attributes of `path` (following symbolic links), or nil when it does not exist.
    package func stat(_ path: String) async throws -> FileAttributes? {
        let reply = try await send(.stat) { $0.writeSFTPString(path) }.get()
        if reply.type == PacketType.status.rawValue, Self.statusCode(reply) == StatusCode.noSuchFile.rawValue { return nil }
        var body = try Self.expect(reply, .attrs, path: path)
        guard let attributes = FileAttributes.read(from: &body) else { throw Self.malformed(path) }
        return attributes
    }

    /// Opens a file; the reply's handle names it in later requests.
    package func openFile(_ path: String, flags: OpenFlags, attributes: FileAttributes = FileAttributes()) async throws -> ByteBuffer {
        let reply = try await send(.open) {
            $0.writeSFTPString(path)
            $0.writeInteger(flags.rawValue)
            attributes.write(to: &$0)
        }.get()
        return try Self.handle(reply, path: path)
    }

    /// Opens a directory for listing.
    package func openDirectory(_ path: String) async throws -> ByteBuffer {
        try Self.handle(try await send(.opendir) { $0.writeSFTPString(path) }.get(), path: path)
    }

    /// Every entry of a directory except `.` and `..`.
    package func list(_ path: String) async throws -> [(name: String, attributes: FileAttributes)] {
        let handle = try await openDirectory(path)
        var entries: [(name: String, attributes: FileAttributes)] = []
        do {
            while true {
                let reply = try await send(.readdir) { $0.writeSFTPString(handle) }.get()
                if reply.type == PacketType.status.rawValue, Self.statusCode(reply) == StatusCode.eof.rawValue { break }
                var body = try Self.expect(reply, .name, path: path)
                guard let count = body.readInteger(as: UInt32.self) else { throw Self.malformed(path) }
                for _ in 0..<count {
                    guard let name = body.readSFTPString(), body.readSFTPString() != nil, let attributes = FileAttributes.read(from: &body)
                    else { throw Self.malformed(path) }
                    let text = String(buffer: name)
                    if text != "." && text != ".." { entries.append((text, attributes)) }
                }
            }
        } catch {
            try? await closeHandle(handle, path: path)
            throw error
        }
        try await closeHandle(handle, path: path)
        return entries
    }

    /// Creates a directory.
    package func makeDirectory(_ path: String, permissions: UInt32) async throws {
        try Self.ok(try await send(.mkdir) {
            $0.writeSFTPString(path)
            FileAttributes(permissions: permissions).write(to: &$0)
        }.get(), path: path)
    }

    /// Sets attributes (mode, times) of `path`.
    package func setAttributes(_ path: String, _ attributes: FileAttributes) async throws {
        try Self.ok(try await send(.setstat) {
            $0.writeSFTPString(path)
            attributes.write(to: &$0)
        }.get(), path: path)
    }

    /// Closes a file or directory handle.
    package func closeHandle(_ handle: ByteBuffer, path: String) async throws {
        try Self.ok(try await send(.close) { $0.writeSFTPString(handle) }.get(), path: path)
    }

    /// Asks for `length` bytes at `offset`.
    package func read(_ handle: ByteBuffer, offset: UInt64, length: Int) -> EventLoopFuture<Reply> {
        send(.read) {
            $0.writeSFTPString(handle)
            $0.writeInteger(offset)
            $0.writeInteger(UInt32(length))
        }
    }

    /// Writes `data` at `offset`.
    package func write(_ handle: ByteBuffer, offset: UInt64, data: ByteBuffer) -> EventLoopFuture<Reply> {
        send(.write) {
            $0.writeSFTPString(handle)
            $0.writeInteger(offset)
            $0.writeSFTPString(data)
        }
    }

    // MARK: Replies

    package static func statusCode(_ reply: Reply) -> UInt32? {
        var body = reply.body
        return body.readInteger(as: UInt32.self)
    }

    /// The error a status reply carries, naming the path.
    package static func error(_ reply: Reply, path: String) -> TeleportError {
        var body = reply.body
        let code = body.readInteger(as: UInt32.self) ?? UInt32(StatusCode.failure.rawValue)
        let message = body.readSFTPString().map { String(buffer: $0) } ?? ""
        switch StatusCode(rawValue: code) {
        case .noSuchFile: return .notFound("\(path): no such file or directory on the node")
        case .permissionDenied: return .accessDenied("\(path): permission denied on the node")
        default: return .connectionProblem("\(path): the node's SFTP server failed: \(message.isEmpty ? "code \(code)" : message)")
        }
    }

    package static func malformed(_ path: String) -> TeleportError {
        .connectionProblem("\(path): the node's SFTP server sent a malformed reply")
    }

    /// The body of a reply of `type`; a status reply becomes its error.
    package static func expect(_ reply: Reply, _ type: PacketType, path: String) throws -> ByteBuffer {
        if reply.type == type.rawValue { return reply.body }
        if reply.type == PacketType.status.rawValue { throw error(reply, path: path) }
        throw malformed(path)
    }

    /// Succeeds for an `SSH_FX_OK` status.
    package static func ok(_ reply: Reply, path: String) throws {
        guard reply.type == PacketType.status.rawValue else { throw malformed(path) }
        guard statusCode(reply) == StatusCode.ok.rawValue else { throw error(reply, path: path) }
    }

    package static func handle(_ reply: Reply, path: String) throws -> ByteBuffer {
        var body = try expect(reply, .handle, path: path)
        guard let handle = body.readSFTPString() else { throw malformed(path) }
        return handle
    }
}

/// SFTP file attributes (the v3 fields `tsh scp` uses).
package struct FileAttributes: Sendable, Equatable {
    package static let sizeFlag: UInt32 = 0x1, ownerFlag: UInt32 = 0x2, permissionsFlag: UInt32 = 0x4, timesFlag: UInt32 = 0x8
    package static let extendedFlag: UInt32 = 0x8000_0000

    package var size: UInt64?
    package var permissions: UInt32?
    package var accessTime: UInt32?
    package var modificationTime: UInt32?

    package init(size: UInt64? = nil, permissions: UInt32? = nil, accessTime: UInt32? = nil, modificationTime: UInt32? = nil) {
        self.size = size
        self.permissions = permissions
        self.accessTime = accessTime
        self.modificationTime = modificationTime
    }

    package var isDirectory: Bool { (permissions ?? 0) & 0o170000 == 0o040000 }
    package var isRegularFile: Bool { (permissions ?? 0o100000) & 0o170000 == 0o100000 }

    package static func read(from buffer: inout ByteBuffer) -> FileAttributes? {
        guard let flags = buffer.readInteger(as: UInt32.self) else { return nil }
        var attributes = FileAttributes()
        if flags & sizeFlag != 0 {
            guard let size = buffer.readInteger(as: UInt64.self) else { return nil }
            attributes.size = size
        }
        if flags & ownerFlag != 0 {
            guard buffer.readInteger(as: UInt32.self) != nil, buffer.readInteger(as: UInt32.self) != nil else { return nil }
        }
        if flags & permissionsFlag != 0 {
            guard let permissions = buffer.readInteger(as: UInt32.self) else { return nil }
            attributes.permissions = permissions
        }
        if flags & timesFlag != 0 {
            guard let atime = buffer.readInteger(as: UInt32.self), let mtime = buffer.readInteger(as: UInt32.self) else { return nil }
            attributes.accessTime = atime
            attributes.modificationTime = mtime
        }
        if flags & extendedFlag != 0 {
            guard let count = buffer.readInteger(as: UInt32.self) else { return nil }
            for _ in 0..<count {
                guard buffer.readSFTPString() != nil, buffer.readSFTPString() != nil else { return nil }
            }
        }
        return attributes
    }

    package func write(to buffer: inout ByteBuffer) {
        var flags: UInt32 = 0
        if size != nil { flags |= Self.sizeFlag }
        if permissions != nil { flags |= Self.permissionsFlag }
        if accessTime != nil, modificationTime != nil { flags |= Self.timesFlag }
        buffer.writeInteger(flags)
        if let size { buffer.writeInteger(size) }
        if let permissions { buffer.writeInteger(permissions) }
        if let accessTime, let modificationTime {
            buffer.writeInteger(accessTime)
            buffer.writeInteger(modificationTime)
        }
    }
}

/// Splits the byte stream into SFTP packets (a 32-bit length, then the packet).
struct SFTPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    /// Larger than any reply to a read of ``SFTPClient/largestChunk`` or a full directory page.
    static let maximumPacket = 1 << 20

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard length >= 1, length <= Self.maximumPacket else {
            throw TeleportError.connectionProblem("the node's SFTP server sent a packet of \(length) bytes")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        guard let packet = buffer.readSlice(length: Int(length)) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(packet))
        return .continue
    }
}

/// Numbers requests and completes each one's future with the reply carrying its id.
final class SFTPClientHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?
    private var nextID: UInt32 = 1
    private var pending: [UInt32: EventLoopPromise<SFTPClient.Reply>] = [:]
    /// The `INIT` request has no id; its `VERSION` reply completes this.
    private var versionPromise: EventLoopPromise<SFTPClient.Reply>?
    private var closed = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Must run on the channel's event loop.
    func send(type: UInt8, withID: Bool, on loop: any EventLoop, _ body: (inout ByteBuffer) -> Void) -> EventLoopFuture<SFTPClient.Reply> {
        guard let context, !closed else {
            return loop.makeFailedFuture(
                TeleportError.connectionProblem("the SFTP channel to the node is closed"))
        }
        let promise = context.eventLoop.makePromise(of: SFTPClient.Reply.self)
        var packet = context.channel.allocator.buffer(capacity: 64)
        packet.writeInteger(UInt32(0))
        packet.writeInteger(type)
        if withID {
            let id = nextID
            nextID &+= 1
            packet.writeInteger(id)
            pending[id] = promise
        } else {
            versionPromise = promise
        }
        body(&packet)
        packet.setInteger(UInt32(packet.readableBytes - 4), at: packet.readerIndex)
        context.writeAndFlush(wrapOutboundOut(packet), promise: nil)
        return promise.futureResult
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var packet = unwrapInboundIn(data)
        guard let type = packet.readInteger(as: UInt8.self) else { return }
        if type == SFTPClient.PacketType.version.rawValue {
            versionPromise?.succeed(SFTPClient.Reply(type: type, body: packet))
            versionPromise = nil
            return
        }
        guard let id = packet.readInteger(as: UInt32.self), let promise = pending.removeValue(forKey: id) else {
            context.close(promise: nil)
            return
        }
        promise.succeed(SFTPClient.Reply(type: type, body: packet))
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(TeleportError.connectionProblem("the SFTP channel to the node closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        closed = true
        let waiting = pending.values
        pending.removeAll()
        for promise in waiting { promise.fail(error) }
        versionPromise?.fail(error)
        versionPromise = nil
    }
}

extension ByteBuffer {
    /// Reads an SSH string (a 32-bit length, then the bytes).
    package mutating func readSFTPString() -> ByteBuffer? {
        guard let length = getInteger(at: readerIndex, as: UInt32.self), readableBytes >= 4 + Int(length) else { return nil }
        moveReaderIndex(forwardBy: 4)
        return readSlice(length: Int(length))
    }

    /// Writes `text` as an SSH string.
    package mutating func writeSFTPString(_ text: String) {
        writeInteger(UInt32(text.utf8.count))
        writeString(text)
    }

    /// Writes `bytes` as an SSH string.
    package mutating func writeSFTPString(_ bytes: ByteBuffer) {
        writeInteger(UInt32(bytes.readableBytes))
        writeImmutableBuffer(bytes)
    }
}
