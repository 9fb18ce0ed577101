#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A child process started with `posix_spawn`, for the tests, the chaos run and the benchmarks.
///
/// Not Foundation's `Process`: on Linux its `run()` looks for the highest open descriptor by copying the
/// whole 256-byte `d_name` of every `/proc/self/fd` entry. Once a process holds about 1,350 descriptors (a
/// parallel test run does: each test's databases, fake servers and pipes) the last entry ends glibc's
/// 32 KiB directory buffer and that copy reads past it: SIGSEGV in `memcpy` inside `Process.run()`, which
/// took a whole CI run down. Here the child closes every descriptor above stderr itself (`closefrom`).
public final class SpawnedProcess: Sendable {
    public let pid: pid_t
    /// The raw wait status once reaped.
    private let reaped = Mutex<Int32?>(nil)

    /// Starts `executable` (a path, not looked up in PATH) with `arguments`. `environment` nil inherits
    /// ours. Each standard stream is the given descriptor (duplicated; the caller still owns and closes
    /// it) or /dev/null when nil.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        stdin: Int32? = nil, stdout: Int32? = nil, stderr: Int32? = nil
    ) throws(SpawnError) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, source) in [(STDIN_FILENO, stdin), (STDOUT_FILENO, stdout), (STDERR_FILENO, stderr)] {
            let result = if let source {
                posix_spawn_file_actions_adddup2(&actions, source, target)
            } else {
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == STDIN_FILENO ? O_RDONLY : O_WRONLY, 0)
            }
            guard result == 0 else { throw SpawnError(executable: executable, step: "file actions", code: result) }
        }
        if let closeFrom = Self.addCloseFrom {
            let closed = closeFrom(&actions, STDERR_FILENO + 1)
            guard closed == 0 else { throw SpawnError(executable: executable, step: "closefrom", code: closed) }
        }

        // Default dispositions and an empty mask: ignoring SIGPIPE (as the tests do) or a blocked signal
        // on the spawning thread must not carry over into a worker that is meant to die of SIGTERM.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let environment = environment ?? Self.currentEnvironment()
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid = pid_t()
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw SpawnError(executable: executable, step: "posix_spawn", code: result) }
        self.pid = pid
    }

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// glibc ≥ 2.34's `posix_spawn_file_actions_addclosefrom_np`, which Swift's Glibc module does not
    /// import; looked up at run time. Without it, only descriptors opened close-on-exec stay ours.
    private static let addCloseFrom: AddCloseFrom? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

    /// This process's environment, for a child that gets it with a few changes.
    public static func currentEnvironment() -> [String: String] {
        var environment: [String: String] = [:]
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            cursor += 1
        }
        return environment
    }

    /// Reaps the child if it has ended (never blocks).
    public var isRunning: Bool {
        reaped.withLock { status in
            if status != nil { return false }
            var raw: Int32 = 0
            let result = waitpid(pid, &raw, WNOHANG)
            if result == pid {
                status = raw
                return false
            }
            // ECHILD: reaped elsewhere; it has ended, how is unknown.
            if result == -1 && errno == ECHILD {
                status = 0x7f00
                return false
            }
            return true
        }
    }

    /// As Foundation reports it: the exit code, or the signal's number when a signal ended it; -1 while it runs.
    public var terminationStatus: Int32 {
        guard !isRunning, let raw = reaped.withLock({ $0 }) else { return -1 }
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : signal
    }

    /// True when a signal ended the child.
    public var wasSignalled: Bool {
        guard !isRunning, let raw = reaped.withLock({ $0 }) else { return false }
        let signal = raw & 0x7f
        return signal != 0 && signal != 0x7f
    }

    public func signal(_ signal: Int32) {
        // A reaped pid may be reused by an unrelated process: never signal it.
        if isRunning { _ = kill(pid, signal) }
    }

    /// Waits (without blocking a thread) until the child ends; false if `timeout` passes first.
    public func waitForExit(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isRunning {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    /// Blocks this thread until the child ends (for timings: no polling interval in the figure).
    public func waitUntilExit() {
        guard isRunning else { return }
        var raw: Int32 = 0
        var result: pid_t
        repeat { result = waitpid(pid, &raw, 0) } while result == -1 && errno == EINTR
        reaped.withLock { status in
            // A concurrent `isRunning` may have seen ECHILD and stored "unknown"; ours is the real status.
            if result == pid { status = raw } else if status == nil { status = 0x7f00 }
        }
    }

    deinit {
        // Reap an ended child so it does not linger as a zombie.
        _ = isRunning
    }
}

/// A child could not be started; names the program and the step with the errno it failed with.
public struct SpawnError: Error, CustomStringConvertible {
    public let executable: String
    public let step: String
    public let code: Int32

    public var description: String { "cannot start \(executable): \(step) failed: \(String(cString: strerror(code)))" }
}
