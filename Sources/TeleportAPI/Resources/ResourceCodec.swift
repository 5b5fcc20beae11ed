public import Foundation
import Yams

/// Reads and writes resources as YAML and JSON, strictly: an unknown kind, an unknown field or a
/// wrong type is an error that names the document and the field.
public enum ResourceCodec {
    /// The largest document accepted, in bytes.
    public static let maxDocumentBytes = 1 << 20

    /// A JSON encoder with stable output (sorted keys, RFC 3339 dates).
    public static func jsonEncoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.format(date))
        }
        return encoder
    }

    /// A JSON decoder matching ``jsonEncoder(pretty:)``.
    public static func jsonDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = RFC3339.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an RFC 3339 time: \(text)")
            }
            return date
        }
        return decoder
    }

    /// Encodes one resource as JSON.
    public static func json<R: Encodable>(_ value: R, pretty: Bool = false) throws -> Data {
        try jsonEncoder(pretty: pretty).encode(value)
    }

    /// Encodes one resource as a YAML document (no `---`).
    public static func yaml(_ resource: any Resource) throws -> String {
        // Going through JSON keeps one set of coding rules (dates as RFC 3339 strings).
        let json = try json(resource)
        let tree = try JSONSerialization.jsonObject(with: json)
        return try Yams.serialize(node: try YAMLTree.node(tree), indent: 2, width: -1, allowUnicode: true, sortKeys: true)
    }

    /// Encodes several resources as YAML documents separated by `---`.
    public static func yaml(_ resources: [any Resource]) throws -> String {
        try resources.map { try yaml($0) }.joined(separator: "---\n")
    }

    /// Decodes every document of a YAML (or JSON) text. `source` names the input in errors.
    public static func decodeDocuments(_ text: String, source: String) throws -> [AnyResource] {
        guard text.utf8.count <= maxDocumentBytes else {
            throw TeleportError.limitExceeded("\(source): the document is larger than \(maxDocumentBytes) bytes")
        }
        var trees: [Any] = []
        do {
            // Parse document by document so that a syntax error anywhere is reported, not skipped.
            let parser = try Parser(yaml: text)
            while let node = try parser.nextRoot() {
                let document = try YAMLTree.plain(node, path: "")
                if !(document is NSNull) { trees.append(document) }
            }
        } catch let error as TeleportError {
            throw TeleportError.badParameter("\(source): \(error.message)")
        } catch {
            throw TeleportError.badParameter("\(source): not valid YAML: \(YAMLErrorText.describe(error))")
        }
        guard !trees.isEmpty else { throw TeleportError.badParameter("\(source): no resource found in the document") }
        return try trees.enumerated().map { index, tree in
            let where_ = trees.count > 1 ? "\(source) (document \(index + 1))" : source
            return try decode(tree: tree, source: where_)
        }
    }

    /// Decodes one resource from a parsed tree (dictionaries, arrays, scalars).
    public static func decode(tree: Any, source: String) throws -> AnyResource {
        guard let map = tree as? [String: Any] else {
            throw TeleportError.badParameter("\(source): a resource must be a mapping with kind, version, metadata and spec")
        }
        guard let kindValue = map["kind"] as? String else {
            throw TeleportError.badParameter("\(source): the field \"kind\" is missing")
        }
        guard let entry = ResourceKinds.named(kindValue), entry.name == kindValue || kindValue.lowercased() == entry.name else {
            throw TeleportError.badParameter(
                "\(source): unknown resource kind \"\(kindValue)\" (known: \(AnyResource.kinds.joined(separator: ", ")))")
        }
        let kind = entry.name
        var normalized = map
        normalized["kind"] = kind
        if normalized["version"] == nil { normalized["version"] = entry.currentVersion }
        let data: Data
        do {
            data = try JSONSerialization.data(withJSONObject: jsonSafe(normalized))
        } catch {
            throw TeleportError.badParameter("\(source): the document holds values that are not plain data")
        }
        let resource: any Resource
        do {
            resource = try entry.decode(json: data, decoder: jsonDecoder())
        } catch let error as DecodingError {
            throw TeleportError.badParameter("\(source): \(kind): \(DecodingErrorText.describe(error))")
        } catch let error as TeleportError {
            throw TeleportError.badParameter("\(source): \(kind): \(error.message)")
        }
        let encoded = try JSONSerialization.jsonObject(with: json(resource))
        if let unknown = firstUnknownField(original: normalized, encoded: encoded, path: "") {
            throw TeleportError.badParameter("\(source): \(kind): unknown field \"\(unknown)\"")
        }
        do {
            try resource.validate()
        } catch let error as TeleportError {
            throw TeleportError.badParameter("\(source): \(error.message)")
        }
        return try AnyResource(resource)
    }

    /// YAML trees may hold dates and other non-JSON scalars; make them JSON-safe.
    static func jsonSafe(_ value: Any) -> Any {
        switch value {
        case let map as [String: Any]: return map.mapValues(jsonSafe)
        case let list as [Any]: return list.map(jsonSafe)
        case let date as Date: return RFC3339.format(date)
        case is String, is Int, is Double, is Bool, is NSNull: return value
        case let number as NSNumber: return number
        default: return String(describing: value)
        }
    }

    /// The first key present in `original` but not in `encoded` (a field the type does not have).
    static func firstUnknownField(original: Any, encoded: Any, path: String) -> String? {
        if let originalMap = original as? [String: Any] {
            guard let encodedMap = encoded as? [String: Any] else { return nil }
            for key in originalMap.keys.sorted() {
                let child = path.isEmpty ? key : "\(path).\(key)"
                guard let encodedValue = encodedMap[key] else {
                    // An explicit null is "not set"; anything else the type did not keep is unknown.
                    if originalMap[key] is NSNull { continue }
                    return child
                }
                if let found = firstUnknownField(original: originalMap[key] as Any, encoded: encodedValue, path: child) {
                    return found
                }
            }
        } else if let originalList = original as? [Any], let encodedList = encoded as? [Any] {
            for (index, pair) in zip(originalList, encodedList).enumerated() {
                if let found = firstUnknownField(original: pair.0, encoded: pair.1, path: "\(path)[\(index)]") {
                    return found
                }
            }
        }
        return nil
    }
}

