import Logging
import NIOCore
import Synchronization
import TeleportAPI

extension ReverseTunnelAgent {
    /// Keeps a tunnel to every proxy of the cluster through the one configured address (which may
    /// be a load balancer) until the task is cancelled: ``ProxyPool`` decides when to dial; a dial
    /// that reaches a proxy already held is closed before it logs in; each tunnel is held (with
    /// its keepalives) by a child task; `discover` is asked every
    /// ``Configuration/discoveryInterval`` and a proxy whose record disappeared loses its tunnel.
    func runPool(discover: @escaping @Sendable () async throws -> [String]) async {
        let clock = ContinuousClock()
        let origin = clock.now
        let now: @Sendable () -> Duration = { clock.now - origin }
        let state = PoolState(pool: ProxyPool(settings: configuration.pool))
        let logger = self.logger
        let interval = configuration.discoveryInterval
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    do {
                        let proxies = try await discover()
                        let dropped = state.pool.withLock { $0.discovered(proxies) }
                        for proxy in dropped {
                            logger.info("proxy \(proxy) is no longer registered; closing its reverse tunnel")
                            state.open.withLock { $0[proxy] }?.close(promise: nil)
                        }
                    } catch {
                        logger.debug("cannot list the cluster's proxies; keeping the tunnels", metadata: ["tp.error": "\(error)"])
                    }
                    do { try await Task.sleep(for: interval) } catch { return }
                }
            }
            var announcedFailure = false
            while !Task.isCancelled {
                switch state.pool.withLock({ $0.tick(now: now()) }) {
                case .idle:
                    // Woken by time: a lost tunnel or a new proxy shows at the next tick.
                    do { try await Task.sleep(for: .milliseconds(250)) } catch { break }
                case .wait(let duration):
                    do { try await Task.sleep(for: min(duration, .milliseconds(250))) } catch { break }
                case .dial where isRetired:
                    // This process stops accepting: its tunnels close as their sessions end.
                    await Self.untilCancelled()
                case .dial:
                    // The address actually dialled (the ping may name another than the configured one).
                    var address = HostPort.join(configuration.proxyHost, configuration.proxyPort)
                    let tunnel: Tunnel
                    do {
                        let target = try await resolvedTarget()
                        address = HostPort.join(target.host, target.port)
                        tunnel = try await connect(to: target, wanted: { proxy in state.pool.withLock { $0.wants(proxy) } })
                    } catch let error as TeleportError where error.code == .alreadyExists {
                        state.pool.withLock { $0.duplicate(now: now()) }
                        logger.debug("the dial reached a proxy this agent holds a tunnel to; closed it", metadata: ["tp.error": "\(error.message)"])
                        continue
                    } catch {
                        state.pool.withLock { $0.dialFailed(now: now()) }
                        logger.log(
                            level: announcedFailure ? .debug : .warning, "cannot open a reverse tunnel; retrying",
                            metadata: ["tp.proxy": "\(address)", "tp.error": "\((error as? TeleportError)?.message ?? "\(error)")"])
                        announcedFailure = true
                        continue
                    }
                    announcedFailure = false
                    let proxy = tunnel.proxyID
                    let (kept, held, known) = state.pool.withLock { pool in
                        (pool.established(proxy: proxy, now: now()), pool.held.count, pool.known.count)
                    }
                    guard kept else {
                        tunnel.channel.close(promise: nil)
                        continue
                    }
                    state.open.withLock { $0[proxy] = tunnel.channel }
                    // A graceful restart of that proxy: seek its new process; this tunnel stays
                    // for its open channels (and closes itself when they end).
                    tunnel.use.onDrain { channels in
                        let sought = state.pool.withLock { $0.drainNotice(proxy: proxy, now: now()) }
                        state.open.withLock { if $0[proxy] === tunnel.channel { $0[proxy] = nil } }
                        if sought {
                            logger.info(
                                "proxy \(proxy) drains (a graceful restart); dialling its new process, keeping this tunnel for its \(channels) open channel(s)",
                                metadata: ["tp.proxy.id": "\(proxy)"])
                        }
                    }
                    logger.info(
                        "reverse tunnel to the proxy is up",
                        metadata: ["tp.proxy": "\(address)", "tp.proxy.id": "\(proxy)", "tp.tunnels": "\(held) of \(max(held, known))"])
                    group.addTask { [self] in
                        var machine = ReconnectMachine(settings: configuration.reconnect)
                        machine.connected(now: now())
                        _ = await hold(tunnel, machine: &machine, now: now)
                        state.open.withLock { if $0[proxy] === tunnel.channel { $0[proxy] = nil } }
                        if tunnel.use.isDraining {
                            // Its proxy drained: the tunnel to the proxy's new process (if any) stays held.
                            state.pool.withLock { $0.drainedTunnelEnded(proxy: proxy) }
                            logger.info("the draining tunnel to proxy \(proxy) ended", metadata: ["tp.proxy.id": "\(proxy)"])
                        } else {
                            state.pool.withLock { $0.lost(proxy: proxy, now: now()) }
                            logger.info("reverse tunnel to proxy \(proxy) ended", metadata: ["tp.proxy.id": "\(proxy)"])
                        }
                    }
                }
            }
            group.cancelAll()
        }
    }
}

/// The pool and the open tunnels, shared by the dial loop, the discovery loop and the tasks
/// holding tunnels.
final class PoolState: Sendable {
    let pool: Mutex<ProxyPool>
    let open = Mutex<[String: any Channel]>([:])

    init(pool: ProxyPool) { self.pool = Mutex(pool) }
}
