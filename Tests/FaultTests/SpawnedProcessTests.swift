import ChildProcess
import Foundation
import TestSupport
import Testing

/// The children every test, the chaos run and the benchmarks start: what they inherit from us.
@Suite struct SpawnedProcessTests {
    /// Foundation's `Process.run()` crashed (SIGSEGV) in a test process holding ~1,360 descriptors; ours
    /// starts a child with 1,500 extra descriptors open (fewer under a low hard limit), and the child inherits none of them.
    @Test func aChildStartsWithManyDescriptorsOpenAndInheritsNoneOfThem() async throws {
        var extra: [Int32] = []
        defer { for descriptor in extra { close(descriptor) } }
        let count = DescriptorLimit.current >= 8_192 ? 1_500 : DescriptorLimit.current / 4
        for _ in 0..<count {
            let descriptor = open("/dev/null", O_RDONLY)  // deliberately not close-on-exec
            try #require(descriptor >= 0)
            extra.append(descriptor)
        }
        let child = try Child("/bin/sh", ["-c", "ls /proc/$$/fd"])
        let result = await child.finish(within: .seconds(20))
        #expect(result.status == 0, "\(result.stderr)")
        let inherited = result.stdout.split(separator: "\n").compactMap { Int32($0) }.filter { $0 > 2 }
        // ls's own directory handle may show up; none of the 1,500 may.
        #expect(Set(inherited).isDisjoint(with: Set(extra)), "inherited: \(inherited.prefix(10))")
        #expect(result.stdout.split(separator: "\n").count <= 4, "\(result.stdout.prefix(200))")
    }

    /// The tests ignore SIGPIPE; a child must not: a worker meant to die of a signal dies of it.
    @Test func aChildGetsDefaultSignalDispositions() async throws {
        signal(SIGPIPE, SIG_IGN)
        let child = try Child("/bin/sh", ["-c", "kill -PIPE $$; echo survived"])
        let result = await child.finish(within: .seconds(20))
        #expect(!result.stdout.contains("survived"))
        #expect(child.process.wasSignalled)
        #expect(result.status == SIGPIPE)
    }

    @Test func aMissingProgramIsATypedError() {
        #expect(throws: SpawnError.self) { try SpawnedProcess("/nonexistent/program", []) }
    }
}