/// One-line descriptions of Yams errors (Yams puts the context and the problem on separate lines).
public enum YAMLErrorText {
    /// The error's lines joined into one, without the source excerpt Yams appends.
    public static func describe(_ error: any Error) -> String {
        let lines = String(describing: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let meaningful = lines.filter { !$0.isEmpty && !$0.hasPrefix("^") && !$0.allSatisfy { $0 == "^" || $0 == " " } }
        return meaningful.prefix(2).joined(separator: ": ")
    }
}

/// One-line descriptions of `DecodingError`s with the field path.
public enum DecodingErrorText {
    /// "spec.roles: expected a list, found a string" style text.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            let text = codingPath.map { key in key.intValue.map { "[\($0)]" } ?? key.stringValue }
                .joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
            return text.isEmpty ? "the document" : text
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(typeName(type)), found nothing"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): required field is missing"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return String(describing: error)
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        let name = String(describing: type)
        if name.hasPrefix("Array") { return "a list" }
        if name.hasPrefix("Dictionary") || name.contains("Spec") || name.contains("Metadata") { return "a mapping" }
        switch name {
        case "String": return "a string"
        case "Int", "Int64", "UInt64", "Double": return "a number"
        case "Bool": return "true or false"
        default: return "a \(name)"
        }
    }
}

/// Turns a JSON tree into a YAML node: keys sorted, multi-line strings (PEM keys and certificates)
/// as literal blocks so that they stay readable and copy-pasteable.
enum YAMLTree {
    /// A YAML node as plain data (dictionaries with string keys, arrays, strings, numbers, booleans,
    /// null). Unlike Yams' constructor this never traps: a non-scalar key is an error, and dates
    /// stay the strings they were written as.
    ///
    /// Anchors and aliases are refused before anything is expanded. Yams' parser resolves an alias
    /// to the anchored node itself, so a "billion laughs" document (each level a list of aliases of
    /// the level before) is small in memory but exponential to walk; the first anchored node, or a
    /// collection met a second time at the same position, stops the walk.
    static func plain(_ node: Node, path: String) throws -> Any {
        var seen = Set<String>()
        return try plain(node, path: path, seen: &seen)
    }

    private static func plain(_ node: Node, path: String, seen: inout Set<String>) throws -> Any {
        let place = path.isEmpty ? "the document" : path
        if node.anchor != nil {
            throw TeleportError.badParameter("\(place): YAML anchors and aliases (&name, *name) are not accepted")
        }
        switch node {
        case .mapping, .sequence:
            if let mark = node.mark, !seen.insert("\(mark.line):\(mark.column)").inserted {
                throw TeleportError.badParameter("\(place): YAML anchors and aliases (&name, *name) are not accepted")
            }
        default: break
        }
        switch node {
        case .scalar(let scalar):
            if scalar.style != .plain && scalar.style != .any { return scalar.string }
            if node.null != nil { return NSNull() }
            if let value = node.bool { return value }
            if let value = node.int { return value }
            if let value = node.float, scalar.string.rangeOfCharacter(from: .letters) == nil { return value }
            return scalar.string
        case .mapping(let mapping):
            var result: [String: Any] = [:]
            for (key, value) in mapping {
                if key.anchor != nil {
                    throw TeleportError.badParameter("\(place): YAML anchors and aliases (&name, *name) are not accepted")
                }
                guard case .scalar(let keyScalar) = key else {
                    throw TeleportError.badParameter("\(place): keys must be plain strings (quote values such as '{{internal.logins}}')")
                }
                let child = path.isEmpty ? keyScalar.string : "\(path).\(keyScalar.string)"
                result[keyScalar.string] = try plain(value, path: child, seen: &seen)
            }
            return result
        case .sequence(let sequence):
            return try sequence.enumerated().map { index, item in try plain(item, path: "\(path)[\(index)]", seen: &seen) }
        case .alias:
            throw TeleportError.badParameter("\(place): YAML anchors and aliases (&name, *name) are not accepted")
        }
    }

    static func node(_ value: Any) throws -> Node {
        switch value {
        case let map as [String: Any]:
            var pairs: [(Node, Node)] = []
            for key in map.keys.sorted() {
                pairs.append((try Node(key), try node(map[key] as Any)))
            }
            return Node(pairs)
        case let list as [Any]:
            return Node(try list.map(node))
        case let string as String:
            if string.contains("\n") { return Node(string, Tag(.str), .literal) }
            // Quote strings that would read back as something else ("2", "yes", "a: b", "{{x}}", "").
            let readBack = (try? Yams.compose(yaml: string)).flatMap { $0 }.flatMap { try? plain($0, path: "") } as? String
            return Node(string, Tag(.str), readBack == string ? .any : .singleQuoted)
        case let number as NSNumber:
            switch String(cString: number.objCType) {
            case "c", "B": return try Node(number.boolValue)
            case "d", "f": return try Node(number.doubleValue)
            default: return try Node(number.int64Value)
            }
        default:
            return Node("null", Tag(.null))
        }
    }
}
