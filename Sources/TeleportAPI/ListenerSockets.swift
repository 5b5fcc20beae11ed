import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon's listening sockets, the one place every listener gets its socket from (issue 19).
///
/// A listener asks ``socket(host:port:)`` for a bound, listening TCP socket: a process started by
/// a graceful restart finds the socket its parent handed it (``environmentKey`` names inherited
/// descriptors by address), any other process binds a new one. Either way the socket is recorded,
/// so that the next restart can hand it on (``handoff``), ``stopAccepting()`` can close every
/// listener at once, and each service's open connections are counted (``opened(_:)``).
public final class ListenerSockets: Sendable {
    /// The process's sockets.
    public static let shared = ListenerSockets(environment: ProcessInfo.processInfo.environment)

    /// `TELEPORT_LISTEN_FDS`: `ADDRESS=FD` pairs separated by commas, e.g. `127.0.0.1:3022=3,[::]:3080=4`.
    public static let environmentKey = "TELEPORT_LISTEN_FDS"

    /// One open listening socket.
    public struct Socket: Sendable, Equatable {
        /// `host:port` as configured (the key a new process finds it by).
        public var address: String
        /// The descriptor.
        public var fd: Int32

        /// A socket.
        public init(address: String, fd: Int32) {
            self.address = address
            self.fd = fd
        }
    }

    private struct State {
        var inherited: [String: Int32]
        var open: [Socket] = []
        var stoppers: [Int: @Sendable () async -> Void] = [:]
        var afterStop: [Int: @Sendable () async -> Void] = [:]
        var nextStopper = 0
        var stopped = false
        var connections: [String: Int] = [:]
        var closers: [Int: (service: String, close: @Sendable () -> Void)] = [:]
        var nextCloser = 0
        var held = false
        var waiting: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }
    private let state: Mutex<State>

    /// A registry that adopts the descriptors `environment` names.
    public init(environment: [String: String]) {
        state = Mutex(State(inherited: Self.parse(environment[Self.environmentKey] ?? "")))
    }

    /// Parses `ADDRESS=FD,...`; malformed pairs are skipped.
    public static func parse(_ text: String) -> [String: Int32] {
        var result: [String: Int32] = [:]
        for pair in text.split(separator: ",") {
            guard let equals = pair.lastIndex(of: "="), let fd = Int32(pair[pair.index(after: equals)...]), fd >= 0 else { continue }
            result[String(pair[..<equals])] = fd
        }
        return result
    }

    /// Formats sockets as ``environmentKey``'s value.
    public static func format(_ sockets: [Socket]) -> String {
        sockets.map { "\($0.address)=\($0.fd)" }.joined(separator: ",")
    }

    /// The addresses handed over by the parent process, not yet taken by a listener.
    public var inheritedAddresses: Set<String> {
        state.withLock { Set($0.inherited.keys) }
    }

    /// True when `host:port` came from the parent process (and has not been taken yet).
    public func isInherited(host: String, port: Int) -> Bool {
        state.withLock { $0.inherited[HostPort.join(host, port)] != nil }
    }

    /// A listening socket for `host:port`: the inherited one, or a new one (SO_REUSEADDR, backlog
    /// 512). The caller's listener owns the descriptor; it reports its end with ``closed(_:)``.
    public func socket(host: String, port: Int) throws -> Socket {
        let address = HostPort.join(host, port)
        if let fd = state.withLock({ $0.inherited.removeValue(forKey: address) }) {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            let socket = Socket(address: address, fd: fd)
            state.withLock { $0.open.append(socket) }
            return socket
        }
        let fd = try Self.bindListening(host: host, port: port)
        let socket = Socket(address: address, fd: fd)
        state.withLock { $0.open.append(socket) }
        return socket
    }

    /// Forgets a socket its listener closed.
    public func closed(_ socket: Socket) {
        state.withLock { $0.open.removeAll { $0 == socket } }
    }

    /// The sockets open now: what a restart hands to the new process.
    public var handoff: [Socket] { state.withLock { $0.open } }

    /// Holds every listener back from accepting until ``resumeAccepting()``: a process started by a
    /// graceful restart shares its sockets with its parent until the parent stops accepting
    /// (connections wait in the kernel's queue meanwhile), so the two never race for one connection.
    public func holdAccepting() {
        state.withLock { $0.held = true }
    }

