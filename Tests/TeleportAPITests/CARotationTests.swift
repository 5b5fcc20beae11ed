import Foundation
import TeleportAPI
import Testing

@Suite("CARotation")
struct CARotationTests {
    typealias Phase = CARotation.Phase
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func at(_ phase: Phase, mode: CARotation.Mode = .manual) -> CertAuthority.Rotation {
        guard phase != .standby else { return CertAuthority.Rotation() }
        return CertAuthority.Rotation(
            state: "in_progress", phase: phase.rawValue, mode: mode.rawValue, started: t0, gracePeriodSeconds: 30,
            schedule: mode == .auto
                ? .init(updateClients: t0.addingTimeInterval(10), updateServers: t0.addingTimeInterval(20), standby: t0.addingTimeInterval(30))
                : nil)
    }

    /// Every manual transition the phases allow, and what it does to the keys.
    @Test(arguments: [
        (Phase.standby, Phase.initialized, CARotation.KeyAction.addNewKeys),
        (.initialized, .updateClients, .swapKeys),
        (.updateClients, .updateServers, .none),
        (.updateServers, .standby, .dropAdditionalKeys),
        (.initialized, .rollback, .none),
        (.updateClients, .rollback, .swapKeys),
        (.updateServers, .rollback, .swapKeys),
        (.rollback, .standby, .dropAdditionalKeys),
    ])
    func allowedManualTransitions(from: Phase, to: Phase, keys: CARotation.KeyAction) throws {
        let step = try #require(try CARotation.next(Self.at(from), .setPhase(to, now: Self.t0.addingTimeInterval(5))))
        #expect(step.from == from)
        #expect(step.to == to)
        #expect(step.keys == keys)
        #expect(step.rotation.phase == to.rawValue)
        #expect(step.rotation.state == (to == .standby ? "standby" : "in_progress"))
    }

