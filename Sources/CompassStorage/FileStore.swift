import CompassPlatform
import GlibcCompat
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One file per key under a root folder: key `a/b/c` is the file `a/b/c.rec`. Key segments are
/// `[A-Za-z0-9_-]`, so no key can name a path outside the root, and `.rec` files, folders and
/// `.tmp-` files never collide. Writes are atomic: a new record is an unnamed file
/// (`O_TMPFILE`) written, fsynced and linked in under its name, a changed one a temp file
/// fsynced and renamed over the old, and the folder fsynced after either (a batch's durable
/// records are temp files flushed together; where the file system has no unnamed files, every
/// write takes the temp file's way; a batch's record most likely new, a create's or any of a
/// bulk load, is linked in without its name read first, and goes the usual way when the name
/// is taken);
/// records with a TTL (OAuth states, leases, sent markers) are ephemeral by nature and skip the
/// fsyncs: a crash may lose one, never tear one;
/// every write takes an exclusive `flock` on the key's folder, so compare-and-swap is safe
/// across processes, but for a bulk load's new record: linked in without the lock (the link
/// refuses a taken name, which then goes the usual way), while a locked write that found a name
/// free and finds it taken when it links reads it anew. Files are readable by the owner only.
/// Deleting a key's last record removes its folder too, and `sweepExpired` deletes expired
/// records and abandoned temporary files, so the disk holds live data only.
package struct FileStore: KeyValueStore {
    package let root: String
    package let clock: any Clock
    /// False for bulk loads (`compass-dev seed-tenants`): no record is fsynced, so a crash
    /// may lose the latest writes (never tear one). Handlers always write durably.
    package let durable: Bool
    private let isCaseSensitive: @Sendable (String) -> Bool?
    /// Whether new records start as unnamed files (`O_TMPFILE`), linked in by their descriptor
    /// or their `/proc/self/fd` path (`link(_:as:)`): one change of the folder instead of a
    /// temp file's two (its name made, then renamed away), and nothing left behind by a writer
    /// that dies.
    private let unnamedFiles: Bool
    /// Sorted listings of folders, kept for `scan` (a walk over many pages in one process).
    private let snapshots = FolderSnapshots()

    private static let magic: [UInt8] = Array("CKV1".utf8)
    private static let headerSize = 20
    /// Written into a root found to tell `Acme` from `acme`, so the check runs once per root.
    static let caseCheckedMarker = ".case-sensitive"
    /// A temporary file this old belongs to a writer that died before its rename.
    static let abandonedTemporarySeconds: Int64 = 3600
    /// Whether this process can link an unnamed file in: it needs `/proc`.
    package static let canLinkUnnamedFiles = access("/proc/self/fd", X_OK) == 0
    /// Set once a file system refused an unnamed file: this process writes temp files after.
    static let unnamedFilesRefused = Atomic<Bool>(false)

    /// The root folder is created with the first write, so a handler that only reads (or
    /// never touches the store) creates nothing. A root on a filesystem that does not tell
    /// upper from lower case is refused: tenants `Acme` and `acme` would share records.
    package init(
        root: String, clock: any Clock = SystemClock(), durable: Bool = true,
        isCaseSensitive: @escaping @Sendable (String) -> Bool? = { FileStore.isCaseSensitive($0) },
        unnamedFiles: Bool = FileStore.canLinkUnnamedFiles
    ) throws(StoreError) {
        guard root.hasPrefix("/") else { throw .unavailable("the store root must be an absolute path") }
        self.root = root
        self.clock = clock
        self.durable = durable
        self.isCaseSensitive = isCaseSensitive
        self.unnamedFiles = unnamedFiles
        if access(root, F_OK) == 0 && access(root + "/" + Self.caseCheckedMarker, F_OK) != 0 {
            try Self.checkCaseSensitivity(root, isCaseSensitive)
        }
    }

    /// Whether `folder` tells `a` from `A`: a probe file is made with upper-case letters and
    /// looked for in lower case. nil when nothing can be written there (the first write will say
    /// why).
    package static func isCaseSensitive(_ folder: String) -> Bool? {
        let name = "/.case-probe-" + Hex.encode(Crypto.randomBytes(6))
        let fd = open(folder + name + "-AB", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        close(fd)
        defer { unlink(folder + name + "-AB") }
        return access(folder + name + "-ab", F_OK) != 0
    }

    private static func checkCaseSensitivity(_ root: String, _ isCaseSensitive: @Sendable (String) -> Bool?) throws(StoreError) {
        switch isCaseSensitive(root) {
        case false?:
            throw .unavailable(
                "the store root \(root) is on a case-insensitive filesystem; tenant ids differing only in case would share records")
        case true?:
            let fd = open(root + "/" + caseCheckedMarker, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
            if fd >= 0 { close(fd) }
        case nil:
            break
        }
    }

    // MARK: KeyValueStore

    package func get(_ key: String) throws(StoreError) -> Versioned? {
        try StoreKey.validate(key)
        return try read(path(for: key), key: key)
    }

    @discardableResult
    package func put(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> UInt64 {
        try mutate(key) { current throws(StoreError) in .write(value, ttl) }
    }

    @discardableResult
    package func create(_ key: String, _ value: [UInt8], ttl: Int?) throws(StoreError) -> UInt64 {
        try mutate(key) { current throws(StoreError) in
            guard current == nil else { throw .alreadyExists }
            return .write(value, ttl)
        }
    }

    @discardableResult
    package func compareAndSwap(_ key: String, _ value: [UInt8], expected version: UInt64, ttl: Int?) throws(StoreError) -> UInt64 {
        // A key whose folder does not exist has no version: no folder is made to say so.
        let missing: () throws(StoreError) -> UInt64 = { () throws(StoreError) in throw .versionMismatch }
        return try mutate(key, ifMissing: missing) { current throws(StoreError) in
            guard current?.version == version else { throw .versionMismatch }
            return .write(value, ttl)
        }
    }

    @discardableResult
    package func delete(_ key: String, ifVersion version: UInt64?) throws(StoreError) -> Bool {
        var deleted = false
        // A key whose folder does not exist is absent: nothing to lock, and no folder is made.
        let missing: () throws(StoreError) -> UInt64 = { () throws(StoreError) in
            if version != nil { throw .versionMismatch }
            return 0
        }
        _ = try mutate(key, ifMissing: missing) { current throws(StoreError) in
            if let version, current?.version != version { throw .versionMismatch }
            deleted = current != nil
            return .remove
        }
        return deleted
    }

    /// Every durable record written to a temporary file first, then one `syncfs` for all of them
    /// (instead of an fsync each), then each renamed into place under its folder's lock (where
    /// a create finds its key taken and drops its file), then each folder synced once: as
    /// durable and as atomic per key as the writes one by one, at a fraction of the flushes.
    /// Consecutive writes into one folder (a request's claims, its outbox entries) share one
    /// taking of the lock; deletes are unlinked under it too, their folders synced once after.
    /// A record that is not to be flushed (one with a TTL, any in a store that is not durable)
    /// is written once its folder is locked, as `put` writes it: a new one as an unnamed file;
    /// a bulk load's (a store that is not durable) is linked in before, without the lock.
    package func write(_ writes: [BatchWrite]) throws(StoreError) -> [UInt64?] {
        for write in writes { try StoreKey.validate(write.key) }
        var staged: [(file: Staged, version: UInt64)] = []
        staged.reserveCapacity(writes.count)
        // A temporary file not renamed into place (a create that found its key taken, a failure).
        var placed = [Bool](repeating: false, count: writes.count)
        defer {
            for (index, (file, _)) in staged.enumerated() where !placed[index] {
                if case .named(let temp) = file { unlink(temp) }
            }
        }
        var needsSync = false
        // Deletes write nothing first; their folders are synced after, as a delete alone is.
        var deletes = false
        for write in writes {
            let (value, ttl): ([UInt8], Int?)
            switch write {
            case .put(_, let bytes, let life), .create(_, let bytes, let life): (value, ttl) = (bytes, life)
            case .delete:
                deletes = true
                staged.append((.nothing, 0))
                continue
            }
            let version = StoreVersion.next(after: nil)
            let expires = ttl.map { clock.now.unixSeconds + Int64(max($0, 1)) } ?? 0
            let bytes = Self.encode(value, version: version, expiresAt: expires)
            if durable && ttl == nil {
                staged.append((.named(try writeTemporary(for: write.key, bytes)), version))
                needsSync = true
            } else {
                staged.append((.bytes(bytes), version))
            }
        }
        if needsSync {
            let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0, flushFileSystem(fd) == 0 else {
                if fd >= 0 { close(fd) }
                throw .unavailable("cannot flush the store (errno \(errno))")
            }
            close(fd)
        }
        var versions: [UInt64?] = []
        versions.reserveCapacity(writes.count)
        var folders: Set<String> = []
        var index = 0
        while index < writes.count {
            // A bulk load's record is linked in without its folder's lock (the folder made first
            // where there is none): the link itself refuses a name taken, which then goes the
            // usual way, under the lock.
            if !durable, case .bytes(let bytes) = staged[index].file {
                let file = path(for: writes[index].key)
                let folder = Self.folder(of: file)
                var outcome = try linkNew(file, folder: folder, bytes: bytes, sync: false)
                if outcome == .noFolder {
                    try makeFolders(for: writes[index].key)
                    outcome = try linkNew(file, folder: folder, bytes: bytes, sync: false)
                }
                if outcome == .linked {
                    placed[index] = true
                    versions.append(staged[index].version)
                    index += 1
                    continue
                }
            }
            index = try placeRun(from: index, of: writes, staged: staged, placed: &placed, versions: &versions, folders: &folders)
        }
        if needsSync || deletes {
            for folder in folders {
                let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                if fd >= 0 {
                    fsync(fd)
                    close(fd)
                }
            }
        }
        return versions
    }

    /// The writes from `index` on that share its folder, put in place under one taking of its
    /// lock (a staged temporary file renamed, a record that needs no flush written there), up to
    /// one whose version does not grow (a record from a clock ahead of this
    /// one), which is written the slow way once the lock is let go. The index after them.
    private func placeRun(
        from index: Int, of writes: [BatchWrite], staged: [(file: Staged, version: UInt64)], placed: inout [Bool],
        versions: inout [UInt64?], folders: inout Set<String>
    ) throws(StoreError) -> Int {
        // A run that begins with a delete in a folder that does not exist: that delete has
        // nothing to do, and no folder is made for it.
        var ifMissing: (() throws(StoreError) -> (Int, Bool))? = nil
        if case .delete = writes[index] { ifMissing = { (-1, false) } }
        let (next, slow) = try withLockedFolder(of: writes[index].key, ifMissing: ifMissing) {
            _, folder, lock throws(StoreError) -> (Int, Bool) in
            var next = index
            // A run that deleted may have emptied the folder, which then goes (as `mutate` does).
            var emptied = false
            defer { if emptied { removeIfEmpty(folder) } }
            while next < writes.count {
                let file = path(for: writes[next].key)
                // The first is in the locked folder; the run ends at a write into another.
                if next > index, !file.hasPrefix(folder + "/") || file.utf8.dropFirst(folder.utf8.count + 1).contains(UInt8(ascii: "/")) {
                    break
                }
                if case .delete = writes[next] {
                    guard unlink(file) == 0 || errno == ENOENT else { throw .unavailable("cannot delete record (errno \(errno))") }
                    emptied = true
                    folders.insert(folder)
                    versions.append(nil)
                    next += 1
                    continue
                }
                // A record most likely new (a create's, any of a bulk load) is linked in without
                // a read first: the link finds a name taken, which then goes the usual way.
                if case .bytes(let bytes) = staged[next].file, !durable || writes[next].isCreate,
                    try linkNew(file, folder: folder, bytes: bytes, sync: false) == .linked
                {
                    placed[next] = true
                    folders.insert(folder)
                    versions.append(staged[next].version)
                    next += 1
                    continue
                }
                let (current, exists) = try readForChange(file, key: writes[next].key)
                if case .create = writes[next], current != nil {
                    versions.append(nil)
                    next += 1
                    continue
                }
                let (staging, version) = staged[next]
                guard version > current?.version ?? 0 else { return (next, true) }
                switch staging {
                case .named(let temp) where writes[next].isCreate && !exists:
                    // Renamed only onto a free name: a bulk load's record linked in meanwhile
                    // (without the lock) keeps its name, and the create refuses, as had it come
                    // second.
                    if compass_rename_new(temp, file) != 0 {
                        guard errno == EEXIST else { throw .unavailable("cannot write record (errno \(errno))") }
                        versions.append(nil)
                        next += 1
                        continue
                    }
                case .named(let temp):
                    guard rename(temp, file) == 0 else { throw .unavailable("cannot write record (errno \(errno))") }
                case .bytes(let bytes):
                    // The name found free and taken since (by a bulk load's link): read anew.
                    guard try writeAtomically(file, folder: folder, folderDescriptor: lock, bytes: bytes, durable: false, replacing: exists)
                    else { continue }
                case .nothing:
                    break
                }
                placed[next] = true
                folders.insert(folder)
                versions.append(version)
                next += 1
            }
            return (next, false)
        }
        if next < 0 {
            versions.append(nil)
            return index + 1
        }
        guard slow else { return next }
        switch writes[next] {
        case .put(let key, let value, let ttl): versions.append(try put(key, value, ttl: ttl))
        case .create(let key, let value, let ttl): versions.append(try? create(key, value, ttl: ttl))
        case .delete(let key):
            _ = try delete(key, ifVersion: nil)
            versions.append(nil)
        }
        return next + 1
    }

    package func list(prefix: String, after: String?, limit: Int) throws(StoreError) -> KeyPage {
        try page(prefix: prefix, after: after, limit: limit, snapshot: false)
    }

    /// As `list`, but each folder is read and sorted once per `FolderSnapshots.lifetime` in this
    /// process: walking N keys page by page costs one pass over each folder, not one per page.
    package func scan(prefix: String, after: String?, limit: Int) throws(StoreError) -> KeyPage {
        try page(prefix: prefix, after: after, limit: limit, snapshot: true)
    }

    private func page(prefix: String, after: String?, limit: Int, snapshot: Bool) throws(StoreError) -> KeyPage {
        try StoreKey.validatePrefix(prefix)
        guard limit > 0 else { return KeyPage(entries: [], cursor: after) }
        var entries: [(key: String, value: Versioned)] = []
        try walk(prefix: prefix, after: after, snapshot: snapshot) { key throws(StoreError) in
            if let value = try read(path(for: key), key: key) { entries.append((key, value)) }
            return entries.count <= limit
        }
        return KeyPage(upTo: limit, of: entries)
    }

    /// Reads only each record's header (for its expiry): counting a large outbox costs no values.
    package func count(prefix: String) throws(StoreError) -> Int {
        try StoreKey.validatePrefix(prefix)
        var total = 0
        try walk(prefix: prefix, after: nil) { key throws(StoreError) in
            if try read(path(for: key), key: key, headerOnly: true) != nil { total += 1 }
            return true
        }
        return total
    }

    @discardableResult
    package func deleteAll(prefix: String) throws(StoreError) -> Int {
        try StoreKey.validatePrefix(prefix)
        var deleted = 0
        // In batches: memory stays flat however many keys the prefix holds.
        while true {
            var keys: [String] = []
            try walk(prefix: prefix, after: nil) { key throws(StoreError) in
                keys.append(key)
                return keys.count < 1000
            }
            if keys.isEmpty { return deleted }
            for key in keys where try delete(key) { deleted += 1 }
        }
    }

    package func sweepExpired(after: String?, limit: Int, asOf: Date) throws(StoreError) -> SweepPage {
        let cutoff = asOf.unixSeconds
        var page = SweepPage(visited: 0, deleted: 0, cursor: nil)
        var last: String?
        let complete = try walk(prefix: "", after: after, abandonedBefore: clock.now.unixSeconds - Self.abandonedTemporarySeconds) {
            key throws(StoreError) in
            guard page.visited < limit else { return false }
            page.visited += 1
            last = key
            if let expires = try readRecord(path(for: key), key: key, headerOnly: true)?.expires,
                expires != 0, expires <= cutoff, try removeIfExpired(key, by: cutoff)
            {
                page.deleted += 1
            }
            return true
        }
        page.cursor = complete ? nil : last
        return page
    }

    // MARK: Layout

    private func path(for key: String) -> String { String(concatenating: root, "/", key, ".rec") }

    /// The folder a record's file is in: up to its last slash, found in its bytes.
    private static func folder(of file: String) -> String {
        String(file.utf8[..<file.utf8.lastIndex(of: UInt8(ascii: "/"))!])!
    }

    private enum Change {
        case write([UInt8], Int?)
        case remove
    }

    /// Reads the current value and applies `decide`'s change, all under the folder's lock.
    /// With `ifMissing`, a key whose folder does not exist gets its answer (`decide` is not
    /// called) instead of its folder made.
    private func mutate(
        _ key: String, ifMissing: (() throws(StoreError) -> UInt64)? = nil, _ decide: (Versioned?) throws(StoreError) -> Change
    ) throws(StoreError) -> UInt64 {
        try StoreKey.validate(key)
        return try withLockedFolder(of: key, ifMissing: ifMissing) { file, folder, lock throws(StoreError) in
            // Once more only when a bulk load linked a record in under the name found free.
            while true {
                let (current, exists) = try readForChange(file, key: key)
                switch try decide(current) {
                case .remove:
                    if exists {
                        guard unlink(file) == 0 || errno == ENOENT else { throw .unavailable("cannot delete record (errno \(errno))") }
                        removeIfEmpty(folder)
                        fsync(lock)
                    }
                    return current?.version ?? 0
                case .write(let value, let ttl):
                    let version = StoreVersion.next(after: current?.version)
                    let expires = ttl.map { clock.now.unixSeconds + Int64(max($0, 1)) } ?? 0
                    if try writeAtomically(
                        file, folder: folder, folderDescriptor: lock,
                        bytes: Self.encode(value, version: version, expiresAt: expires), durable: durable && ttl == nil,
                        replacing: exists)
                    {
                        return version
                    }
                }
            }
        }
    }

    /// Deletes the record if it is still expired by `cutoff` once the folder is locked (a
    /// writer may have just put a fresh one).
    private func removeIfExpired(_ key: String, by cutoff: Int64) throws(StoreError) -> Bool {
        let missing: () throws(StoreError) -> Bool = { false }
        return try withLockedFolder(of: key, ifMissing: missing) { file, folder, _ throws(StoreError) in
            guard let expires = try? readRecord(file, key: key, headerOnly: true)?.expires,
                expires != 0, expires <= cutoff, unlink(file) == 0
            else { return false }
            removeIfEmpty(folder)
            return true
        }
    }

    /// An empty key folder (its last record deleted) goes too, under its own lock; a writer
    /// that locked it meanwhile sees it removed and starts again.
    private func removeIfEmpty(_ folder: String) {
        if folder != root { rmdir(folder) }
    }

    /// Runs `body` with the key's folder locked (exclusive `flock`): every change of a record
    /// happens inside, so compare-and-swap holds across processes. A missing folder is made,
    /// unless `ifMissing` gives the answer instead.
    private func withLockedFolder<T>(
        of key: String, ifMissing: (() throws(StoreError) -> T)? = nil,
        _ body: (_ file: String, _ folder: String, _ lock: Int32) throws(StoreError) -> T
    ) throws(StoreError) -> T {
        let file = path(for: key)
        let folder = Self.folder(of: file)
        for _ in 0..<16 {
            var lock = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if lock < 0 && errno == ENOENT {
                if let ifMissing { return try ifMissing() }
                try makeFolders(for: key)
                lock = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                if lock < 0 && errno == ENOENT { continue }
            }
            guard lock >= 0 else { throw .unavailable("cannot open store folder (errno \(errno))") }
            defer { close(lock) }
            while flock(lock, LOCK_EX) != 0 {
                guard errno == EINTR else { throw .unavailable("cannot lock store folder (errno \(errno))") }
            }
            // Removed (empty) while this process waited for the lock: open it anew.
            var status = stat()
            guard fstat(lock, &status) == 0, status.st_nlink > 0 else { continue }
            return try body(file, folder, lock)
        }
        throw .unavailable("the store folder kept disappearing")
    }

    /// Random per process, then counted: temporary names without a call for randomness per
    /// write.
    private static let processNoise = Hex.encode(Crypto.randomBytes(8))
    private static let counter = Atomic<UInt64>(0)

    /// A temporary file name no other writer uses: random per process, counted within it.
    private static func temporaryName() -> String {
        processNoise + "-" + String(counter.wrappingAdd(1, ordering: .relaxed).newValue, radix: 16)
    }

    /// A new temporary file in `key`'s folder (made when missing) holding `bytes`, not synced;
    /// its path.
    private func writeTemporary(for key: String, _ bytes: [UInt8]) throws(StoreError) -> String {
        let file = path(for: key)
        let temp = Self.folder(of: file) + "/.tmp-" + Self.temporaryName()
        var fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 && errno == ENOENT {
            try makeFolders(for: key)
            fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        }
        guard fd >= 0 else { throw .unavailable(errno == ENOSPC ? "store disk is full" : "cannot create record (errno \(errno))") }
        let failure = Descriptor.writeAll(fd, bytes)
        close(fd)
        guard failure == 0 else {
            unlink(temp)
            throw .unavailable(failure == ENOSPC ? "store disk is full" : "cannot write record (errno \(failure))")
        }
        return temp
    }

    /// Writes `bytes` as the record `file` (its folder locked): a new record by way of an
    /// unnamed file, a replaced one by way of a temp file. False, with nothing written, when the
    /// name found free (`replacing` false) is taken: a bulk load linked its record in meanwhile,
    /// without the lock, and the caller reads the record and decides anew.
    private func writeAtomically(
        _ file: String, folder: String, folderDescriptor: Int32, bytes: [UInt8],
        durable: Bool, replacing: Bool
    ) throws(StoreError) -> Bool {
        var linked = false
        if !replacing {
            switch try linkNew(file, folder: folder, bytes: bytes, sync: durable) {
            case .linked: linked = true
            case .taken: return false
            case .noFolder, .notLinked: break
            }
        }
        if !linked {
            // Where no unnamed file could be had, a name free still means a record new: a temp
            // file renamed onto it only while it is free, over a record only where one was.
            let temp = folder + "/.tmp-" + Self.temporaryName()
            let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw .unavailable("cannot create record (errno \(errno))") }
            var failure = Descriptor.writeAll(fd, bytes)
            if durable && failure == 0 && fsync(fd) != 0 { failure = errno }
            close(fd)
            if failure == 0 && !replacing {
                if compass_rename_new(temp, file) != 0 { failure = errno }
                if failure == EEXIST {
                    unlink(temp)
                    return false
                }
            } else if failure == 0 && rename(temp, file) != 0 {
                failure = errno
            }
            if failure != 0 {
                unlink(temp)
                throw .unavailable(failure == ENOSPC ? "store disk is full" : "cannot write record (errno \(failure))")
            }
        }
        if durable { fsync(folderDescriptor) }
        return true
    }

    /// What came of linking a new record in.
    private enum LinkOutcome {
        case linked
        /// The name is taken.
        case taken
        /// Its folder is not there (yet, or no more: a bulk load's link, without the lock, racing
        /// the removal of an emptied folder).
        case noFolder
        /// No unnamed file to be had: the caller goes the usual way.
        case notLinked
    }

    /// `bytes` linked in as the new record `file` by way of an unnamed file, fsynced with `sync`
    /// (its folder locked, or a bulk load's record).
    private func linkNew(_ file: String, folder: String, bytes: [UInt8], sync: Bool) throws(StoreError) -> LinkOutcome {
        let fd: Int32
        switch try writeUnnamed(in: folder, bytes, sync: sync) {
        case .file(let file): fd = file
        case .noFolder: return .noFolder
        case .unavailable: return .notLinked
        }
        let failure = Self.link(fd, as: file)
        close(fd)
        switch failure {
        case 0: return .linked
        case EEXIST: return .taken
        case ENOENT: return .noFolder
        case ENOSPC, EDQUOT: throw .unavailable("store disk is full")
        // Linking through /proc refused (a security module, a sandbox): temp files from now on.
        default:
            Self.unnamedFilesRefused.store(true, ordering: .relaxed)
            return .notLinked
        }
    }

    /// `AT_EMPTY_PATH` (Glibc's module map leaves it out without `_GNU_SOURCE`).
    private static let emptyPathFlag: Int32 = 0x1000

    /// Set once the kernel refused to link a descriptor by `AT_EMPTY_PATH` (before Linux 6.10
    /// that takes `CAP_DAC_READ_SEARCH`): this process links by the `/proc/self/fd` path after.
    static let emptyPathRefused = Atomic<Bool>(false)

    /// The unnamed file `fd` linked in as `file`: 0, or the errno of the link. By the descriptor
    /// itself where the kernel lets a process link what it opened (walking `/proc/self/fd/N`
    /// took about a fifth of the time `bench/baseline-seed.c` takes to make a tenant's records
    /// on tmpfs), else by that path. A folder that is not there answers ENOENT, and so does a
    /// kernel that refuses the flag: the path tells them apart.
    private static func link(_ fd: Int32, as file: String) -> Int32 {
        if !emptyPathRefused.load(ordering: .relaxed) {
            if linkat(fd, "", AT_FDCWD, file, emptyPathFlag) == 0 { return 0 }
            let failure = errno
            if failure == EEXIST || failure == ENOSPC || failure == EDQUOT { return failure }
        }
        guard linkat(AT_FDCWD, "/proc/self/fd/" + String(fd), AT_FDCWD, file, AT_SYMLINK_FOLLOW) == 0 else { return errno }
        emptyPathRefused.store(true, ordering: .relaxed)
        return 0
    }

    /// A record's bytes on their way into place.
    private enum Staged {
        /// Nothing (a delete).
        case nothing
        /// A temporary file, written and flushed before the folder is locked, renamed then.
        case named(String)
        /// Bytes written once the folder is locked.
        case bytes([UInt8])
    }

    /// An unnamed file in `folder` holding `bytes`, fsynced with `sync`; nil where unnamed files
    /// are not to be had (this store does not use them, the file system has none, no descriptor
    /// is free): the caller writes a temp file instead.
    private func writeUnnamed(in folder: String, _ bytes: [UInt8], sync: Bool) throws(StoreError) -> Unnamed {
        guard unnamedFiles, !Self.unnamedFilesRefused.load(ordering: .relaxed) else { return .unavailable }
        let fd = open(folder, O_WRONLY | Self.unnamedFileFlag | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == ENOENT { return .noFolder }
            // Kernels and file systems without O_TMPFILE answer one of these.
            if errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL { Self.unnamedFilesRefused.store(true, ordering: .relaxed) }
            return .unavailable
        }
        var failure = Descriptor.writeAll(fd, bytes)
        if sync && failure == 0 && fsync(fd) != 0 { failure = errno }
        guard failure == 0 else {
            close(fd)
            throw .unavailable(failure == ENOSPC ? "store disk is full" : "cannot write record (errno \(failure))")
        }
        return .file(fd)
    }

    /// An unnamed file written, or why there is none.
    private enum Unnamed {
        case file(Int32)
        /// Its folder does not exist.
        case noFolder
        /// Not to be had: this store does not use them, the file system has none, no descriptor
        /// is free.
        case unavailable
    }

    /// `O_TMPFILE` (`__O_TMPFILE | O_DIRECTORY`; Glibc's module map leaves it out without
    /// `_GNU_SOURCE`). `__O_TMPFILE` is the same on every Linux architecture Swift builds for.
    private static let unnamedFileFlag: Int32 = 0o20_000_000 | O_DIRECTORY

    // MARK: Record format: "CKV1", version (u64 LE), expiry in Unix seconds (i64 LE, 0 none), value

    private static func encode(_ value: [UInt8], version: UInt64, expiresAt: Int64) -> [UInt8] {
        var bytes = magic
        bytes.reserveCapacity(headerSize + value.count)
        withUnsafeBytes(of: version.littleEndian) { bytes += $0 }
        withUnsafeBytes(of: expiresAt.littleEndian) { bytes += $0 }
        return bytes + value
    }

    /// The record as a change sees it (a corrupt record can be overwritten or deleted: it must
    /// not block repair), and whether a file is there at all (an expired or corrupt record is).
    private func readForChange(_ file: String, key: String) throws(StoreError) -> (current: Versioned?, exists: Bool) {
        do throws(StoreError) {
            guard let record = try readRecord(file, key: key, headerOnly: false) else { return (nil, false) }
            return (isLive(record) ? record.value : nil, true)
        } catch {
            guard case .corrupt = error else { throw error }
            return (nil, true)
        }
    }

    /// The record unless it is absent or expired now.
    private func read(_ file: String, key: String, headerOnly: Bool = false) throws(StoreError) -> Versioned? {
        guard let record = try readRecord(file, key: key, headerOnly: headerOnly), isLive(record) else { return nil }
        return record.value
    }

    /// Whether a record has not expired by now (one without a TTL never does).
    private func isLive(_ record: (value: Versioned, expires: Int64)) -> Bool {
        record.expires == 0 || record.expires > clock.now.unixSeconds
    }

    /// The record as stored, expired or not.
    private func readRecord(_ file: String, key: String, headerOnly: Bool) throws(StoreError) -> (value: Versioned, expires: Int64)? {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw .unavailable("cannot open record (errno \(errno))")
        }
        defer { close(fd) }
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .unavailable("cannot read record (errno \(errno))")
            }
            if count == 0 { break }
            bytes += chunk[0..<count]
            if headerOnly && bytes.count >= Self.headerSize { break }
        }
        guard bytes.count >= Self.headerSize, Array(bytes[0..<4]) == Self.magic else { throw .corrupt(key) }
        let version = bytes[4..<12].withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        let expires = bytes[12..<20].withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
        return (Versioned(value: headerOnly ? [] : Array(bytes[Self.headerSize...]), version: version), expires)
    }

    /// Calls `visit` for each record key under `prefix` after `after`, in byte order of keys,
    /// until it returns false; true when it visited them all. Corrupt records are skipped.
    /// With `abandonedBefore`, temporary files last changed before that instant are deleted.
    @discardableResult
    private func walk(
        prefix: String, after: String?, abandonedBefore: Int64? = nil, snapshot: Bool = false,
        visit: (String) throws(StoreError) -> Bool
    ) throws(StoreError) -> Bool {
        let folderPart: String
        let partial: String
        if let slash = prefix.lastIndex(of: "/") {
            folderPart = String(prefix[...slash])
            partial = String(prefix[prefix.index(after: slash)...])
        } else {
            folderPart = ""
            partial = prefix
        }
        return try walk(
            folder: root + "/" + folderPart, keyPrefix: folderPart, partial: partial, after: after,
            abandonedBefore: abandonedBefore, snapshot: snapshot, visit: visit)
    }

    /// Depth-first in byte order of keys: a folder `x` sorts as `x/`, a record `x` as `x`.
    /// Returns false once `visit` asked to stop. With `snapshot`, a folder's sorted items come
    /// from the process's snapshot of it when there is one.
    private func walk(
        folder: String, keyPrefix: String, partial: String, after: String?, abandonedBefore: Int64?,
        snapshot: Bool, visit: (String) throws(StoreError) -> Bool
    ) throws(StoreError) -> Bool {
        let items: [FolderItem]
        if snapshot, let kept = snapshots.items(of: folder, partial: partial) {
            items = kept
        } else {
            guard let names = try Self.folderEntries(folder) else { return true }
            if let abandonedBefore {
                for name in names where name.hasPrefix(".tmp-") {
                    var status = stat()
                    if stat(folder + "/" + name, &status) == 0 && Int64(status.st_mtim.tv_sec) < abandonedBefore {
                        unlink(folder + "/" + name)
                    }
                }
            }
            items = Self.sortedItems(names, keyPrefix: keyPrefix, partial: partial)
            if snapshot { snapshots.keep(items, of: folder, partial: partial) }
        }
        // Straight to the first item after the cursor (or the folder holding it).
        var start = 0
        if let after {
            var low = 0
            var high = items.count
            while low < high {
                let middle = (low + high) / 2
                if items[middle].sortKey.utf8.lexicographicallyPrecedes(after.utf8) { low = middle + 1 } else { high = middle }
            }
            start = low
            if start > 0, !items[start - 1].isRecord, after.hasPrefix(items[start - 1].sortKey) { start -= 1 }
        }
        for item in items[start...] {
            if item.isRecord {
                if let after, !after.utf8.lexicographicallyPrecedes(item.sortKey.utf8) { continue }
                let goOn: Bool
                do { goOn = try visit(item.sortKey) } catch .corrupt { continue }
                if !goOn { return false }
            } else {
                // Skip a whole folder whose keys all sort before the cursor.
                if let after, !after.hasPrefix(item.sortKey),
                    item.sortKey.utf8.lexicographicallyPrecedes(after.utf8)
                {
                    continue
                }
                guard
                    try walk(
                        folder: root + "/" + item.sortKey, keyPrefix: item.sortKey, partial: "",
                        after: after, abandonedBefore: abandonedBefore, snapshot: snapshot, visit: visit)
                else { return false }
            }
        }
        return true
    }

    /// A folder's records and sub-folders whose names start with `partial`, as keys (a
    /// folder's with its `/`), in byte order.
    private static func sortedItems(_ names: [String], keyPrefix: String, partial: String) -> [FolderItem] {
        var items: [FolderItem] = []
        for name in names where name.hasPrefix(partial) && !name.hasPrefix(".") {
            if name.hasSuffix(".rec") {
                let segment = name.dropLast(4)
                if StoreKey.isValidSegment(segment) { items.append(FolderItem(sortKey: keyPrefix + segment, isRecord: true)) }
            } else if StoreKey.isValidSegment(name) {
                items.append(FolderItem(sortKey: keyPrefix + name + "/", isRecord: false))
            }
        }
        items.sort { $0.sortKey.utf8.lexicographicallyPrecedes($1.sortKey.utf8) }
        return items
    }

    private static func folderEntries(_ folder: String) throws(StoreError) -> [String]? {
        guard let dir = opendir(folder) else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw .unavailable("cannot list store folder (errno \(errno))")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { buffer in
                String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The folders of a key's parent segments, created below the root only: the deepest is
    /// tried first and its parents only when it cannot be made, so a key whose parents exist
    /// (most of them: a new minute of an index, a new tenant) costs one `mkdir`.
    private func makeFolders(for key: String) throws(StoreError) {
        // Each folder's path is the record's up to a slash after the root: read in its bytes.
        var file = path(for: key)
        let folders = file.withUTF8 { bytes in
            (root.utf8.count + 1..<bytes.count).filter { bytes[$0] == UInt8(ascii: "/") }.map {
                String(decoding: UnsafeBufferPointer(rebasing: bytes[..<$0]), as: UTF8.self)
            }
        }
        // Up from the deepest to the first that exists or could be made.
        var made = folders.count - 1
        while made >= 0 {
            if mkdir(folders[made], 0o700) == 0 || errno == EEXIST { break }
            guard errno == ENOENT else { throw Self.folderFailure(errno) }
            made -= 1
        }
        if made < 0 && access(root, F_OK) != 0 {
            try Self.makeDirectories(root)
            try Self.checkCaseSensitivity(root, isCaseSensitive)
        }
        // Then down again, below it.
        for folder in folders[(made + 1)...] where mkdir(folder, 0o700) != 0 && errno != EEXIST {
            throw Self.folderFailure(errno)
        }
    }

    private static func folderFailure(_ code: Int32) -> StoreError {
        .unavailable(code == ENOSPC ? "store disk is full" : "cannot create store folder (errno \(code))")
    }

    private static func makeDirectories(_ path: String) throws(StoreError) {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o700) != 0 && errno != EEXIST { throw folderFailure(errno) }
        }
    }
}

