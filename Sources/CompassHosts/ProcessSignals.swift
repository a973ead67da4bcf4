#if canImport(Glibc)
    import Glibc
#endif

/// Signal set-up of a process that serves many requests (FastCGI, Lambda).
enum ProcessSignals {
    /// SIGTERM must reach the process even if whatever started it blocked the signal (the mask
    /// is inherited), and a peer that went away is a failed write, not the end of the process.
    static func unblockTerminationAndIgnoreBrokenPipes() {
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &unblock, nil)
        signal(SIGPIPE, SIG_IGN)
    }
}