    /// Every other pair is refused, naming the phases that may come next.
    @Test(arguments: Phase.allCases)
    func refusedManualTransitions(from: Phase) {
        let allowed: [Phase: Set<Phase>] = [
            .standby: [.initialized], .initialized: [.updateClients, .rollback], .updateClients: [.updateServers, .rollback],
            .updateServers: [.standby, .rollback], .rollback: [.standby],
        ]
        for to in Phase.allCases where !(allowed[from] ?? []).contains(to) {
            #expect(throws: TeleportError.badParameter("")) { try CARotation.next(Self.at(from), .setPhase(to, now: Self.t0)) }
            do {
                _ = try CARotation.next(Self.at(from), .setPhase(to, now: Self.t0))
            } catch let error as TeleportError {
                for next in allowed[from] ?? [] { #expect(error.message.contains(next.rawValue), "\(from)->\(to): \(error.message)") }
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
    }

    @Test func updateServersFromStandbyIsRefusedWithTheWayToStart() {
        do {
            _ = try CARotation.next(nil, .setPhase(.updateServers, now: Self.t0))
            Issue.record("allowed")
        } catch let error as TeleportError {
            #expect(error.code == .badParameter)
            #expect(error.message == "cannot move the rotation from standby to update_servers (from standby the next phase may be: init)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test(arguments: [Phase.initialized, .updateClients, .updateServers, .rollback])
    func startWhileRotatingIsRefused(phase: Phase) {
        #expect(throws: TeleportError.badParameter("")) {
            try CARotation.next(Self.at(phase), .start(mode: .auto, gracePeriod: 30, now: Self.t0))
        }
    }

    @Test(arguments: [0.0, -1, CARotation.maximumGracePeriod + 1])
    func badGracePeriods(grace: Double) {
        #expect(throws: TeleportError.badParameter("")) { try CARotation.next(nil, .start(mode: .auto, gracePeriod: grace, now: Self.t0)) }
    }

    @Test func automaticStartSchedulesThePhasesInThirds() throws {
        let step = try #require(try CARotation.next(nil, .start(mode: .auto, gracePeriod: 48 * 3600, now: Self.t0)))
        #expect(step.keys == .addNewKeys)
        #expect(step.rotation.mode == "auto")
        #expect(step.rotation.started == Self.t0)
        #expect(abs((step.rotation.gracePeriodSeconds ?? 0) - 172_800) < 0.001)
        let schedule = try #require(step.rotation.schedule)
        #expect(abs(schedule.updateClients.timeIntervalSince(Self.t0) - 16 * 3600) < 0.001)
        #expect(abs(schedule.updateServers.timeIntervalSince(Self.t0) - 32 * 3600) < 0.001)
        #expect(abs(schedule.standby.timeIntervalSince(Self.t0) - 48 * 3600) < 0.001)
    }

    /// The automatic mode on a manual clock: nothing moves before its time, each phase at its time.
    @Test(arguments: [
        (Phase.initialized, 9.9, Phase?.none), (.initialized, 10, .updateClients),
        (.updateClients, 19.9, nil), (.updateClients, 20, .updateServers),
        (.updateServers, 29.9, nil), (.updateServers, 30, .standby),
        (.rollback, 100, nil), (.standby, 100, nil),
    ])
    func automaticTicks(phase: Phase, after seconds: Double, next: Phase?) throws {
        let step = try CARotation.next(Self.at(phase, mode: .auto), .tick(now: Self.t0.addingTimeInterval(seconds)))
        #expect(step?.to == next)
        if next == .standby {
            #expect(step?.rotation.lastRotated == Self.t0.addingTimeInterval(seconds))
            #expect(step?.rotation.mode == nil)
        }
    }

    @Test func aManualRotationDoesNotTick() throws {
        #expect(try CARotation.next(Self.at(.initialized), .tick(now: Self.t0.addingTimeInterval(1e6))) == nil)
    }

    @Test func aManualPhaseOrRollbackTurnsAnAutomaticRotationManual() throws {
        let manual = try #require(try CARotation.next(Self.at(.initialized, mode: .auto), .setPhase(.updateClients, now: Self.t0)))
        #expect(manual.rotation.mode == "manual")
        #expect(manual.rotation.schedule == nil)
        let rolledBack = try #require(try CARotation.next(Self.at(.updateServers, mode: .auto), .setPhase(.rollback, now: Self.t0)))
        #expect(rolledBack.rotation.mode == "manual")
        #expect(try CARotation.next(rolledBack.rotation, .tick(now: Self.t0.addingTimeInterval(1e6))) == nil)
    }

    @Test func aRollbackIsNotARotation() throws {
        let rolledBack = try #require(try CARotation.next(Self.at(.updateClients), .setPhase(.rollback, now: Self.t0)))
        let done = try #require(try CARotation.next(rolledBack.rotation, .setPhase(.standby, now: Self.t0.addingTimeInterval(5))))
        #expect(done.rotation.lastRotated == nil)
        #expect(done.rotation.state == "standby")
    }

    // MARK: keys

    static func keys(_ tag: String) -> CertAuthority.KeySet {
        .init(ssh: [.init(publicKey: "ssh-ed25519 \(tag)", privateKey: "priv-\(tag)")], tls: [.init(cert: "cert-\(tag)", key: "key-\(tag)")])
    }

    /// Which key set signs and which are trusted in each phase of a full rotation, and of a rollback.
    @Test func keysThroughARotationAndARollback() throws {
        var ca = CertAuthority(type: .host, clusterName: "c", activeKeys: Self.keys("old"))
        ca = try ca.applying(.addNewKeys, newKeys: Self.keys("new"))  // init
        #expect(ca.spec.activeKeys == Self.keys("old"))
        #expect(ca.trustedKeys.tls.map(\.cert) == ["cert-old", "cert-new"])
        ca = try ca.applying(.swapKeys)  // update_clients
        #expect(ca.spec.activeKeys == Self.keys("new"))
        #expect(ca.trustedKeys.tls.map(\.cert) == ["cert-new", "cert-old"])
        let updateClients = ca
        ca = try ca.applying(.dropAdditionalKeys)  // standby
        #expect(ca.trustedKeys.tls.map(\.cert) == ["cert-new"])
        #expect(ca.spec.retiredSSHPublicKeys == ["ssh-ed25519 old"])

        var rolled = try updateClients.applying(.swapKeys)  // rollback
        #expect(rolled.spec.activeKeys == Self.keys("old"))
        #expect(rolled.trustedKeys.tls.map(\.cert) == ["cert-old", "cert-new"])
        rolled = try rolled.applying(.dropAdditionalKeys)  // standby
        #expect(rolled.trustedKeys == Self.keys("old"))
    }

    @Test func withoutSecretsStripsTheAdditionalKeysToo() throws {
        let ca = try CertAuthority(type: .user, clusterName: "c", activeKeys: Self.keys("old")).applying(.addNewKeys, newKeys: Self.keys("new"))
        let stripped = ca.withoutSecrets
        #expect(stripped.spec.additionalTrustedKeys?.ssh.first?.privateKey == nil)
        #expect(stripped.spec.additionalTrustedKeys?.tls.first?.key == nil)
        #expect(stripped.spec.additionalTrustedKeys?.tls.first?.cert == "cert-new")
    }

    @Test func swapWithoutNewKeysIsAnError() {
        let ca = CertAuthority(type: .user, clusterName: "c", activeKeys: Self.keys("old"))
        #expect(throws: TeleportError.internalError("")) { try ca.applying(.swapKeys) }
        #expect(throws: TeleportError.internalError("")) { try ca.applying(.addNewKeys) }
    }

    /// A CA stored before rotation existed (no mode, schedule or additional keys) still decodes, and
    /// a rotating one survives a YAML round trip.
    @Test func oldAndRotatingCAsDecode() throws {
        let old = """
            kind: cert_authority
            version: v2
            metadata:
              name: user
            spec:
              type: user
              cluster_name: c
              active_keys:
                ssh: [{public_key: "ssh-ed25519 AAAA", private_key: "x"}]
                tls: [{cert: "c", key: "k"}]
              rotation:
                state: standby
            """
        let decoded = try ResourceCodec.decodeDocuments(old, source: "test")
        guard case .certAuthority(let ca) = decoded.first else { Issue.record("kind"); return }
        #expect(ca.rotationPhase == .standby)
        #expect(ca.spec.additionalTrustedKeys == nil)

        var rotating = try ca.applying(.addNewKeys, newKeys: Self.keys("new"))
        rotating.spec.rotation = try #require(try CARotation.next(ca.spec.rotation, .start(mode: .auto, gracePeriod: 30, now: Self.t0))).rotation
        let text = try ResourceCodec.yaml(rotating)
        guard case .certAuthority(let back) = try ResourceCodec.decodeDocuments(text, source: "test").first else { Issue.record("kind"); return }
        #expect(back.spec.additionalTrustedKeys == rotating.spec.additionalTrustedKeys)
        #expect(back.spec.rotation == rotating.spec.rotation)
        #expect(back.rotationPhase == .initialized)
    }
}
