import Engine
import Testing

/// The command line from the kernel's copy (`/proc/self/cmdline`), which synthd parses and
/// re-execs with when a preloaded library left the Swift runtime's capture empty.
struct ProcessArgumentsTests {
    @Test func fieldsAreNULTerminatedWithEmptyArgumentsKept() {
        func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
        #expect(ProcessArguments.fields(ofCommandLine: bytes("synthd\0run\0--config\0a b.toml\0")) == ["synthd", "run", "--config", "a b.toml"])
        #expect(ProcessArguments.fields(ofCommandLine: bytes("synthd\0\0--x\0")) == ["synthd", "", "--x"],
                "an empty argument stays an argument")
        #expect(ProcessArguments.fields(ofCommandLine: bytes("synthd\0")) == ["synthd"])
        #expect(ProcessArguments.fields(ofCommandLine: bytes("synthd\0last")) == ["synthd", "last"],
                "a last argument without its NUL (a process that rewrote its command line) is kept")
        #expect(ProcessArguments.fields(ofCommandLine: []).isEmpty)
    }

    @Test func theRuntimesArgumentsAreUsedWhenItHasThem() {
        #expect(ProcessArguments.all == CommandLine.arguments)
        #expect(ProcessArguments.whereTheRuntimeHasNone() == nil)
    }
}
