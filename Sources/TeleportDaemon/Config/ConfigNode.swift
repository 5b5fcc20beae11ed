import TeleportAPI
import Yams

/// A node of a parsed `teleport.yaml` with its key path and line, so that every error can name the
/// file, the key and what was expected.
struct ConfigNode {
    let node: Node
    let path: String
    let file: String

    func fail(_ expected: String) -> TeleportError {
        let line = node.mark.map { " (line \($0.line))" } ?? ""
        let found: String
        switch node {
        case .scalar(let scalar): found = "\"\(scalar.string)\""
        case .mapping: found = "a mapping"
        case .sequence: found = "a list"
        case .alias: found = "an alias"
        }
        return TeleportError.badParameter("\(file): \(path)\(line): expected \(expected), found \(found)")
    }

    var isNull: Bool {
        if case .scalar(let scalar) = node {
            return scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
        }
        return false
    }

    /// The mapping's entries in file order; an error if this is not a mapping (null is empty).
    func mapping() throws -> [(key: String, value: ConfigNode)] {
        if isNull { return [] }
        guard case .mapping(let mapping) = node else { throw fail("a mapping") }
        var seen = Set<String>()
        return try mapping.map { pair in
            guard case .scalar(let key) = pair.key else {
                throw TeleportError.badParameter("\(file): \(path): keys must be plain strings")
            }
            let child = path.isEmpty ? key.string : "\(path).\(key.string)"
            guard seen.insert(key.string).inserted else {
                throw TeleportError.badParameter("\(file): \(child): the key appears twice")
            }
            return (key.string, ConfigNode(node: pair.value, path: child, file: file))
        }
    }

    func string() throws -> String {
        guard case .scalar(let scalar) = node, !isNull else { throw fail("a string") }
        return scalar.string
    }

    func bool() throws -> Bool {
        guard case .scalar(let scalar) = node else { throw fail("yes or no") }
        switch scalar.string.lowercased() {
        case "yes", "true", "on", "1", "y": return true
        case "no", "false", "off", "0", "n": return false
        default: throw fail("yes or no")
        }
    }

    func int() throws -> Int {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string) else { throw fail("a whole number") }
        return value
    }

    /// A whole number of at least zero.
    func count() throws -> Int {
        let value = try int()
        guard value >= 0 else { throw fail("a whole number of at least 0") }
        return value
    }

    /// A list of strings; a single string is accepted as a one-element list.
    func stringList() throws -> [String] {
        if isNull { return [] }
        switch node {
        case .scalar(let scalar): return [scalar.string]
        case .sequence(let sequence):
            return try sequence.enumerated().map { index, item in
                try ConfigNode(node: item, path: "\(path)[\(index)]", file: file).string()
            }
        default: throw fail("a string or a list of strings")
        }
    }

    func list() throws -> [ConfigNode] {
        if isNull { return [] }
        guard case .sequence(let sequence) = node else { throw fail("a list") }
        return sequence.enumerated().map { index, item in ConfigNode(node: item, path: "\(path)[\(index)]", file: file) }
    }

    /// A `host:port` address.
    func address(defaultPort: Int) throws -> String {
        let text = try string()
        do {
            let parsed = try HostPort.parse(text, defaultPort: defaultPort, key: path)
            return parsed.host.contains(":") ? "[\(parsed.host)]:\(parsed.port)" : "\(parsed.host):\(parsed.port)"
        } catch {
            throw fail("an address host:port")
        }
    }

    /// A duration such as `1m0s`.
    func duration() throws -> Double {
        guard let seconds = GoDuration.parse(try string()) else { throw fail("a duration such as 1m0s or 1h") }
        return seconds
    }

    /// A duration of at least `minimum` seconds (a label command's period: shorter would run the
    /// command without pause).
    func duration(atLeast minimum: Double) throws -> Double {
        let seconds = try duration()
        guard seconds >= minimum else { throw fail("a duration of at least \(GoDuration.format(seconds: minimum)) such as 1m0s") }
        return seconds
    }
}
