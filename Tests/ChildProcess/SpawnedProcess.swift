#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
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
    /// How the child ended, once reaped. Every reap happens under this lock, and so does every signal:
    /// a pid is only recycled after its reap, so one signalled under the lock is still our child (or its
    /// zombie).
    private let reaped = Mutex<Ending?>(nil)

    private enum Ending {
        /// The raw wait status.
        case status(Int32)
        /// Reaped by someone else (ECHILD): ended, how is unknown.
        case unknown
    }

    /// Starts `executable` (a path, not looked up in PATH) with `arguments`. `environment` nil inherits
    /// ours. Each standard stream is the given descriptor (duplicated; the caller still owns and closes
    /// it) or /dev/null when nil.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        stdin: Int32? = nil, stdout: Int32? = nil, stderr: Int32? = nil
    ) throws(SpawnError) {
        #if canImport(Darwin)
        var actions: posix_spawn_file_actions_t? = nil
        #else
        var actions = posix_spawn_file_actions_t()
        #endif
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
        #if !canImport(Darwin)
        if let closeFrom = Self.addCloseFrom {
            let closed = closeFrom(&actions, STDERR_FILENO + 1)
            guard closed == 0 else { throw SpawnError(executable: executable, step: "closefrom", code: closed) }
        }
        #endif

        // Default dispositions and an empty mask: ignoring SIGPIPE (as the tests do) or a blocked signal
        // on the spawning thread must not carry over into a worker that is meant to die of SIGTERM.
        #if canImport(Darwin)
        var attributes: posix_spawnattr_t? = nil
        // Darwin closes every descriptor not named in the file actions itself.
        let closeOthers = Int32(POSIX_SPAWN_CLOEXEC_DEFAULT)
        #else
        var attributes = posix_spawnattr_t()
        let closeOthers: Int32 = 0
        #endif
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | closeOthers))

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

    #if !canImport(Darwin)
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// glibc ≥ 2.34's `posix_spawn_file_actions_addclosefrom_np`, which Swift's Glibc module does not
    /// import; looked up at run time. Without it (older glibc) only descriptors opened close-on-exec stay
    /// ours, which is said once on stderr.
    private static let addCloseFrom: AddCloseFrom? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
            FileHandle.standardError.write(Data(
                "SpawnedProcess: this libc has no posix_spawn_file_actions_addclosefrom_np; children inherit descriptors not opened close-on-exec\n".utf8))
            return nil
        }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()
    #endif

    /// This process's environment, for a child that gets it with a few changes.
    public static func currentEnvironment() -> [String: String] {
        ProcessInfo.processInfo.environment
    }

    /// Reaps the child if it has ended (never blocks).
    public var isRunning: Bool {
        reaped.withLock { ending in Self.reap(pid, &ending) }
    }

    /// As Foundation reports it: the exit code, or the signal's number when a signal ended it; -1 while it
    /// runs or when how it ended is unknown.
    public var terminationStatus: Int32 {
        reaped.withLock { ending in
            guard !Self.reap(pid, &ending), case .status(let raw) = ending else { return -1 }
            let signal = raw & 0x7f
            return signal == 0 ? (raw >> 8) & 0xff : signal
        }
    }

    /// True when a signal ended the child.
    public var wasSignalled: Bool {
        reaped.withLock { ending in
            guard !Self.reap(pid, &ending), case .status(let raw) = ending else { return false }
            let signal = raw & 0x7f
            return signal != 0 && signal != 0x7f
        }
    }

    /// Sends `signal` unless the child has been reaped (its pid may belong to another process by then).
    public func signal(_ signal: Int32) {
        reaped.withLock { ending in
            if ending == nil { _ = kill(pid, signal) }
        }
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

    /// Blocks this thread until the child ends (for timings: no polling interval in the figure). Waits
    /// without reaping (`WNOWAIT`), then reaps under the lock like everyone else.
    public func waitUntilExit() {
        guard isRunning else { return }
        var info = siginfo_t()
        var result: Int32
        repeat { result = waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) } while result == -1 && errno == EINTR
        while isRunning { usleep(100) }  // reaped by now, unless waitid failed
    }

    /// One reap attempt under the lock; true while the child runs.
    private static func reap(_ pid: pid_t, _ ending: inout Ending?) -> Bool {
        if ending != nil { return false }
        var raw: Int32 = 0
        let result = waitpid(pid, &raw, WNOHANG)
        if result == pid {
            ending = .status(raw)
            return false
        }
        if result == -1 && errno == ECHILD {
            ending = .unknown
            return false
        }
        return true
    }

    deinit {
        // Reap an ended child now; one still running is reaped by a thread of its own when it ends, so a
        // child a test killed and dropped does not stay a zombie.
        let pid = pid
        let running = reaped.withLock { ending in Self.reap(pid, &ending) }
        if running {
            Thread.detachNewThread {
                var raw: Int32 = 0
                while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
            }
        }
    }
}

/// A child could not be started; names the program and the step with the errno it failed with.
public struct SpawnError: Error, CustomStringConvertible {
    public let executable: String
    public let step: String
    public let code: Int32

    public init(executable: String, step: String, code: Int32) {
        self.executable = executable
        self.step = step
        self.code = code
    }

    public var description: String { "cannot start \(executable): \(step) failed: \(String(cString: strerror(code)))" }
}
