#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import TeleportAPI

/// Whether a listen address's host can be bound here: an IP address, or a name this host resolves.
enum ListenHost {
    /// True for IP literals, `localhost` and names `getaddrinfo` resolves.
    static func isListenable(_ host: String) -> Bool {
        if host.isEmpty || host == "localhost" { return true }
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1 { return true }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &result)
        if let result { freeaddrinfo(result) }
        return status == 0
    }
}

/// Whether a label command can be run: an executable file by path, or a program found on `PATH`.
enum LabelCommandCheck {
    /// True when `program` (the first word of a command) names something `execvp` would run.
    static func isRunnable(_ program: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> Bool {
        guard !program.isEmpty else { return false }
        if program.contains("/") { return isExecutableFile(program) }
        let directories = (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init)
        return directories.contains { isExecutableFile($0 + "/" + program) }
    }

    static func isExecutableFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
            && FileManager.default.isExecutableFile(atPath: path)
    }
}