/// `syncfs(2)`: writes out everything of the file system holding `fd` (Glibc's module map does
/// not export it without `_GNU_SOURCE`).
@_silgen_name("syncfs")
private func flushFileSystem(_ fd: Int32) -> Int32

struct FolderItem: Sendable {
    var sortKey: String
    var isRecord: Bool
}

/// Sorted folder listings a process keeps for a while, for walks over many pages (`scan`): a
/// folder of N records is read once per walk instead of once per page. A record written after
/// its folder was read is missed by that walk; one deleted is read as absent.
final class FolderSnapshots: Sendable {
    /// How long a listing is kept: shorter than refresh-cron's one-minute schedule, so that two
    /// runs in one warm process (FastCGI, Lambda) never share one; a longer walk reads again.
    static let lifetime: Int64 = 30
    private let kept = Mutex<[String: (taken: Int64, items: [FolderItem])]>([:])

    func items(of folder: String, partial: String) -> [FolderItem]? {
        let now = Date().unixSeconds
        return kept.withLock { kept in
            guard let found = kept[folder + "\u{0}" + partial], now - found.taken < Self.lifetime else { return nil }
            return found.items
        }
    }

    func keep(_ items: [FolderItem], of folder: String, partial: String) {
        let now = Date().unixSeconds
        kept.withLock { kept in
            kept = kept.filter { now - $0.value.taken < Self.lifetime }
            kept[folder + "\u{0}" + partial] = (now, items)
        }
    }
}
