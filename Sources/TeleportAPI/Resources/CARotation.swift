public import Foundation

/// Certificate authority rotation as a pure state machine: a CA's ``CertAuthority/Rotation`` and an
/// input (start, a manual phase, a clock tick) in; the next rotation state and what to do with the
/// keys out. No I/O and no clock: the time comes with each input.
///
/// Phases, as Teleport defines them:
/// - `standby`: not rotating; only ``CertAuthority/Spec/activeKeys`` exist.
/// - `init`: new keys exist and are trusted (``CertAuthority/Spec/additionalTrustedKeys``); the old
///   keys still sign. Every component learns to trust the new keys.
/// - `update_clients`: the new keys sign (they become the active set; the old ones stay trusted).
///   Clients get certificates from the new CA.
/// - `update_servers`: servers present certificates of the new CA; both still trusted.
/// - `standby` again: the old keys are no longer trusted.
/// - `rollback` (from `init`, `update_clients` or `update_servers`): the old keys sign again, the new
///   ones stay trusted so that components can renew back; `standby` then drops the new keys.
///
/// `auto` mode moves `init` → `update_clients` → `update_servers` → `standby` on a schedule that cuts
/// the grace period in thirds; a manual phase change (and a rollback) turns the rotation manual.
public enum CARotation {
    /// A rotation phase (`init` is a Swift keyword: ``initialized``).
    public enum Phase: String, Sendable, CaseIterable, Codable {
        /// Not rotating.
        case standby
        /// New keys trusted, old keys sign.
        case initialized = "init"
        /// New keys sign, both trusted.
        case updateClients = "update_clients"
        /// Servers use new certificates, both trusted.
        case updateServers = "update_servers"
        /// Old keys sign again, new keys still trusted until `standby`.
        case rollback
    }

    /// How the phases advance.
    public enum Mode: String, Sendable, CaseIterable {
        /// On the schedule (the grace period in thirds).
        case auto
        /// Only by `tctl auth rotate --manual --phase=...`.
        case manual
    }

    /// What to do with the CA's keys on a transition.
    public enum KeyAction: Sendable, Equatable {
        /// Nothing.
        case none
        /// Generate new keys and trust them beside the active ones (`standby` → `init`).
        case addNewKeys
        /// The new (additional) keys become active; the old active ones stay trusted (`init` → `update_clients`).
        case swapKeys
        /// Drop the additional keys (the old ones at the end of a rotation, the new ones after a rollback).
        case dropAdditionalKeys
    }

    /// An input.
    public enum Input: Sendable, Equatable {
        /// `tctl auth rotate` (automatic) or `--manual --phase=init`.
        case start(mode: Mode, gracePeriod: TimeInterval, now: Date)
        /// `tctl auth rotate --manual --phase=PHASE`.
        case setPhase(Phase, now: Date)
        /// The automatic rotation service's periodic look.
        case tick(now: Date)
    }

    /// A transition: the new rotation state and what to do with the keys.
    public struct Step: Sendable, Equatable {
        /// The phase before.
        public var from: Phase
        /// The phase after.
        public var to: Phase
        /// The CA's new rotation state.
        public var rotation: CertAuthority.Rotation
        /// What to do with the keys.
        public var keys: KeyAction
    }

    /// The default grace period (the seed's 48 hours).
    public static let defaultGracePeriod: TimeInterval = 48 * 3600

    /// The longest grace period accepted (a year).
    public static let maximumGracePeriod: TimeInterval = 365 * 86400

