import Foundation
public import Glibc
import TeleportAPI

/// An OS account a session runs as, from the system's user database (`getpwnam`).
public struct LoginUser: Sendable, Equatable {
    /// The login name.
    public let name: String
    /// Its user and primary group IDs.
    public let uid: uid_t
    public let gid: gid_t
    /// Its home directory and shell.
    public let home: String
    public let shell: String
    /// Every group it belongs to (primary first), as `initgroups` would set them.
    public let groups: [gid_t]

    /// Looks `name` up; `notFound` when the host has no such account.
    public static func lookup(_ name: String) throws -> LoginUser {
        guard !name.isEmpty, !name.contains("/"), !name.contains("\0") else {
            throw TeleportError.badParameter("\(name.debugDescription) is not a valid login")
        }
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        let status = getpwnam_r(name, &entry, &buffer, buffer.count, &result)
        guard status == 0, let found = result?.pointee else {
            throw TeleportError.notFound("login \(name.debugDescription) does not exist on this host")
        }
        let shellPath = found.pw_shell.map { String(cString: $0) } ?? ""
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, found.pw_gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, found.pw_gid, &groups, &count)
        }
        return LoginUser(
            name: name, uid: found.pw_uid, gid: found.pw_gid,
            home: found.pw_dir.map { String(cString: $0) } ?? "/",
            shell: shellPath.isEmpty ? "/bin/sh" : shellPath,
            groups: Array(groups.prefix(Int(max(count, 0)))))
    }

    /// The account the daemon runs as.
    public static func current() throws -> LoginUser {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwuid_r(getuid(), &entry, &buffer, buffer.count, &result) == 0, let found = result?.pointee,
            let name = found.pw_name
        else {
            throw TeleportError.internalError("the daemon's own user (uid \(getuid())) is not in the user database")
        }
        return try lookup(String(cString: name))
    }

    /// The `PATH` a login session starts with.
    public var defaultPath: String {
        uid == 0
            ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            : "/usr/local/bin:/usr/bin:/bin:/usr/games"
    }
}
