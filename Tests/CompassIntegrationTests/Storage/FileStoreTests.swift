import Foundation
import GlibcCompat
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct FileStoreTests {
    @Test func recordsAreOwnerOnlyAndLiveUnderTheRoot() throws {
        let folder = TemporaryFolder()
        let store = try FileStore(root: folder.path + "/s")
        try store.put("meta/integration/t1", Array("{}".utf8))
        let file = folder.path + "/s/meta/integration/t1.rec"
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let dir = try FileManager.default.attributesOfItem(atPath: folder.path + "/s/meta/integration")
        #expect((dir[.posixPermissions] as? Int) == 0o700)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path + "/s/meta/integration")
        #expect(leftovers == ["t1.rec"])
    }

    /// A batch leaves no temporary file behind: neither those renamed into place nor that of a
    /// create that found its key taken.
    @Test func aBatchLeavesNoTemporaryFile() throws {
        let folder = TemporaryFolder()
        let store = try FileStore(root: folder.path)
        try store.put("b/taken", Array("old".utf8), ttl: nil)
        let versions = try store.write([
            .create("b/taken", Array("new".utf8), ttl: nil), .put("b/one", Array("1".utf8), ttl: nil),
            .create("b/two", Array("2".utf8), ttl: 60),
        ])
        #expect(versions[0] == nil && versions[1] != nil && versions[2] != nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path + "/b").sorted() == ["one.rec", "taken.rec", "two.rec"])
        #expect(try store.get("b/taken")?.value == Array("old".utf8))
    }

    /// A bulk load (a store that does not flush) links each record in without reading its name
    /// first; a name taken goes the usual way: put replaced with a newer version, a live record
    /// kept against a create, an expired one created anew.
    @Test func aBulkLoadOverRecordsThereKeepsWhatAWriteMeans() throws {
        let folder = TemporaryFolder()
        let clock = TestClock()
        let store = try FileStore(root: folder.path, clock: clock)
        let old = try store.put("b/put", Array("old".utf8), ttl: nil)
        try store.put("b/live", Array("live".utf8), ttl: nil)
        try store.put("b/expired", Array("gone".utf8), ttl: 1)
        clock.advance(2)
        let bulk = try FileStore(root: folder.path, clock: clock, durable: false)
        let versions = try bulk.write([
            .put("b/put", Array("new".utf8), ttl: nil), .create("b/live", Array("no".utf8), ttl: nil),
            .create("b/expired", Array("anew".utf8), ttl: nil), .put("b/fresh", Array("fresh".utf8), ttl: nil),
        ])
        #expect(versions[0].map { $0 > old } == true && versions[1] == nil && versions[2] != nil && versions[3] != nil)
        #expect(try store.get("b/put") == Versioned(value: Array("new".utf8), version: versions[0]!))
        #expect(try store.get("b/live")?.value == Array("live".utf8))
        #expect(try store.get("b/expired")?.value == Array("anew".utf8))
        #expect(try store.get("b/fresh")?.value == Array("fresh".utf8))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: folder.path + "/b").sorted() == [
                "expired.rec", "fresh.rec", "live.rec", "put.rec",
            ])
    }

    /// A bulk load links its records in without taking their folder's lock. A locked write that
    /// found a name free and finds it taken when it links its record in reads it anew: a create
    /// then refuses, as it would have had it come second, and never writes over the record
    /// linked in meanwhile. The two start on each key together (two threads meeting before each):
    /// every key ends with the bulk load's value (a put after the create replaces its record, one
    /// before refuses it).
    @Test func aCreateRacingABulkLoadNeverWritesOverWhatItLinkedIn() throws {
        let folder = TemporaryFolder()
        let locked = try FileStore(root: folder.path, durable: false)
        let bulk = try FileStore(root: folder.path, durable: false)
        let keys = (0..<1000).map { "race/k\($0 % 30)/r\($0)" }
        let arrived = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
        let done = DispatchGroup()
        for side in 0..<2 {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                for (index, key) in keys.enumerated() {
                    arrived.add(1, ordering: .sequentiallyConsistent)
                    while arrived.load(ordering: .sequentiallyConsistent) < 2 * (index + 1) { sched_yield() }
                    do {
                        if side == 0 {
                            _ = try bulk.write([.put(key, Array("bulk".utf8), ttl: nil)])
                        } else {
                            try locked.create(key, Array("create".utf8), ttl: nil)
                        }
                    } catch StoreError.alreadyExists {
                    } catch {
                        failures.withLock { $0.append("\(key): \(error)") }
                    }
                }
            }
        }
        done.wait()
        #expect(failures.withLock { $0 } == [])
        let overwritten = try keys.filter { try locked.get($0)?.value != Array("bulk".utf8) }
        #expect(overwritten == [])
    }

    /// The names that came into `folder` while `body` ran, as inotify saw them: made
    /// (`IN_CREATE`, a link included) or renamed in (`IN_MOVED_TO`).
    static func namesAppearing(in folder: String, during body: () throws -> Void) throws -> [String] {
        let watcher = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        try #require(watcher >= 0)
        defer { close(watcher) }
        try #require(inotify_add_watch(watcher, folder, UInt32(IN_CREATE | IN_MOVED_TO)) >= 0)
        try body()
        var names: [String] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let count = buffer.withUnsafeMutableBytes { read(watcher, $0.baseAddress!, $0.count) }
        var offset = 0
        while offset + MemoryLayout<inotify_event>.size <= max(count, 0) {
            let length = buffer.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)) }
            let start = offset + MemoryLayout<inotify_event>.size
            names.append(String(decoding: buffer[start..<(start + length)].prefix { $0 != 0 }, as: UTF8.self))
            offset = start + length
        }
        return names
    }

    /// Whether the temporary folders of this machine take unnamed files (`O_TMPFILE`) and this
    /// process can link them in through `/proc`.
    static let unnamedFilesWork: Bool = {
        guard FileStore.canLinkUnnamedFiles else { return false }
        let folder = TemporaryFolder()
        let fd = open(folder.path, O_WRONLY | 0o20_000_000 | O_DIRECTORY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return linkat(AT_FDCWD, "/proc/self/fd/\(fd)", AT_FDCWD, folder.path + "/probe", AT_SYMLINK_FOLLOW) == 0
    }()

    /// A new record is an unnamed file linked in under its name: no temporary name comes and
    /// goes in its folder, whether it is written alone or in a batch without a flush. A record
    /// replaced, and every record of a store told not to use unnamed files, comes by way of a
    /// temporary file renamed.
    @Test(.enabled(if: unnamedFilesWork, "this file system has no unnamed files"))
    func aNewRecordIsLinkedInWithoutATemporaryName() throws {
        let folder = TemporaryFolder()
        let store = try FileStore(root: folder.path)
        try store.put("n/first", Array("1".utf8))
        #expect(try Self.namesAppearing(in: folder.path + "/n") { try store.put("n/alone", Array("2".utf8)) } == ["alone.rec"])
        let batch = try Self.namesAppearing(in: folder.path + "/n") {
            _ = try store.write([.put("n/leased", Array("3".utf8), ttl: 60), .create("n/claimed", Array("4".utf8), ttl: 60)])
        }
        #expect(batch == ["leased.rec", "claimed.rec"])
        let replaced = try Self.namesAppearing(in: folder.path + "/n") { try store.put("n/alone", Array("5".utf8)) }
        #expect(replaced.count == 2 && replaced[0].hasPrefix(".tmp-") && replaced[1] == "alone.rec", "\(replaced)")
        #expect(try store.get("n/alone")?.value == Array("5".utf8))
        #expect(try store.get("n/claimed")?.value == Array("4".utf8))
        let refused = FileStore.unnamedFilesRefused.load(ordering: .relaxed)
        #expect(!refused)

        let named = try FileStore(root: folder.path, unnamedFiles: false)
        let seen = try Self.namesAppearing(in: folder.path + "/n") { try named.put("n/other", Array("6".utf8)) }
        #expect(seen.count == 2 && seen[0].hasPrefix(".tmp-") && seen[1] == "other.rec", "\(seen)")
        #expect(try store.get("n/other")?.value == Array("6".utf8))
    }

    /// An unnamed file is linked in by its descriptor (`AT_EMPTY_PATH`), which root may always
    /// do, and by its `/proc/self/fd` path in a process whose kernel refused that: the same
    /// records either way, a missing folder made, and a taken name still refused.
    @Test(.enabled(if: unnamedFilesWork, "this file system has no unnamed files"))
    func aNewRecordIsLinkedByItsDescriptorOrByItsProcPath() throws {
        let folder = TemporaryFolder()
        let store = try FileStore(root: folder.path)
        try store.put("n/first", Array("1".utf8))
        for (round, refused) in [false, true, false].enumerated() {
            FileStore.emptyPathRefused.store(refused, ordering: .relaxed)
            let name = (refused ? "proc" : "descriptor") + String(round)
            let made = try Self.namesAppearing(in: folder.path + "/n") { try store.put("n/\(name)", Array(name.utf8)) }
            #expect(made == ["\(name).rec"], "\(made)")
            #expect(try store.get("n/\(name)")?.value == Array(name.utf8))
            try store.put("new-\(name)/a", Array("1".utf8))
            #expect(try store.get("new-\(name)/a")?.value == Array("1".utf8))
            #expect(throws: StoreError.alreadyExists) { try store.create("n/\(name)", Array("again".utf8)) }
            let written = try store.write([
                .create("n/\(name)", Array("batch".utf8), ttl: nil), .create("n/\(name)-2", Array("2".utf8), ttl: nil),
            ])
            #expect(written[0] == nil && written[1] != nil)
            #expect(try store.get("n/\(name)")?.value == Array(name.utf8))
        }
        // As root, the kernel never refused the descriptor (CAP_DAC_READ_SEARCH; from Linux 6.10
        // any process may link what it opened).
        let refused = FileStore.emptyPathRefused.load(ordering: .relaxed)
        #expect(!refused || geteuid() != 0)
    }

    /// A new file put in place only under a free name, both ways: by `renameat2` with
    /// `RENAME_NOREPLACE` and by a link, the way taken where a file system refuses the flag
    /// (none here does). Either puts the file in place and removes its old name; either refuses
    /// a taken name with EEXIST and leaves both files as they were.
    @Test func aNewFileTakesOnlyAFreeNameEitherWay() throws {
        let folder = TemporaryFolder()
        for (way, put) in [("rename", compass_rename_new), ("link", compass_link_new)] {
            let from = folder.path + "/\(way)-temp"
            let to = folder.path + "/\(way)-record"
            try Data("new".utf8).write(to: URL(fileURLWithPath: from))
            #expect(put(from, to) == 0, "\(way)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: to)) == Data("new".utf8), "\(way)")
            #expect(access(from, F_OK) != 0, "\(way)")

            try Data("other".utf8).write(to: URL(fileURLWithPath: from))
            let refused = put(from, to)
            let failure = errno
            #expect(refused == -1 && failure == EEXIST, "\(way)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: to)) == Data("new".utf8), "\(way)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: from)) == Data("other".utf8), "\(way)")
        }
    }

    /// A key deep under folders that do not exist yet gets them all; one under existing folders
    /// gets its own, and a record at the root none.
    @Test func foldersAreMadeForAnyDepth() throws {
        let folder = TemporaryFolder()
        let store = try FileStore(root: folder.path + "/new/root")
        try store.put("a/b/c/d", Array("1".utf8))
        try store.put("a/b/e/f", Array("2".utf8))
        _ = try store.write([.put("a/g/h", Array("3".utf8), ttl: nil), .put("top", Array("4".utf8), ttl: 5)])
        #expect(try store.get("a/b/c/d")?.value == Array("1".utf8))
        #expect(try store.get("a/b/e/f")?.value == Array("2".utf8))
        #expect(try store.get("a/g/h")?.value == Array("3".utf8))
        #expect(try store.get("top")?.value == Array("4".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path + "/new/root/a/b").sorted() == ["c", "e"])
    }

    @Test func aCorruptRecordIsReportedAndCanBeOverwritten() throws {
        let folder = TemporaryFolder()
        let store = try FileStore(root: folder.path)
        try store.put("x/y", Array("good".utf8))
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: folder.path + "/x/y.rec"))
        #expect(throws: StoreError.corrupt("x/y")) { try store.get("x/y") }
        #expect(try store.list(prefix: "x/", after: nil, limit: 10).entries.isEmpty)
        try store.put("x/y", Array("repaired".utf8))
        #expect(try store.get("x/y")?.value == Array("repaired".utf8))
    }

    @Test func anUnwritableRootIsUnavailableNotACrash() throws {
        let folder = TemporaryFolder()
        try Data().write(to: URL(fileURLWithPath: folder.path + "/file"))
        let store = try FileStore(root: folder.path + "/file/store")
        #expect(try store.get("a") == nil)
        #expect(throws: StoreError.self) { try store.put("a", [1]) }
        #expect(throws: StoreError.self) { try FileStore(root: "relative/path") }
    }

    @Test func theLastRecordOfAFolderTakesTheFolderWithIt() throws {
        let folder = TemporaryFolder()
        let store = try FileStore(root: folder.path)
        try store.put("meta/outbox/tenant_x/e1", [1])
        _ = try store.put("meta/outbox/tenant_x/e2", [2], ttl: 60)
        try store.delete("meta/outbox/tenant_x/e1")
        #expect(FileManager.default.fileExists(atPath: folder.path + "/meta/outbox/tenant_x"))
        #expect(try store.sweepExpired(after: nil, limit: 10, asOf: Date().addingTimeInterval(120)).deleted == 1)
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/meta/outbox/tenant_x"))
        // Written again at once: the folder comes back.
        try store.put("meta/outbox/tenant_x/e3", [3])
        #expect(try store.get("meta/outbox/tenant_x/e3")?.value == [3])
    }

    @Test func theSweepDeletesTemporaryFilesOfWritersThatDied() throws {
        let folder = TemporaryFolder()
        let clock = TestClock(Date())
        let store = try FileStore(root: folder.path, clock: clock)
        try store.put("a/b", [1])
        let abandoned = folder.path + "/a/.tmp-0123456789abcdef"
        try Data([9]).write(to: URL(fileURLWithPath: abandoned))
        #expect(try store.sweepExpired(after: nil, limit: 10, asOf: clock.now).visited == 1)
        #expect(FileManager.default.fileExists(atPath: abandoned), "a writer may still be using it")
        clock.advance(2 * 3600)
        _ = try store.sweepExpired(after: nil, limit: 10, asOf: clock.now)
        #expect(!FileManager.default.fileExists(atPath: abandoned))
        #expect(try store.get("a/b")?.value == [1])
    }

    @Test func aCaseInsensitiveRootIsRefused() throws {
        let folder = TemporaryFolder()
        #expect(FileStore.isCaseSensitive(folder.path) == true)
        #expect(FileManager.default.fileExists(atPath: folder.path + "/" + FileStore.caseCheckedMarker) == false)
        do {
            _ = try FileStore(root: folder.path, isCaseSensitive: { _ in false })
            Issue.record("a case-insensitive root was accepted")
        } catch {
            #expect("\(error)".contains("case-insensitive"))
        }
        // A root created by the first write is checked as it is created.
        let lazy = try FileStore(root: folder.path + "/new", isCaseSensitive: { _ in false })
        #expect(throws: StoreError.self) { try lazy.put("meta/integration/Acme", [1]) }
        // Once found case-sensitive, the root is marked and not probed again.
        _ = try FileStore(root: folder.path)
        #expect(FileManager.default.fileExists(atPath: folder.path + "/" + FileStore.caseCheckedMarker))
        _ = try FileStore(root: folder.path, isCaseSensitive: { _ in false })
    }

    @Test func readingCreatesNothing() throws {
        let folder = TemporaryFolder()
        let store = try FileStore(root: folder.path + "/lazy")
        #expect(try store.get("meta/integration/t") == nil)
        #expect(try store.list(prefix: "meta/", after: nil, limit: 5).entries.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/lazy"))
    }

    /// Deleting a key that is not there makes no folder for it (a delete of an index entry that
    /// was never written leaves the disk as it was).
    @Test func deletingAnAbsentKeyMakesNoFolder() throws {
        let folder = TemporaryFolder()
        let store = try FileStore(root: folder.path + "/s")
        try store.put("meta/kept", Array("1".utf8))
        #expect(try store.delete("meta/meta-user/12345/tenant_a", ifVersion: nil) == false)
        #expect(try store.write([.delete("meta/other/67890/tenant_b")]) == [nil])
        // A delete or a swap on a version says the version is not there.
        #expect(throws: StoreError.versionMismatch) { try store.delete("meta/gone/t", ifVersion: 7) }
        #expect(throws: StoreError.versionMismatch) { try store.compareAndSwap("meta/swapped/t", [1], expected: 7, ttl: nil) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path + "/s/meta") == ["kept.rec"])
    }
}
