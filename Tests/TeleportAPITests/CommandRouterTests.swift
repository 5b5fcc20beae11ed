import TeleportAPI
import Testing

@Suite("command lines as the manuals write them")
struct CommandRouterTests {
    static let tctl = CommandTree([
        "auth": CommandTree(["export": CommandTree(), "sign": CommandTree()]),
        "users": CommandTree(["add": CommandTree(), "ls": CommandTree(), "rm": CommandTree(), "del": CommandTree()]),
        "get": CommandTree(),
        "status": CommandTree(),
    ])
    static let tsh = CommandTree(["ssh": CommandTree(), "login": CommandTree(), "ls": CommandTree(), "proxy": CommandTree(["ssh": CommandTree()])])
    static let sshDefault = CommandRouter.DefaultCommand(name: "ssh") { word, afterGlobals in afterGlobals || word.contains("@") }

    func tctl(_ arguments: [String]) throws -> [String] {
        try CommandRouter.route(arguments, program: "tctl", tree: Self.tctl, globalsWithValue: ["-c", "--config"], globalFlags: ["-d"])
    }

    func tsh(_ arguments: [String]) throws -> [String] {
        try CommandRouter.route(
            arguments, program: "tsh", tree: Self.tsh, globalsWithValue: ["--proxy", "--user"], globalFlags: ["--insecure"],
            defaultCommand: Self.sshDefault)
    }

    @Test(arguments: [
        (["auth", "--type=host", "export"], ["auth", "export", "--type=host"]),
        (["auth", "--type", "host", "export"], ["auth", "export", "--type", "host"]),
        (["-c", "f.yaml", "auth", "--type=user", "export", "--extra"], ["-c", "f.yaml", "auth", "export", "--type=user", "--extra"]),
        (["auth", "export", "--type=host"], ["auth", "export", "--type=host"]),
        (["get", "all"], ["get", "all"]),
        (["users", "del", "joe"], ["users", "del", "joe"]),
        (["auth", "--help"], ["auth", "--help"]),
        (["--help"], ["--help"]),
        (["help", "auth"], ["help", "auth"]),
        ([], []),
    ])
    func tctlOrder(input: [String], expected: [String]) throws {
        #expect(try tctl(input) == expected)
    }

    @Test func unknownSubcommandIsNamed() {
        #expect {
            try tctl(["-c", "teleport.yaml", "auth", "ls"])
        } throws: { error in
            let message = (error as? TeleportError)?.message ?? ""
            return message == "unknown command \"tctl auth ls\": tctl auth has export, sign; see tctl auth --help"
        }
        #expect {
            try tctl(["--config=x.yaml", "nodez", "ls"])
        } throws: { error in
            ((error as? TeleportError)?.message ?? "").hasPrefix("unknown command \"nodez\": tctl has auth, get, status, users")
        }
    }

    @Test(arguments: [
        (["--proxy=work", "--user=joe", "root@luna"], ["--proxy=work", "--user=joe", "ssh", "root@luna"]),
        (["--proxy", "work", "luna", "uptime"], ["--proxy", "work", "ssh", "luna", "uptime"]),
        (["root@luna", "ls", "-l"], ["ssh", "root@luna", "ls", "-l"]),
        (["--proxy=work", "ls"], ["--proxy=work", "ls"]),
        (["ssh", "root@luna"], ["ssh", "root@luna"]),
        (["proxy", "ssh", "luna:3022"], ["proxy", "ssh", "luna:3022"]),
    ])
    func tshDefaultsToSSH(input: [String], expected: [String]) throws {
        #expect(try tsh(input) == expected)
    }

    @Test func tshTypoIsNotAHost() {
        #expect(throws: TeleportError.self) { try tsh(["lgoin"]) }
    }

    /// The whole path through to ArgumentParser's order: the seed's `tsh --proxy=work --user=joe root@luna`.
    @Test func seedFormReachesSSHWithItsOptions() throws {
        let routed = try tsh(["--proxy=work", "--user=joe", "root@luna", "uptime"])
        let ordered = GlobalArguments.reorder(routed, withValue: ["--proxy", "--user"], flags: ["--insecure"], passthrough: ["ssh"])
        #expect(ordered == ["ssh", "--proxy=work", "--user=joe", "root@luna", "uptime"])
    }
}
