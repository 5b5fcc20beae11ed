/// What a running daemon does with its signals (issue 19), as a pure state machine: inputs in,
/// actions out, no I/O and no clock (``RestartController`` performs the actions).
///
/// `serving` → (SIGHUP) `forking(drain)` → (new process ready) `draining` → (no sessions left,
/// or `teleport.shutdown_delay` passed) `stopping`. SIGUSR2 forks and goes to `retired`: the new
/// process takes the new connections, this one keeps serving the ones it has, without stopping
/// when they end (two processes serve until SIGQUIT or SIGTERM stops this one); SIGQUIT drains
/// without a new process; SIGTERM/SIGINT stop at once; a new process that fails leaves this one
/// `serving`. Whenever a new process is ready this one stops accepting (`stopAccepting` also lets
/// the new one accept): two processes never accept on one socket at once.
package struct GracefulRestart: Sendable, Equatable {
    /// Where the process is.
    package enum State: Sendable, Equatable {
        /// Accepting and serving.
        case serving
        /// A new process is starting; `thenDrain` after SIGHUP, not after SIGUSR2.
        case forking(thenDrain: Bool)
        /// Not accepting after SIGUSR2; open sessions go on, and the process stays.
        case retired
        /// Not accepting; open sessions go on until they end, then the process stops.
        case draining
        /// The service group is stopping.
        case stopping
    }

    /// The signals the daemon traps.
    package enum Signal: String, Sendable, Equatable, CaseIterable {
        case hangup = "SIGHUP", user1 = "SIGUSR1", user2 = "SIGUSR2", quit = "SIGQUIT", terminate = "SIGTERM", interrupt = "SIGINT"
    }

    /// What happened.
    package enum Input: Sendable, Equatable {
        case signal(Signal)
        /// The new process said it is ready.
        case childReady(pid: Int32)
        /// The new process exited or did not get ready; the reason, for the log.
        case childFailed(String)
        /// No session is open any more.
        case drained
        /// `teleport.shutdown_delay` passed while draining.
        case drainDeadline
    }

    /// What to do, in order.
    package enum Action: Sendable, Equatable {
        /// Start a new process with the listening sockets; report `childReady`/`childFailed`.
        case spawnChild
        /// Close every listener and answer `/readyz` with 503.
        case stopAccepting
        /// Wait for open sessions to end; report `drained` or `drainDeadline`.
        case waitForDrain
        /// Close every open connection now.
        case closeConnections
        /// Stop the service group.
        case shutDown
        /// Write the diagnostic dump (SIGUSR1) to the log.
        case dump
        /// Log a line at info level.
        case info(String)
        /// Log a line at warning level.
        case warning(String)
    }

    /// The current state.
    package private(set) var state = State.serving

    /// A machine in `serving`.
    package init() {}

    /// Takes one input and returns the actions to perform.
    package mutating func handle(_ input: Input) -> [Action] {
        switch (state, input) {
        case (_, .signal(.user1)):
            return [.dump]
        case (.stopping, .signal(let signal)):
            return [.info("\(signal.rawValue): already stopping")]
        case (_, .signal(.terminate)), (_, .signal(.interrupt)):
            guard case .signal(let signal) = input else { return [] }
            state = .stopping
            return [.info("\(signal.rawValue): stopping now; open connections are closed"), .stopAccepting, .closeConnections, .shutDown]
        case (.serving, .signal(.hangup)):
            state = .forking(thenDrain: true)
            return [.info("SIGHUP: starting a new teleport process; this one drains once it is ready"), .spawnChild]
        case (.serving, .signal(.user2)):
            state = .forking(thenDrain: false)
            return [.info("SIGUSR2: starting a new teleport process to serve beside this one"), .spawnChild]
        case (.forking, .signal(.hangup)), (.forking, .signal(.user2)):
            guard case .signal(let signal) = input else { return [] }
            return [.warning("\(signal.rawValue) ignored: a new process is already starting")]
        case (.draining, .signal(.hangup)), (.draining, .signal(.user2)), (.retired, .signal(.hangup)), (.retired, .signal(.user2)):
            guard case .signal(let signal) = input else { return [] }
            return [.warning("\(signal.rawValue) ignored: a newer process accepts the connections; signal the process in the pid file")]
        case (.retired, .signal(.quit)):
            state = .draining
            return [.info("SIGQUIT: graceful stop: open sessions go on until they end"), .waitForDrain]
        case (.serving, .signal(.quit)), (.forking, .signal(.quit)):
            state = .draining
            return [.info("SIGQUIT: graceful stop: no new connections; open sessions go on until they end"), .stopAccepting, .waitForDrain]
        case (.draining, .signal(.quit)):
            return [.info("SIGQUIT: already draining")]
        case (.forking(let thenDrain), .childReady(let pid)):
            if thenDrain {
                state = .draining
                return [
                    .info("the new teleport process (pid \(pid)) is ready; this one stops accepting and drains its open sessions"),
                    .stopAccepting, .waitForDrain,
                ]
            }
            state = .retired
            return [
                .info("the new teleport process (pid \(pid)) is ready and takes the new connections; this one keeps serving its open sessions (SIGQUIT stops it gracefully)"),
                .stopAccepting,
            ]
        case (.forking, .childFailed(let reason)):
            state = .serving
            return [.warning("graceful restart failed: \(reason); this process keeps serving")]
        case (.draining, .childReady(let pid)), (.stopping, .childReady(let pid)):
            return [.info("the new teleport process (pid \(pid)) is ready"), .stopAccepting]
        case (.draining, .childFailed(let reason)), (.stopping, .childFailed(let reason)):
            return [.warning("the new teleport process failed: \(reason)")]
        case (.draining, .drained):
            state = .stopping
            return [.info("every session has ended; stopping"), .shutDown]
        case (.draining, .drainDeadline):
            state = .stopping
            return [.warning("teleport.shutdown_delay passed with sessions still open; closing them"), .closeConnections, .shutDown]
        case (.serving, _), (.forking, _), (.retired, _), (.draining, _), (.stopping, _):
            return []
        }
    }
}
