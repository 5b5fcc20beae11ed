public import Foundation
public import TeleportAPI
import TeleportAuthClient
import TeleportCrypto

/// `tctl users ...`.
public enum UserCommands {
    /// `tctl users add NAME [LOGINS] [--logins=a,b] [--roles=r1,r2] [--ttl=1h]`.
    public static func add(
        _ options: AdminConnection.Options, name: String, positionalLogins: String?, logins: String?, roles: String?, ttl: String,
        kubernetesGroups: String? = nil, kubernetesUsers: String? = nil
    ) async throws -> String {
        let loginList = split(logins ?? positionalLogins)
        var user = User(name: name, roles: split(roles), logins: loginList.isEmpty ? [name] : loginList)
        // --k8s-groups / --k8s-users (the seed's `tctl users add joe --k8s-groups="system:masters"`).
        if !split(kubernetesGroups).isEmpty { user.spec.traits["kubernetes_groups"] = split(kubernetesGroups) }
        if !split(kubernetesUsers).isEmpty { user.spec.traits["kubernetes_users"] = split(kubernetesUsers) }
        try user.validate()
        let seconds = try duration(ttl, max: 48 * 3600)
        let token = try await AdminConnection.client(options).createUser(.init(user: user, ttlSeconds: seconds))
        return """
            User "\(name)" has been created but requires a password. Share this URL with the user to complete user setup, link is valid for \(GoDuration.format(seconds: seconds)):
            \(token.url ?? token.token)

            NOTE: Make sure \(proxyHost(token.url)) points at a Teleport proxy which users can access.

            """
    }

    /// `tctl users ls`.
    public static func list(_ options: AdminConnection.Options) async throws -> String {
        let users = try await AdminConnection.client(options).resources(kind: User.kind)
        let rows: [[String]] = users.compactMap { resource in
            guard case .user(let user) = resource else { return nil }
            var roles = user.spec.roles.joined(separator: ",")
            if let status = user.spec.status, status.isLocked, let until = status.lockExpires, until > Date() {
                roles += " (locked until \(RFC3339.format(until)))"
            }
            return [user.name, user.logins.joined(separator: ","), roles]
        }
        return TextTable.render(headers: ["User", "Allowed Logins", "Roles"], rows: rows)
    }

    /// `tctl users rm NAME`.
    public static func remove(_ options: AdminConnection.Options, name: String) async throws -> String {
        try await AdminConnection.client(options).delete(kind: User.kind, name: name)
        return "User \"\(name)\" has been deleted\n"
    }

    /// `tctl users reset NAME [--ttl=8h]`.
    public static func reset(_ options: AdminConnection.Options, name: String, ttl: String) async throws -> String {
        let seconds = try duration(ttl, max: 48 * 3600)
        let token = try await AdminConnection.client(options).resetUser(name, ttlSeconds: seconds)
        return """
            User "\(name)" has been reset. Share this URL with the user to complete password reset, link is valid for \(GoDuration.format(seconds: seconds)):
            \(token.url ?? token.token)

            """
    }

    /// `tctl users update NAME [--set-roles=a,b] [--set-logins=x,y]`: a read-modify-write that
    /// never loses a concurrent change (the write is conditional on the revision read; on a
    /// conflict it reads again). The auth service refuses roles that do not exist.
    public static func update(_ options: AdminConnection.Options, name: String, roles: String?, logins: String?) async throws -> String {
        guard roles != nil || logins != nil else {
            throw TeleportError.badParameter("nothing to update: pass --set-roles and/or --set-logins")
        }
        if let roles, split(roles).isEmpty {
            throw TeleportError.badParameter("--set-roles needs at least one role (tctl get roles lists them)")
        }
        let client = try AdminConnection.client(options)
        for attempt in 1...3 {
            guard case .user(var user) = try await client.resource(kind: User.kind, name: name) else {
                throw TeleportError.internalError("the auth service sent another kind for user/\(name)")
            }
            if let roles { user.spec.roles = split(roles) }
            if let logins { user.spec.traits["logins"] = split(logins) }
            try user.validate()
            do {
                try await client.update(.user(user))
                return "User \"\(name)\" has been updated\n"
            } catch let error as TeleportError where error.code == .compareFailed && attempt < 3 {
                continue
            }
        }
        throw TeleportError.compareFailed("user \"\(name)\" keeps changing; try again")
    }

    static func split(_ text: String?) -> [String] {
        (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func duration(_ text: String, max: Double) throws -> Double {
        guard let seconds = GoDuration.parse(text), seconds > 0 else {
            throw TeleportError.badParameter("--ttl=\(text) is not a duration such as 1h or 30m")
        }
        guard seconds <= max else {
            throw TeleportError.badParameter("--ttl=\(text) is longer than the maximum of \(GoDuration.format(seconds: max))")
        }
        return seconds
    }

    static func proxyHost(_ url: String?) -> String {
        guard let url, let host = URL(string: url)?.host else { return "the proxy" }
        return host
    }
}