    /// Lets held listeners accept.
    public func resumeAccepting() {
        let waiting = state.withLock { state in
            defer { state.waiting = [:] }
            state.held = false
            return Array(state.waiting.values)
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Returns once listeners may accept, or when the task is cancelled (a process that fails
    /// while held must still stop).
    public func untilAccepting() async {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    guard state.held, !Task.isCancelled else { return true }
                    state.waiting[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiting.removeValue(forKey: id) }?.resume()
        }
    }

    /// Closes inherited descriptors no listener took (a listener removed from the configuration).
    public func closeUnclaimed() {
        let unclaimed = state.withLock { state in
            defer { state.inherited = [:] }
            return Array(state.inherited.values)
        }
        for fd in unclaimed { close(fd) }
    }

    /// Registers how a listener stops accepting; returns a token for ``unregister(_:)``. A listener
    /// registered after ``stopAccepting()`` is stopped at once.
    @discardableResult
    public func onStopAccepting(_ stop: @escaping @Sendable () async -> Void) async -> Int {
        let (token, already) = state.withLock { state -> (Int, Bool) in
            state.nextStopper += 1
            state.stoppers[state.nextStopper] = stop
            return (state.nextStopper, state.stopped)
        }
        if already { await stop() }
        return token
    }

    /// Registers what to do once every listener stopped accepting (a proxy tells its reverse
    /// tunnel agents it drains: their new dials can only reach the new process then); returns a
    /// token for ``unregister(_:)``. Registered after ``stopAccepting()``, it runs at once.
    @discardableResult
    public func afterStopAccepting(_ body: @escaping @Sendable () async -> Void) async -> Int {
        let (token, already) = state.withLock { state -> (Int, Bool) in
            state.nextStopper += 1
            state.afterStop[state.nextStopper] = body
            return (state.nextStopper, state.stopped)
        }
        if already { await body() }
        return token
    }

    /// Forgets a listener's stop (or an ``afterStopAccepting(_:)`` action).
    public func unregister(_ token: Int) {
        state.withLock { state in
            state.stoppers.removeValue(forKey: token)
            state.afterStop.removeValue(forKey: token)
        }
    }

    /// Closes every listener (open connections go on), then runs the ``afterStopAccepting(_:)`` actions.
    public func stopAccepting() async {
        let (stoppers, after) = state.withLock { state in
            state.stopped = true
            return (Array(state.stoppers.values), state.afterStop.sorted { $0.key < $1.key }.map(\.value))
        }
        for stop in stoppers { await stop() }
        for body in after { await body() }
    }

    /// Counts a new connection of `service` (`node SSH`, `proxy SSH`, `proxy web`, ...); call the
    /// returned closure once when it ends. `close` ends it at once (a fast stop).
    public func opened(_ service: String, close: @escaping @Sendable () -> Void) -> @Sendable () -> Void {
        let token = state.withLock { state in
            state.connections[service, default: 0] += 1
            state.nextCloser += 1
            state.closers[state.nextCloser] = (service, close)
            return state.nextCloser
        }
        let once = Mutex(false)
        return { [self] in
            guard once.withLock({ done in defer { done = true }; return !done }) else { return }
            state.withLock { state in
                state.connections[service, default: 1] -= 1
                state.closers.removeValue(forKey: token)
            }
        }
    }

    /// Open connections per service.
    public var connections: [String: Int] { state.withLock { $0.connections } }

    /// Open connections of `services`, summed.
    public func openConnections(of services: Set<String>) -> Int {
        state.withLock { state in state.connections.filter { services.contains($0.key) }.values.reduce(0, +) }
    }

    /// Closes every open connection (SIGTERM: the seed's "all existing connections will be dropped").
    public func closeAllConnections() {
        let closers = state.withLock { Array($0.closers.values) }
        for closer in closers { closer.close() }
    }

    /// Binds and listens on `host:port`; a one-line ``TeleportError`` names the errno.
    static func bindListening(host: String, port: Int) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let lookup = getaddrinfo(host.isEmpty ? nil : host, String(port), &hints, &result)
        guard lookup == 0, let first = result else {
            throw TeleportError.connectionProblem("cannot resolve \(HostPort.join(host, port)): \(String(cString: gai_strerror(lookup)))")
        }
        defer { freeaddrinfo(result) }
        let fd = Glibc.socket(first.pointee.ai_family, first.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), first.pointee.ai_protocol)
        guard fd >= 0 else { throw ListenSocketError(errno: errno) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, listen(fd, 512) == 0 else {
            let code = errno
            close(fd)
            throw ListenSocketError(errno: code)
        }
        return fd
    }
}

/// A failed `socket`/`bind`/`listen`, with its errno (for ``ListenError/describe(_:errno:address:key:)``).
public struct ListenSocketError: Error, Sendable {
    /// The errno.
    public let errno: Int32
}
