import Foundation
import Glibc
// glibc's `struct stat` is declared by headers that CoreFoundation's and Dispatch's C modules
// include too; with MemberImportVisibility the compiler may name any of them its defining module,
// so this file imports each (they are loaded through Foundation anyway).
#if canImport(CoreFoundation)
    import CoreFoundation
#endif
#if canImport(CDispatch)
    import CDispatch
#endif
import NIOCore
public import TeleportAPI
import TeleportSSHClient

/// What `tsh scp` was asked to do.
public struct SCPCommandOptions: Sendable {
    /// Sources then the destination, each a local path or `[LOGIN@]HOST:PATH`.
    public var paths: [String]
    /// `-r`: copy directories.
    public var recursive: Bool
    /// `-P`: the node's SSH port.
    public var port: Int?
    /// `-p`: keep modification times and modes.
    public var preserve: Bool
    /// `--cluster`.
    public var cluster: String?

    public init(paths: [String], recursive: Bool, port: Int?, preserve: Bool, cluster: String?) {
        self.paths = paths
        self.recursive = recursive
        self.port = port
        self.preserve = preserve
        self.cluster = cluster
    }
}

/// One side of a copy: a local path, or a path on a node.
struct SCPLocation: Equatable {
    var login: String?
    var host: String?
    var path: String

    /// scp's rule: `[LOGIN@]HOST:PATH` is remote when a colon comes before any slash; anything
    /// else (including `./a:b` and `/a:b`) is local. `[v6addr]:PATH` is remote too.
    static func parse(_ text: String) -> SCPLocation {
        var hostPart: Substring
        var path: Substring
        if text.hasPrefix("[") || text.contains("@["), let close = text.firstIndex(of: "]"),
            text.index(after: close) < text.endIndex, text[text.index(after: close)] == ":"
        {
            hostPart = text[..<text.index(after: close)]
            path = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.firstIndex(of: ":"), !text[..<colon].contains("/"), colon != text.startIndex {
            hostPart = text[..<colon]
            path = text[text.index(after: colon)...]
        } else {
            return SCPLocation(login: nil, host: nil, path: text)
        }
        var login: String?
        if let at = hostPart.lastIndex(of: "@") {
            login = String(hostPart[..<at])
            hostPart = hostPart[hostPart.index(after: at)...]
        }
        let host = hostPart.hasPrefix("[") && hostPart.hasSuffix("]") ? hostPart.dropFirst().dropLast() : hostPart
        // sftp-server resolves relative paths from the login's home; `~/x` means the same.
        if path.hasPrefix("~/") { path = path.dropFirst(2) } else if path == "~" { path = "" }
        return SCPLocation(login: login, host: String(host), path: String(path))
    }

    var isRemote: Bool { host != nil }
}

extension TSHCommands {
    /// `tsh scp [-r] [-p] [-P PORT] SOURCE... DESTINATION`: copies files to or from a node over
    /// SFTP through the proxy (the node's `sftp` subsystem, the same as OpenSSH's).
    public static func scp(_ options: ClientOptions, _ scp: SCPCommandOptions, context: ClientContext) async throws {
        guard scp.paths.count >= 2 else { throw TeleportError.badParameter("give a source and a destination: tsh scp SOURCE... DESTINATION") }
        let locations = scp.paths.map(SCPLocation.parse)
        let sources = locations.dropLast()
        let destination = locations.last!
        let remote: SCPLocation
        let upload: Bool
        if destination.isRemote {
            guard !sources.contains(where: \.isRemote) else {
                throw TeleportError.badParameter("copying from one node to another is not supported: copy to this machine first")
            }
            remote = destination
            upload = true
        } else {
            guard sources.allSatisfy(\.isRemote) else {
                throw TeleportError.badParameter("neither side is on a node: write one as [LOGIN@]HOST:PATH")
            }
            guard Set(sources.map { "\($0.login ?? "")@\($0.host!)" }).count == 1 else {
                throw TeleportError.badParameter("all sources must be on the same node")
            }
            remote = sources.first!
            upload = false
        }
        guard let login = remote.login ?? context.localUser, !login.isEmpty else {
            throw TeleportError.badParameter("no login: write LOGIN@HOST:PATH")
        }
        guard let host = remote.host, !host.isEmpty else { throw TeleportError.badParameter("no host before the colon in \(scp.paths)") }

        let access = try await NodeAccess.open(options, cluster: scp.cluster, context: context, needNodes: true)
        let (proxy, node) = try await access.connect(login: login, host: host, port: scp.port)
        defer {
            node.close()
            proxy.close()
        }
        let sftp = try await SFTPClient.open(on: node)
        defer { sftp.close() }
        let copier = SFTPCopier(sftp: sftp, recursive: scp.recursive, preserve: scp.preserve)
        if upload {
            try await copier.upload(sources.map(\.path), to: destination.path)
        } else {
            try await copier.download(sources.map(\.path), to: destination.path)
        }
    }
}

/// Copies files and directory trees between this machine and a node's SFTP server.
struct SFTPCopier {
    let sftp: SFTPClient
    let recursive: Bool
    let preserve: Bool

