import Foundation
import TeleportAPI
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// The descriptors a process started by a graceful restart got from its parent
/// (``ProcessHandoff``): the data directory's lock and the readiness pipe. The listening sockets
/// are ``ListenerSockets``'. Taken once at start; the variables are then removed from the
/// environment, so that nothing the daemon starts (sessions, command labels) sees them.
struct InheritedDescriptors: Sendable {
    /// The lock on `data_dir/teleport.lock`, held.
    var lock: Int32?
    /// Where to write `ready`.
    var ready: Int32?

    static func take() -> InheritedDescriptors {
        let environment = ProcessInfo.processInfo.environment
        // Reads TELEPORT_LISTEN_FDS before it is removed.
        _ = ListenerSockets.shared.inheritedAddresses
        func descriptor(_ key: String) -> Int32? {
            guard let fd = environment[key].flatMap(Int32.init), fd > 2, fcntl(fd, F_GETFD) >= 0 else { return nil }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            return fd
        }
        let inherited = InheritedDescriptors(lock: descriptor(ProcessHandoff.lockKey), ready: descriptor(ProcessHandoff.readyKey))
        if let accept = descriptor(ProcessHandoff.acceptKey) { holdUntilClosed(accept) }
        for key in [ListenerSockets.environmentKey, ProcessHandoff.lockKey, ProcessHandoff.readyKey, ProcessHandoff.acceptKey] { unsetenv(key) }
        return inherited
    }

    /// Holds the listeners until the parent closes its end of `descriptor` (it stopped accepting,
    /// or it died).
    static func holdUntilClosed(_ descriptor: Int32) {
        ListenerSockets.shared.holdAccepting()
        let thread = Thread {
            var byte: UInt8 = 0
            while true {
                let count = read(descriptor, &byte, 1)
                if count == 0 || (count < 0 && errno != EINTR) { break }
            }
            close(descriptor)
            ListenerSockets.shared.resumeAccepting()
        }
        thread.stackSize = 64 * 1024
        thread.start()
    }
}

extension GracefulRestart.Signal {
    /// The machine's name for a trapped signal.
    init?(_ signal: UnixSignal) {
        switch signal {
        case .sighup: self = .hangup
        case .sigusr1: self = .user1
        case .sigusr2: self = .user2
        case .sigquit: self = .quit
        case .sigterm: self = .terminate
        case .sigint: self = .interrupt
        default: return nil
        }
    }
}
