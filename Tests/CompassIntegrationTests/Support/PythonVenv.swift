import Foundation
import Synchronization
import Testing

@testable import CompassTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A Python virtual environment under .build with PyPI packages, made once and then reused.
/// Made by one maker at a time, thread or process: each holds an exclusive `flock` on a file
/// beside the folder while it works (scripts/lib/common.sh's `ensure_venv` takes the same lock).
/// Two `python3 -m venv` on one folder at once take each other's `pip` away mid-install; a
/// folder left without its marker by a maker that failed is made anew.
enum PythonVenv {
    /// The folder, with `packages` installed in it.
    static func ensure(_ folder: URL, installing packages: [String]) throws -> URL {
        let marker = folder.appendingPathComponent(".installed")
        if FileManager.default.fileExists(atPath: marker.path) { return folder }
        try FileManager.default.createDirectory(at: folder.deletingLastPathComponent(), withIntermediateDirectories: true)
        let file = open(folder.path + ".lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard file >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(file) }
        while flock(file, LOCK_EX) != 0 {
            guard errno == EINTR else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        }
        // Made by another maker while this one waited.
        if FileManager.default.fileExists(atPath: marker.path) { return folder }
        try SDKParityTests.run("/usr/bin/env", ["python3", "-m", "venv", "--clear", folder.path])
        try SDKParityTests.run(folder.appendingPathComponent("bin/pip").path, ["install", "--quiet"] + packages)
        try Data().write(to: marker)
        return folder
    }
}

@Suite struct PythonVenvTests {
    /// Another maker holds the folder's lock: `ensure` waits while it works and, finding the
    /// folder made when the lock comes free, makes nothing of its own (the package asked for does
    /// not exist, so a second maker would fail).
    @Test(.timeLimit(.minutes(1)))
    func aMakerWaitsForTheOneAtWorkAndTakesWhatItMade() throws {
        let root = TemporaryFolder()
        let folder = URL(fileURLWithPath: root.path).appendingPathComponent("python/tool")
        try FileManager.default.createDirectory(at: folder.deletingLastPathComponent(), withIntermediateDirectories: true)
        let other = open(folder.path + ".lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        try #require(other >= 0)
        defer { close(other) }
        try #require(flock(other, LOCK_EX) == 0)

        let outcome = Mutex<Result<URL, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let result = Result { try PythonVenv.ensure(folder, installing: ["compass-no-such-package-on-pypi==0"]) }
            outcome.withLock { $0 = result }
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 1) == .timedOut, "ensure did not wait for the lock")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("bin").path))

        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data().write(to: folder.appendingPathComponent(".installed"))
        flock(other, LOCK_UN)
        try #require(done.wait(timeout: .now() + 30) == .success)
        #expect(try outcome.withLock { try $0?.get() } == folder)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("bin").path))
    }
}