    // MARK: Upload

    func upload(_ sources: [String], to destination: String) async throws {
        let target = destination.isEmpty ? "." : destination
        let targetIsDirectory = try await sftp.stat(target)?.isDirectory ?? false
        if sources.count > 1, !targetIsDirectory {
            throw TeleportError.badParameter("\(target) on the node is not a directory (copying more than one source)")
        }
        for source in sources {
            let remotePath = targetIsDirectory ? Self.join(target, Self.baseName(source)) : target
            try await uploadItem(source, to: remotePath)
        }
    }

    private func uploadItem(_ local: String, to remote: String) async throws {
        var info = stat()
        guard fstatat(AT_FDCWD, local, &info, 0) == 0 else { throw TeleportError.notFound("\(local): \(String(cString: strerror(errno)))") }
        if info.st_mode & S_IFMT == S_IFDIR {
            guard recursive else { throw TeleportError.badParameter("\(local) is a directory: use -r to copy directories") }
            if let existing = try await sftp.stat(remote) {
                guard existing.isDirectory else { throw TeleportError.badParameter("\(remote) on the node exists and is not a directory") }
            } else {
                try await sftp.makeDirectory(remote, permissions: UInt32(info.st_mode & 0o7777) | 0o700)
            }
            let entries = try FileManager.default.contentsOfDirectory(atPath: local).sorted()
            for entry in entries {
                try await uploadItem(Self.join(local, entry), to: Self.join(remote, entry))
            }
        } else {
            guard info.st_mode & S_IFMT == S_IFREG else { throw TeleportError.badParameter("\(local) is not a regular file") }
            try await uploadFile(local, to: remote, mode: UInt32(info.st_mode & 0o7777))
        }
        if preserve {
            try await sftp.setAttributes(
                remote,
                FileAttributes(
                    permissions: UInt32(info.st_mode & 0o7777), accessTime: UInt32(truncatingIfNeeded: info.st_atim.tv_sec),
                    modificationTime: UInt32(truncatingIfNeeded: info.st_mtim.tv_sec)))
        }
    }

    private func uploadFile(_ local: String, to remote: String, mode: UInt32) async throws {
        let fd = Glibc.open(local, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TeleportError.accessDenied("\(local): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        let handle = try await sftp.openFile(remote, flags: [.write, .create, .truncate], attributes: FileAttributes(permissions: mode))
        var inFlight: [EventLoopFuture<SFTPClient.Reply>] = []
        var head = 0
        var offset: UInt64 = 0
        var failure: (any Error)?
        let chunk = sftp.chunk
        var buffer = ByteBufferAllocator().buffer(capacity: chunk)
        reading: while true {
            while inFlight.count - head < sftp.window {
                buffer.clear()
                let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: chunk) { raw in
                    guard let base = raw.baseAddress else { return 0 }
                    var got = 0
                    repeat {
                        got = Glibc.read(fd, base, chunk)
                    } while got < 0 && errno == EINTR
                    return max(got, 0)
                }
                if count == 0 { break reading }
                inFlight.append(sftp.write(handle, offset: offset, data: buffer))
                offset += UInt64(count)
            }
            do {
                try SFTPClient.ok(try await inFlight[head].get(), path: remote)
            } catch {
                failure = error
                break
            }
            head += 1
            if head > 1024 {
                inFlight.removeFirst(head)
                head = 0
            }
        }
        for future in inFlight[head...] {
            do {
                try SFTPClient.ok(try await future.get(), path: remote)
            } catch {
                if failure == nil { failure = error }
            }
        }
        let closed: (any Error)?
        do {
            try await sftp.closeHandle(handle, path: remote)
            closed = nil
        } catch {
            closed = error
        }
        if let error = failure ?? closed { throw error }
    }

    // MARK: Download

    func download(_ sources: [String], to destination: String) async throws {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: destination, isDirectory: &isDirectory)
        if sources.count > 1, !(exists && isDirectory.boolValue) {
            throw TeleportError.badParameter("\(destination) is not a directory (copying more than one source)")
        }
        for source in sources {
            let remote = source.isEmpty ? "." : source
            guard let attributes = try await sftp.stat(remote) else {
                throw TeleportError.notFound("\(remote): no such file or directory on the node")
            }
            var name = Self.baseName(remote)
            if name == "." || name.isEmpty { name = Self.baseName(try await sftp.realPath(remote)) }
            let local = exists && isDirectory.boolValue ? Self.join(destination, name) : destination
            try await downloadItem(remote, attributes, to: local)
        }
    }

