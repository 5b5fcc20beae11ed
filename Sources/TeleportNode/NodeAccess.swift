public import Foundation
public import TeleportAccess
import TeleportAPI
public import TeleportSSH

/// The node's role check (issue 7's enforcement): on every session and every channel, the user's
/// roles *as they are now* (from the certificate cache, which follows the auth service's feed, so
/// a removed role stops new sessions at once) must allow the login on this node's labels, static
/// and dynamic; file copies and port forwards also need their role options.
public struct NodeAccess: Sendable {
    let cache: UserCertificateCache
    let nodeName: String
    let labels: @Sendable () -> [String: String]

    /// Creates the check for the node `nodeName`, whose current labels `labels` returns.
    public init(cache: UserCertificateCache, nodeName: String, labels: @escaping @Sendable () -> [String: String]) {
        self.cache = cache
        self.nodeName = nodeName
        self.labels = labels
    }

    /// The role engine for `user`.
    func checker(_ user: SSHAuthenticatedUser) -> AccessChecker {
        AccessChecker(roles: cache.roles(named: user.roles), traits: AccessChecker.templateTraits(user.traits))
    }

    /// Nil when the roles allow `request`, else why not.
    public func check(_ user: SSHAuthenticatedUser, _ request: AccessRequest) -> AccessRefusal? {
        let checker = checker(user)
        let prefix = "access denied to \(user.username) connecting to \(user.login)@\(nodeName)"
        if checker.roles.isEmpty {
            let reason = user.roles.isEmpty
                ? "the user has no roles" : "none of the user's roles (\(user.roles.joined(separator: ", "))) exist any more"
            return AccessRefusal(reason: "\(prefix): \(reason); ask an administrator (tctl users update --set-roles)", reasons: [reason])
        }
        let decision: AccessChecker.Decision
        do {
            decision = try checker.checkSSH(labels: labels(), login: user.login)
        } catch {
            return AccessRefusal(reason: "\(prefix): \(error)", reasons: ["\(error)"])
        }
        guard decision.allowed else {
            return AccessRefusal(reason: "\(prefix): no role allows it (tctl access explain shows why)", reasons: decision.reasons)
        }
        switch request {
        case .session:
            return nil
        case .fileCopy where !checker.permitsFileCopy:
            return AccessRefusal(reason: "\(prefix): file copying (scp, sftp) is turned off by a role (ssh_file_copy: false)", reasons: decision.reasons)
        case .portForwarding where !checker.permitsPortForwarding:
            return AccessRefusal(reason: "\(prefix): port forwarding is turned off by a role (port_forwarding: false)", reasons: decision.reasons)
        default:
            return nil
        }
    }

    /// The shortest `client_idle_timeout` of the user's roles, in seconds (nil: none).
    public func idleTimeout(_ user: SSHAuthenticatedUser) -> TimeInterval? {
        cache.roles(named: user.roles).compactMap { $0.spec.options?.clientIdleTimeout.flatMap(GoDuration.parse) }.filter { $0 > 0 }.min()
    }

    /// Whether `joiner` may join another user's session: a role must allow `join` on `session`.
    public func mayJoin(_ joiner: SSHAuthenticatedUser) -> Bool {
        checker(joiner).checkRule(kind: "session", verb: "join").allowed
    }
}
