public import Foundation

/// Role mapping across clusters (a pure function): which of a leaf cluster's roles a root
/// cluster's user gets, given the user's root roles and the trusted cluster's `role_map`.
///
/// A mapping's `remote` is an exact role name, `*` (any role), or a regular expression written
/// `^...$` whose groups may be used in `local` as `$1`, `$2`, ... A root role that no mapping
/// matches gives nothing: a user whose roles all map to nothing gets no access at all.
public enum RoleMap {
    /// The leaf roles for `remoteRoles` under `mappings`: each in the order first produced,
    /// without duplicates. Empty when nothing maps (never the root roles' names themselves).
    public static func map(_ remoteRoles: [String], with mappings: [TrustedCluster.RoleMapping]) -> [String] {
        var result: [String] = []
        var seen = Set<String>()
        func add(_ role: String) {
            guard !role.isEmpty, !seen.contains(role) else { return }
            seen.insert(role)
            result.append(role)
        }
        for mapping in mappings {
            for remote in remoteRoles {
                guard let groups = match(mapping.remote, remote) else { continue }
                for local in mapping.local { add(expand(local, groups: groups)) }
            }
        }
        return result
    }

    /// The captured groups (group 0 = the whole name) when `pattern` matches `role`; nil when not.
    static func match(_ pattern: String, _ role: String) -> [String]? {
        if pattern == "*" { return [role] }
        guard isRegex(pattern) else { return pattern == role ? [role] : nil }
        guard let expression = try? NSRegularExpression(pattern: pattern) else { return nil }
        let range = NSRange(role.startIndex..., in: role)
        guard let found = expression.firstMatch(in: role, range: range), found.range == range else { return nil }
        return (0..<found.numberOfRanges).map { index in
            Range(found.range(at: index), in: role).map { String(role[$0]) } ?? ""
        }
    }

    /// `$1`... replaced by the groups (a group that does not exist becomes empty; `$$` is `$`).
    static func expand(_ template: String, groups: [String]) -> String {
        guard template.contains("$") else { return template }
        var output = ""
        var characters = Array(template)[...]
        while let character = characters.popFirst() {
            guard character == "$" else {
                output.append(character)
                continue
            }
            if characters.first == "$" {
                characters.removeFirst()
                output.append("$")
                continue
            }
            var digits = ""
            while let next = characters.first, next.isASCII, next.isNumber {
                digits.append(next)
                characters.removeFirst()
            }
            guard let index = Int(digits) else {
                output.append("$")
                continue
            }
            output += index < groups.count ? groups[index] : ""
        }
        return output
    }

    /// Whether a mapping's `remote` is a regular expression (`^...$`).
    public static func isRegex(_ pattern: String) -> Bool { pattern.hasPrefix("^") && pattern.hasSuffix("$") && pattern.count >= 2 }

    /// Refuses a `remote` that is neither a role name, `*`, nor a valid `^regex$`, naming `field`.
    public static func checkPattern(_ pattern: String, field: String) throws {
        if pattern == "*" { return }
        if isRegex(pattern) {
            do {
                _ = try NSRegularExpression(pattern: pattern)
            } catch {
                throw TeleportError.badParameter("\(field): \"\(pattern)\" is not a valid regular expression")
            }
            return
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@:+")
        guard pattern.allSatisfy({ allowed.contains($0) }) else {
            throw TeleportError.badParameter(
                "\(field): \"\(pattern)\" is not a role name, * or a regular expression written ^...$")
        }
    }
}