    private func downloadItem(_ remote: String, _ attributes: FileAttributes, to local: String) async throws {
        let mode = mode_t((attributes.permissions ?? 0o644) & 0o7777)
        if attributes.isDirectory {
            guard recursive else { throw TeleportError.badParameter("\(remote) is a directory on the node: use -r to copy directories") }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: local, isDirectory: &isDirectory) {
                guard isDirectory.boolValue else { throw TeleportError.badParameter("\(local) exists and is not a directory") }
            } else if mkdir(local, mode | 0o700) != 0 {
                throw TeleportError.accessDenied("\(local): \(String(cString: strerror(errno)))")
            }
            for entry in try await sftp.list(remote).sorted(by: { $0.name < $1.name }) {
                guard entry.attributes.isDirectory || entry.attributes.isRegularFile else { continue }
                try await downloadItem(Self.join(remote, entry.name), entry.attributes, to: Self.join(local, entry.name))
            }
        } else {
            guard attributes.isRegularFile else { throw TeleportError.badParameter("\(remote) on the node is not a regular file") }
            try await downloadFile(remote, size: attributes.size ?? 0, to: local, mode: mode)
        }
        if preserve {
            if let atime = attributes.accessTime, let mtime = attributes.modificationTime {
                let times = [timespec(tv_sec: Int(atime), tv_nsec: 0), timespec(tv_sec: Int(mtime), tv_nsec: 0)]
                _ = utimensat(AT_FDCWD, local, times, 0)
            }
            _ = chmod(local, mode)
        }
    }

    private func downloadFile(_ remote: String, size: UInt64, to local: String, mode: mode_t) async throws {
        let handle = try await sftp.openFile(remote, flags: .read)
        let fd = Glibc.open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            try? await sftp.closeHandle(handle, path: remote)
            throw TeleportError.accessDenied("\(local): \(reason)")
        }
        defer { Glibc.close(fd) }
        struct Request {
            var offset: UInt64
            var length: Int
            var reply: EventLoopFuture<SFTPClient.Reply>
        }
        var queue: [Request] = []
        var head = 0
        var next: UInt64 = 0
        var endOfFile = false
        var failure: (any Error)?
        func ask(_ offset: UInt64, _ length: Int) {
            queue.append(Request(offset: offset, length: length, reply: sftp.read(handle, offset: offset, length: length)))
        }
        while failure == nil {
            // Ask ahead up to the size the node reported; past it, one request at a time finds the end.
            while !endOfFile, queue.count - head < sftp.window, next < size || queue.count == head {
                ask(next, sftp.chunk)
                next += UInt64(sftp.chunk)
            }
            if queue.count == head { break }
            let request = queue[head]
            head += 1
            do {
                let reply = try await request.reply.get()
                if reply.type == SFTPClient.PacketType.status.rawValue, SFTPClient.statusCode(reply) == SFTPClient.StatusCode.eof.rawValue {
                    endOfFile = true
                    continue
                }
                var body = try SFTPClient.expect(reply, .data, path: remote)
                guard let data = body.readSFTPString(), data.readableBytes <= request.length else { throw SFTPClient.malformed(remote) }
                try Self.writeAll(fd, data, at: request.offset, path: local)
                if data.readableBytes < request.length, data.readableBytes > 0 {
                    // A short read: ask again for the rest.
                    ask(request.offset + UInt64(data.readableBytes), request.length - data.readableBytes)
                } else if data.readableBytes == 0 {
                    endOfFile = true
                }
            } catch {
                failure = error
            }
            if head > 1024 {
                queue.removeFirst(head)
                head = 0
            }
        }
        for request in queue[head...] { _ = try? await request.reply.get() }
        try? await sftp.closeHandle(handle, path: remote)
        if let failure { throw failure }
    }

    static func writeAll(_ fd: CInt, _ data: ByteBuffer, at offset: UInt64, path: String) throws {
        try data.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress else { return }
            var done = 0
            while done < raw.count {
                let written = pwrite(fd, base + done, raw.count - done, off_t(offset) + off_t(done))
                if written < 0 {
                    if errno == EINTR { continue }
                    throw TeleportError.accessDenied("\(path): \(String(cString: strerror(errno)))")
                }
                done += written
            }
        }
    }

    // MARK: Paths

    static func baseName(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        return trimmed.split(separator: "/").last.map(String.init) ?? String(trimmed)
    }

    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}
