extension AnyResource {
    /// The kinds that can be replaced in place (`tctl edit`, conditional updates).
    public static var editableKinds: [String] { ResourceKinds.all.filter(\.isEditable).map(\.name) }

    /// Why `kind` cannot be edited in place, with what to do instead; nil when it can.
    public static func whyNotEditable(_ kind: String) -> String? {
        guard let entry = ResourceKinds.named(kind) else {
            return "\(kind) cannot be edited (editable: \(editableKinds.joined(separator: ", ")))"
        }
        return entry.editRefusal
    }
}
