import Foundation

@testable import CompassTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The one way the tests start servers and long-lived programs.
enum Spawn {
    /// posix_spawn with every signal unblocked and at its default (a server started from a test
    /// thread must not inherit that thread's blocked SIGTERM and SIGCHLD), the given environment
    /// (else the test process's), and no descriptor of the test process but an optional
    /// listening socket as standard input: a server that kept another test's pipe open would make
    /// that test wait for the pipe's end as long as the server runs.
    /// With `ownGroup`, the program leads a process group of its own, so that stopping the
    /// group stops the workers it forks too (fcgiwrap).
    static func process(
        _ argv: [String], standardInput: Int32? = nil, environment: [String: String]? = nil, stderr: String,
        ownGroup: Bool = false
    ) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        var all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (ownGroup ? POSIX_SPAWN_SETPGROUP : 0)))
        if ownGroup { posix_spawnattr_setpgroup(&attributes, 0) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let standardInput {
            posix_spawn_file_actions_adddup2(&actions, standardInput, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_APPEND | O_CREAT, 0o600)
        let closing = spawnCloseFrom(&actions, 3)
        guard closing == 0 else { throw POSIXError(POSIXErrorCode(rawValue: closing) ?? .EINVAL) }
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for copy in cArgs + (cEnv ?? []) { free(copy) } }
        var pid: pid_t = 0
        let result =
            cEnv.map { posix_spawn(&pid, argv[0], &actions, &attributes, cArgs, $0) }
            ?? posix_spawn(&pid, argv[0], &actions, &attributes, cArgs, environ)
        guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EINVAL) }
        return pid
    }

    /// SIGTERM (with `group`, to the process group it leads too), up to `graceMilliseconds` to
    /// exit, then SIGKILL; reaped either way.
    static func stop(_ pid: pid_t, group: Bool = false, graceMilliseconds: Int = 2_000) {
        if group { kill(-pid, SIGTERM) }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<(graceMilliseconds / 20) where waitpid(pid, &status, WNOHANG) == 0 { usleep(20_000) }
        if waitpid(pid, &status, WNOHANG) == 0 {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
        }
    }
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which the Glibc module
/// does not export.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func spawnCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32