    /// The next state for `input`, or nil when a tick has nothing to do.
    ///
    /// - Throws: ``TeleportError`` `badParameter` for a transition the phases do not allow (it names
    ///   the phases that may come next) or a bad grace period.
    public static func next(_ current: CertAuthority.Rotation?, _ input: Input) throws -> Step? {
        let rotation = current ?? CertAuthority.Rotation()
        let phase = Phase(rawValue: rotation.phase ?? "standby") ?? .standby
        switch input {
        case .start(let mode, let gracePeriod, let now):
            guard gracePeriod > 0, gracePeriod <= maximumGracePeriod else {
                throw TeleportError.badParameter("--grace-period must be positive and at most 8760h (a year), e.g. --grace-period=48h")
            }
            guard phase == .standby else { throw refusal(from: phase, to: .initialized) }
            var next = rotation
            next.state = "in_progress"
            next.phase = Phase.initialized.rawValue
            next.mode = mode.rawValue
            next.started = now
            next.gracePeriodSeconds = gracePeriod
            next.schedule =
                mode == .auto
                ? CertAuthority.Schedule(
                    updateClients: now.addingTimeInterval(gracePeriod / 3), updateServers: now.addingTimeInterval(2 * gracePeriod / 3),
                    standby: now.addingTimeInterval(gracePeriod))
                : nil
            return Step(from: phase, to: .initialized, rotation: next, keys: .addNewKeys)
        case .setPhase(let target, let now):
            if target == .initialized, phase == .standby {
                return try next(rotation, .start(mode: .manual, gracePeriod: rotation.gracePeriodSeconds ?? defaultGracePeriod, now: now))
            }
            guard let keys = allowed(from: phase, to: target) else { throw refusal(from: phase, to: target) }
            return Step(from: phase, to: target, rotation: moved(rotation, from: phase, to: target, mode: .manual, now: now), keys: keys)
        case .tick(let now):
            guard rotation.state == "in_progress", rotation.mode == Mode.auto.rawValue, let schedule = rotation.schedule else { return nil }
            let target: Phase
            switch phase {
            case .initialized where now >= schedule.updateClients: target = .updateClients
            case .updateClients where now >= schedule.updateServers: target = .updateServers
            case .updateServers where now >= schedule.standby: target = .standby
            default: return nil
            }
            guard let keys = allowed(from: phase, to: target) else { return nil }
            return Step(from: phase, to: target, rotation: moved(rotation, from: phase, to: target, mode: .auto, now: now), keys: keys)
        }
    }

    /// The key action of an allowed manual transition, nil when it is not allowed.
    static func allowed(from: Phase, to: Phase) -> KeyAction? {
        switch (from, to) {
        case (.initialized, .updateClients): return KeyAction.swapKeys
        case (.updateClients, .updateServers): return KeyAction.none
        case (.updateServers, .standby): return .dropAdditionalKeys
        case (.initialized, .rollback): return KeyAction.none
        case (.updateClients, .rollback), (.updateServers, .rollback): return .swapKeys
        case (.rollback, .standby): return .dropAdditionalKeys
        default: return nil
        }
    }

    /// The phases that may follow `phase`.
    public static func successors(of phase: Phase) -> [Phase] {
        Phase.allCases.filter { allowed(from: phase, to: $0) != nil || (phase == .standby && $0 == .initialized) }
    }

    static func moved(_ rotation: CertAuthority.Rotation, from: Phase, to: Phase, mode: Mode, now: Date) -> CertAuthority.Rotation {
        var next = rotation
        next.phase = to.rawValue
        if to == .standby {
            next.state = "standby"
            next.mode = nil
            next.schedule = nil
            next.started = nil
            // A rollback ends without a rotation having happened.
            if from == .updateServers { next.lastRotated = now }
        } else {
            next.state = "in_progress"
            next.mode = to == .rollback ? Mode.manual.rawValue : mode.rawValue
            if next.mode == Mode.manual.rawValue { next.schedule = nil }
        }
        return next
    }

    static func refusal(from: Phase, to: Phase) -> TeleportError {
        let options = successors(of: from).map(\.rawValue)
        let hint = options.isEmpty ? "" : " (from \(from.rawValue) the next phase may be: \(options.joined(separator: ", ")))"
        if to == .initialized {
            return TeleportError.badParameter(
                "a rotation is already in progress (phase \(from.rawValue)); finish it or roll it back first\(hint)")
        }
        return TeleportError.badParameter("cannot move the rotation from \(from.rawValue) to \(to.rawValue)\(hint)")
    }
}

extension CertAuthority {
    /// The CA after `action`: `newKeys` (generated by the caller) are needed for
    /// ``CARotation/KeyAction/addNewKeys`` only. Dropping the additional keys keeps their SSH public
    /// keys in ``Spec/retiredSSHPublicKeys`` (they may have signed audit checkpoints).
    public func applying(_ action: CARotation.KeyAction, newKeys: KeySet? = nil) throws -> CertAuthority {
        var copy = self
        switch action {
        case .none:
            break
        case .addNewKeys:
            guard let newKeys else { throw TeleportError.internalError("a rotation's init phase needs new keys") }
            copy.spec.additionalTrustedKeys = newKeys
        case .swapKeys:
            guard let other = spec.additionalTrustedKeys else {
                throw TeleportError.internalError("the \(spec.type.rawValue) CA has no additional keys to swap in")
            }
            copy.spec.additionalTrustedKeys = spec.activeKeys
            copy.spec.activeKeys = other
        case .dropAdditionalKeys:
            if let dropped = spec.additionalTrustedKeys?.ssh.map(\.publicKey), !dropped.isEmpty {
                copy.spec.retiredSSHPublicKeys = (spec.retiredSSHPublicKeys ?? []) + dropped
            }
            copy.spec.additionalTrustedKeys = nil
        }
        return copy
    }
}
