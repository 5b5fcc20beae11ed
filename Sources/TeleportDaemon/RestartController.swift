import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TeleportAPI

#if canImport(Glibc)
    import Glibc
#endif

/// Performs ``GracefulRestart``'s actions for the running daemon: starts the new process, stops
/// the listeners, waits for the sessions to drain, stops the service group, writes the SIGUSR1 dump.
final class RestartController: Sendable {
    /// The connections a drain waits for: sessions (SSH, databases). Web keep-alives, reverse
    /// tunnels and auth API long polls are closed when the group stops.
    static let drainedServices: Set<String> = ["node SSH", "proxy SSH", "database", "proxy postgres"]

    private let machine = Mutex(GracefulRestart())
    private let work = Mutex<[Task<Void, Never>]>([])
    /// The new process's accept pipe: closed once this process stopped accepting.
    private let acceptPipe = Mutex<Int32?>(nil)
    let group: ServiceGroup
    let readiness: Readiness
    let lock: Int32?
    let shutdownDelay: Duration
    let readyTimeout: Duration
    let services: [String]
    let pidFile: PIDFile?
    let logger: Logger

    init(
        group: ServiceGroup, readiness: Readiness, lock: Int32?, shutdownDelay: Duration, readyTimeout: Duration = .seconds(120),
        services: [String], pidFile: PIDFile?, logger: Logger
    ) {
        self.pidFile = pidFile
        self.group = group
        self.readiness = readiness
        self.lock = lock
        self.shutdownDelay = shutdownDelay
        self.readyTimeout = readyTimeout
        self.services = services
        self.logger = logger
    }

    /// The machine's state (the dump).
    var state: GracefulRestart.State { machine.withLock { $0.state } }

    /// Feeds one input and performs the actions.
    func feed(_ input: GracefulRestart.Input) async {
        let actions = machine.withLock { $0.handle(input) }
        for action in actions { await perform(action) }
    }

    /// Ends the background work (the group stopped).
    func finish() {
        for task in work.withLock({ $0 }) { task.cancel() }
    }

    private func background(_ body: @escaping @Sendable () async -> Void) {
        let task = Task { await body() }
        work.withLock { $0.append(task) }
    }

    private func perform(_ action: GracefulRestart.Action) async {
        switch action {
        case .info(let line): logger.info("\(line)")
        case .warning(let line): logger.warning("\(line)")
        case .dump: dump()
        case .spawnChild:
            let listeners = ListenerSockets.shared.handoff
            let (lock, timeout) = (self.lock, readyTimeout)
            background { [self] in
                do {
                    let child = try await ProcessHandoff.start(listeners: listeners, lock: lock, timeout: timeout)
                    acceptPipe.withLock { $0 = child.accept }
                    await feed(.childReady(pid: child.pid))
                } catch {
                    // The pid file names the serving process: this one again.
                    try? pidFile?.write()
                    await feed(.childFailed((error as? TeleportError)?.message ?? "\(error)"))
                }
            }
        case .stopAccepting:
            readiness.draining = true
            await ListenerSockets.shared.stopAccepting()
            if let pipe = acceptPipe.withLock({ pipe in defer { pipe = nil }; return pipe }) { close(pipe) }
        case .closeConnections:
            ListenerSockets.shared.closeAllConnections()
        case .waitForDrain:
            let delay = shutdownDelay
            background { [self] in
                let deadline = ContinuousClock.now + delay
                var open = ListenerSockets.shared.openConnections(of: Self.drainedServices)
                if open > 0 { logger.info("draining: \(open) open connection(s) go on until they end (at most teleport.shutdown_delay)") }
                var lastLog = ContinuousClock.now
                while open > 0 && ContinuousClock.now < deadline {
                    do { try await Task.sleep(for: .milliseconds(100)) } catch { return }
                    open = ListenerSockets.shared.openConnections(of: Self.drainedServices)
                    if ContinuousClock.now - lastLog > .seconds(60) {
                        lastLog = ContinuousClock.now
                        logger.info("draining: \(open) open connection(s) left")
                    }
                }
                await feed(open == 0 ? .drained : .drainDeadline)
            }
        case .shutDown:
            await group.triggerGracefulShutdown()
        }
    }

    /// SIGUSR1: the state, the services, the open connections per service, the listeners and the
    /// memory, each one line in the log.
    func dump() {
        let connections = ListenerSockets.shared.connections.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let listeners = ListenerSockets.shared.handoff.map(\.address)
        logger.info("diagnostics (SIGUSR1): pid \(getpid()), state \(state), \(services.count) services: \(services.joined(separator: ", "))")
        logger.info("diagnostics (SIGUSR1): open connections: \(connections.isEmpty ? "none" : connections.joined(separator: ", "))")
        logger.info("diagnostics (SIGUSR1): listeners: \(listeners.isEmpty ? "none" : listeners.joined(separator: ", "))")
        logger.info("diagnostics (SIGUSR1): \(Self.memory())")
    }

    /// Resident memory, its peak, threads and open descriptors, from /proc.
    static func memory() -> String {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        var fields: [String: String] = [:]
        for line in status.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            fields[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        return "memory: rss \(fields["VmRSS"] ?? "?"), peak \(fields["VmHWM"] ?? "?"), threads \(fields["Threads"] ?? "?"), open descriptors \(descriptors)"
    }
}
