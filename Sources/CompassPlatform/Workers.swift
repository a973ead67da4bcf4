#if canImport(Glibc)
    import Glibc
#endif

/// Work spread over threads of its own, for work that waits on the network (Graph calls):
/// `DispatchQueue.concurrentPerform` runs no more at once than there are cores, so 32 calls
/// in flight on a 2-core machine would be 2.
package enum Workers {
    /// Runs `body(0..<count)` on `count` threads at once and returns when all have returned.
    /// A thread that cannot be started has its share run on the calling thread.
    package static func run(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        var threads: [pthread_t] = []
        for index in 1..<max(count, 1) {
            let job = Unmanaged.passRetained(Job { body(index) }).toOpaque()
            var thread = pthread_t()
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            pthread_attr_setstacksize(&attributes, 512 * 1024)
            let started = pthread_create(
                &thread, &attributes,
                { job in
                    let work = Unmanaged<Job>.fromOpaque(job!).takeRetainedValue()
                    work.run()
                    return nil
                }, job)
            pthread_attr_destroy(&attributes)
            if started == 0 {
                threads.append(thread)
            } else {
                Unmanaged<Job>.fromOpaque(job).takeRetainedValue().run()
            }
        }
        if count >= 1 { body(0) }
        for thread in threads { pthread_join(thread, nil) }
    }

    private final class Job {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }
}
