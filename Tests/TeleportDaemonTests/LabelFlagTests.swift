import TeleportAPI
import TeleportDaemon
import Testing

/// The `--labels` flag: static `k=v` and dynamic `k=[period:"command"]`.
@Suite("LabelFlag")
struct LabelFlagTests {
    @Test func staticAndDynamicLabels() throws {
        let parsed = try LabelFlag.parse(#"env=prod,uptime=[1m:"uptime -p"]"#)
        #expect(parsed.static == ["env": "prod"])
        try #require(parsed.commands.count == 1)
        #expect(parsed.commands[0].name == "uptime")
        #expect(parsed.commands[0].period == 60)
        #expect(parsed.commands[0].command == ["uptime", "-p"])
    }

    @Test func severalCommandsWithCommasInside() throws {
        let parsed = try LabelFlag.parse(#"a=1,arch=[1h:"/usr/bin/uname -p"],b=2,kernel=[30s:"uname -r"]"#)
        #expect(parsed.static == ["a": "1", "b": "2"])
        #expect(parsed.commands.map(\.name) == ["arch", "kernel"])
        #expect(parsed.commands.map(\.period) == [3600, 30])
        #expect(parsed.commands.map(\.command) == [["/usr/bin/uname", "-p"], ["uname", "-r"]])
    }

    @Test(arguments: [
        ("", [String: String]()),
        ("env=prod", ["env": "prod"]),
        (" env = prod , team=ops", ["env": "prod", "team": "ops"]),
        ("empty=", ["empty": ""]),
        ("a=b=c", ["a": "b=c"]),
        ("env=prod,", ["env": "prod"]),
    ])
    func staticLabels(text: String, expected: [String: String]) throws {
        let parsed = try LabelFlag.parse(text)
        #expect(parsed.static == expected)
        #expect(parsed.commands.isEmpty)
    }

    @Test(arguments: [
        ("noequals", "is not key=value"),
        ("=value", "empty key"),
        (#"up=[1m"uptime"]"#, "expected [period:"),
        (#"up=[1m:"uptime""#, "expected [period:"),
        (#"up=[often:"uptime"]"#, "is not a duration"),
        (#"up=[1m:""]"#, "the command is empty"),
    ])
    func badLabelsAreRefused(text: String, fragment: String) throws {
        let error = #expect(throws: TeleportError.self) { try LabelFlag.parse(text) }
        #expect(error?.code == .badParameter)
        #expect(error?.message.hasPrefix("--labels") == true)
        #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
    }
}
