public import TeleportRecording
public import Foundation
public import NIOCore
public import NIOSSH
public import TeleportSSH

/// The interactive sessions running on a node, which other users may join (`tsh join`): each
/// joined party gets a copy of the session's output from the moment it joins; a peer's typing goes
/// to the session's terminal too, an observer's is dropped. When the owner's session ends, every
/// party's channel gets the exit status and is closed.
public final class LiveSessions: @unchecked Sendable {
    private let lock = NSLock()
    private var sessions: [String: LiveSession] = [:]

    public init() {}

    func add(_ session: LiveSession) { lock.withLock { sessions[session.sessionID] = session } }
    func remove(_ sid: String) { lock.withLock { _ = sessions.removeValue(forKey: sid) } }

    /// The live session `sid`, if it runs here.
    public func session(_ sid: String) -> LiveSession? { lock.withLock { sessions[sid] } }
}

/// One live session and its joined parties.
public final class LiveSession: @unchecked Sendable {
    /// How a party takes part.
    public enum Mode: String, Sendable {
        /// Sees the output; typing is dropped.
        case observer
        /// Sees the output and types into the terminal.
        case peer
    }

    public let sessionID: String
    /// The session's owner.
    public let owner: SSHAuthenticatedUser
    private let lock = NSLock()
    private var parties: [ObjectIdentifier: (channel: any Channel, user: SSHAuthenticatedUser, mode: Mode)] = [:]
    private let input: @Sendable (ByteBuffer) -> Void

    init(sessionID: String, owner: SSHAuthenticatedUser, input: @escaping @Sendable (ByteBuffer) -> Void) {
        self.sessionID = sessionID
        self.owner = owner
        self.input = input
    }

    private var everJoined: [String] = []

    /// The users joined now.
    public var participants: [String] { lock.withLock { parties.values.map(\.user.username) } }

    /// The owner and everyone who joined at some point, in order.
    public var allParticipants: [String] { lock.withLock { [owner.username] + everJoined.filter { $0 != owner.username } } }

    func join(_ channel: any Channel, user: SSHAuthenticatedUser, mode: Mode) {
        lock.withLock {
            parties[ObjectIdentifier(channel)] = (channel, user, mode)
            if !everJoined.contains(user.username) { everJoined.append(user.username) }
        }
    }

    /// Removes the party on `channel`; false when it was gone already (the session ended).
    func leave(_ channel: any Channel) -> Bool {
        lock.withLock { parties.removeValue(forKey: ObjectIdentifier(channel)) != nil }
    }

    /// Typing of the party on `channel`: to the terminal for a peer.
    func typed(_ bytes: ByteBuffer, by channel: any Channel) {
        guard lock.withLock({ parties[ObjectIdentifier(channel)]?.mode }) == .peer else { return }
        input(bytes)
    }

    /// A copy of the owner's output for every party.
    func broadcast(_ bytes: ByteBuffer) {
        for party in lock.withLock({ Array(parties.values) }) {
            party.channel.writeAndFlush(SSHChannelData(type: .channel, data: .byteBuffer(bytes)), promise: nil)
        }
    }

    /// The owner's session ended: every party gets the exit status and is closed. Returns the
    /// parties' users (they left with it).
    @discardableResult
    func end(_ exit: ProcessExit) -> [SSHAuthenticatedUser] {
        let all = lock.withLock {
            defer { parties.removeAll() }
            return Array(parties.values)
        }
        for party in all {
            let channel = party.channel
            channel.eventLoop.execute {
                switch exit {
                case .status(let code):
                    channel.triggerUserOutboundEvent(SSHChannelRequestEvent.ExitStatus(exitStatus: code), promise: nil)
                case .signal(let name, let core):
                    channel.triggerUserOutboundEvent(
                        SSHChannelRequestEvent.ExitSignal(signalName: name, errorMessage: "", language: "", dumpedCore: core), promise: nil)
                }
                channel.close(promise: nil)
            }
        }
        return all.map(\.user)
    }
}
