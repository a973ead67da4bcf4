import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// The behaviour every backend of `KeyValueStore` must have (DESIGN section 6). Each test
/// takes a factory so that other backends run the very same suite.
@Suite struct StoreConformanceTests {
    static let backends: [@Sendable () throws -> StoreUnderTest] = [
        StoreUnderTest.fileStore, StoreUnderTest.fileStoreWithTemporaryFiles, StoreUnderTest.etcdStore, StoreUnderTest.postgresStore,
        StoreUnderTest.dynamoDBStore,
    ]

    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test(arguments: backends)
    func getPutAndVersions(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        let store = subject.store
        defer { withExtendedLifetime(subject) {} }
        #expect(try store.get("a/b") == nil)
        let v1 = try store.put("a/b", bytes("one"))
        #expect(try store.get("a/b") == Versioned(value: bytes("one"), version: v1))
        let v2 = try store.put("a/b", bytes("two"))
        #expect(v2 > v1)
        #expect(try store.get("a/b")?.value == bytes("two"))
        try store.put("a/empty", [])
        #expect(try store.get("a/empty")?.value == [])
    }

    @Test(arguments: backends)
    func createOnlyWhenAbsent(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        let store = subject.store
        defer { withExtendedLifetime(subject) {} }
        try store.create("k", bytes("first"))
        #expect(throws: StoreError.alreadyExists) { try store.create("k", bytes("second")) }
        #expect(try store.get("k")?.value == bytes("first"))
    }

    @Test(arguments: backends)
    func compareAndSwapNeedsTheCurrentVersion(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        let store = subject.store
        defer { withExtendedLifetime(subject) {} }
        #expect(throws: StoreError.versionMismatch) { try store.compareAndSwap("k", bytes("x"), expected: 1, ttl: nil) }
        let v1 = try store.put("k", bytes("1"))
        let v2 = try store.compareAndSwap("k", bytes("2"), expected: v1, ttl: nil)
        #expect(throws: StoreError.versionMismatch) { try store.compareAndSwap("k", bytes("3"), expected: v1, ttl: nil) }
        #expect(try store.get("k") == Versioned(value: bytes("2"), version: v2))
    }

    @Test(arguments: backends)
    func aVersionFromBeforeADeleteIsNeverValidAgain(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        let store = subject.store
        defer { withExtendedLifetime(subject) {} }
        let old = try store.put("k", bytes("1"))
        try store.delete("k")
        try store.create("k", bytes("again"))
        #expect(throws: StoreError.versionMismatch) { try store.compareAndSwap("k", bytes("x"), expected: old, ttl: nil) }
    }

    @Test(arguments: backends)
    func deleteUnconditionallyOrOnVersion(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        let store = subject.store
        defer { withExtendedLifetime(subject) {} }
        #expect(try store.delete("missing") == false)
        let v = try store.put("k", bytes("1"))
        #expect(throws: StoreError.versionMismatch) { try store.delete("k", ifVersion: v + 1) }
        #expect(try store.delete("k", ifVersion: v))
        #expect(try store.get("k") == nil)
        try store.put("k", bytes("2"))
        #expect(try store.delete("k"))
        #expect(throws: StoreError.versionMismatch) { try store.delete("k", ifVersion: v) }
    }

    @Test(arguments: backends)
    func expiredKeysAreInvisibleAndCanBeCreatedAgain(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        let store = subject.store
        defer { withExtendedLifetime(subject) {} }
        try store.put("ttl/short", bytes("x"), ttl: 1)
        try store.put("ttl/long", bytes("y"), ttl: 3600)
        try store.put("ttl/none", bytes("z"))
        #expect(try store.get("ttl/short")?.value == bytes("x"))
        subject.advance(2.5)
        #expect(try store.get("ttl/short") == nil)
        #expect(try store.list(prefix: "ttl/", after: nil, limit: 10).entries.map(\.key) == ["ttl/long", "ttl/none"])
        try store.create("ttl/short", bytes("new"))
        #expect(try store.get("ttl/short")?.value == bytes("new"))
    }

    /// A batch of writes means what the same writes one by one mean: puts overwrite, creates
    /// of existing keys fail alone (nil), deletes delete, a key may come twice, batches longer
    /// than one etcd transaction go through, and records with a TTL run out.
    @Test(arguments: backends)
    func aBatchOfWritesMeansWhatTheWritesMeanOneByOne(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        let store = subject.store
        defer { withExtendedLifetime(subject) {} }
        try store.put("batch/existing", bytes("old"))
        let versions = try store.write([
            .create("batch/existing", bytes("not written"), ttl: nil),
            .create("batch/new", bytes("created"), ttl: nil),
            .put("batch/existing2", bytes("put"), ttl: nil),
            .put("batch/new", bytes("put after create"), ttl: nil),
            .create("batch/short", bytes("brief"), ttl: 1),
        ])
        #expect(versions.count == 5 && versions[0] == nil && versions[1...].allSatisfy { $0 != nil })
        #expect(try store.get("batch/existing")?.value == bytes("old"))
        #expect(try store.get("batch/new")?.value == bytes("put after create"))
        #expect(try store.get("batch/new")?.version == versions[3])
        #expect(try store.get("batch/existing2")?.value == bytes("put"))
        // Longer than one transaction.
        let many = (0..<(EtcdStore.batchOps * 2 + 5)).map { BatchWrite.create("many/k\(1000 + $0)", bytes("\($0)"), ttl: 3600) }
        let created = try store.write(many)
        #expect(created.count == many.count && created.allSatisfy { $0 != nil })
        #expect(try store.count(prefix: "many/") == many.count)
        #expect(try store.write(Array(many.prefix(3))) == [nil, nil, nil])
        subject.advance(2.5)
        #expect(try store.get("batch/short") == nil)
        // A create over a record that expired writes it anew.
        let again = try store.write([.create("batch/short", bytes("again"), ttl: 60)])
        #expect(again.count == 1 && again[0] != nil)
        #expect(try store.get("batch/short")?.value == bytes("again"))
        #expect(try store.get("many/k1000") != nil)
        #expect(throws: StoreError.self) { try store.write([.put("../escape", [], ttl: nil)]) }
        // Writes going from folder to folder and back, into a deeper folder and a sibling whose
        // name extends another's: each where it belongs.
        let mixed = ["mix/a/x", "mix/a/b/y", "mix/a/z", "mix/ab/w", "mix/a/v", "mix/a"]
        #expect(try store.write(mixed.map { .put($0, bytes($0), ttl: nil) }).allSatisfy { $0 != nil })
        for key in mixed { #expect(try store.get(key)?.value == bytes(key), "\(key)") }
        // Deletes among the writes: each key gone (an absent one too), nil in the answer; a key
        // put and deleted in one batch ends deleted.
        let answer = try store.write([
            .delete("mix/a/x"), .put("mix/a/u", bytes("u"), ttl: nil), .put("mix/twice", bytes("1"), ttl: nil), .delete("mix/a/b/y"),
            .delete("mix/absent"), .delete("many/k1001"), .delete("mix/twice"),
        ])
        #expect(answer.count == 7 && answer[1] != nil && answer[2] != nil)
        #expect([0, 3, 4, 5, 6].allSatisfy { answer[$0] == nil })
        for key in ["mix/a/x", "mix/a/b/y", "mix/absent", "many/k1001", "mix/twice"] { #expect(try store.get(key) == nil, "\(key)") }
        #expect(try store.get("mix/a/u")?.value == bytes("u"))
        #expect(try store.get("mix/a/z")?.value == bytes("mix/a/z"))
        #expect(try store.count(prefix: "mix/a/b/") == 0)
        #expect(try store.count(prefix: "many/") == many.count - 1)
    }

    /// A scan pages through what a listing pages through, cursor by cursor, folders and all.
    @Test(arguments: backends)
    func aScanPagesLikeAListing(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        let store = subject.store
        defer { withExtendedLifetime(subject) {} }
        let keys = (0..<120).map { "scan/k\($0 % 7)\($0)" } + ["scan/k1/inner", "scan/k1", "scan/a", "scan/k1-", "scan/z/y/x"]
        _ = try store.write(keys.map { .put($0, bytes($0), ttl: nil) })
        for (prefix, limit) in [("scan/", 7), ("scan/k1", 3), ("scan/", 500), ("scan/z", 1)] {
            var listed: [String] = []
            var scanned: [String] = []
            var cursor: String? = nil
            repeat {
                let page = try store.list(prefix: prefix, after: cursor, limit: limit)
                listed += page.entries.map(\.key)
                cursor = page.cursor
            } while cursor != nil
            repeat {
                let page = try store.scan(prefix: prefix, after: cursor, limit: limit)
                scanned += page.entries.map(\.key)
                #expect(page.entries.allSatisfy { $0.value.value == bytes($0.key) })
                cursor = page.cursor
            } while cursor != nil
            #expect(scanned == listed, "\(prefix) by \(limit)")
            #expect(listed == keys.filter { $0.hasPrefix(prefix) }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }, "\(prefix)")
        }
        // From a cursor inside a folder and from one that is not a key.
        let sorted = keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        for cursor in ["scan/k1/inner", "scan/k0", "scan/k1/", "scan/k1-", "scan/k6~"] {
            let next = sorted.first { cursor.utf8.lexicographicallyPrecedes($0.utf8) }
            #expect(
                try store.scan(prefix: "scan/", after: cursor, limit: 1).entries.map(\.key) == (next.map { [$0] } ?? []), "after \(cursor)")
        }
    }

    @Test(arguments: backends)
    func listsByPrefixInByteOrderWithACursor(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        let store = subject.store
        defer { withExtendedLifetime(subject) {} }
        let keys = ["p/a", "p/a-c", "p/a/b", "p/a/b/c", "p/a0", "p/b", "p/B", "p/_x", "q/a", "pz"]
        for key in keys.shuffled() { try store.put(key, bytes(key)) }
        let expected = ["p/B", "p/_x", "p/a", "p/a-c", "p/a/b", "p/a/b/c", "p/a0", "p/b"]
        #expect(try store.list(prefix: "p/", after: nil, limit: 100).entries.map(\.key) == expected)
        #expect(try store.list(prefix: "p/", after: nil, limit: 100).entries.map(\.value.value) == expected.map(bytes))

        var seen: [String] = []
        var cursor: String? = nil
        repeat {
            let page = try store.list(prefix: "p/", after: cursor, limit: 3)
            #expect(page.entries.count <= 3)
            seen += page.entries.map(\.key)
            cursor = page.cursor
        } while cursor != nil
        #expect(seen == expected)

        #expect(try store.list(prefix: "p/a", after: nil, limit: 100).entries.map(\.key) == ["p/a", "p/a-c", "p/a/b", "p/a/b/c", "p/a0"])
        #expect(try store.list(prefix: "p/a/", after: "p/a/b", limit: 100).entries.map(\.key) == ["p/a/b/c"])
        #expect(try store.list(prefix: "nothing/", after: nil, limit: 10) == KeyPage(entries: [], cursor: nil))
        #expect(try store.list(prefix: "", after: nil, limit: 100).entries.count == keys.count)
    }

    @Test(arguments: backends)
    func countsKeysUnderAPrefixSkippingExpiredOnes(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        let store = subject.store
        defer { withExtendedLifetime(subject) {} }
        for key in ["c/a", "c/b/x", "c/b/y", "cz", "d/a"] { try store.put(key, bytes(key)) }
        try store.put("c/gone", bytes("x"), ttl: 1)
        #expect(try store.count(prefix: "c/") == 4)
        subject.advance(2.5)
        #expect(try store.count(prefix: "c/") == 3)
        #expect(try store.count(prefix: "c") == 4)
        #expect(try store.count(prefix: "none/") == 0)
    }

    @Test(arguments: backends)
    func rejectsKeysThatCouldEscapeOrAreMalformed(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        let store = subject.store
        defer { withExtendedLifetime(subject) {} }
        for key in [
            "", "../x", "a/../../x", "a//b", "/a", "a/", "a/./b", "a b", "a\u{0}b", "é",
            String(repeating: "a", count: 513),
        ] {
            #expect(throws: StoreError.self) { try store.put(key, [1]) }
            #expect(throws: StoreError.self) { try store.get(key) }
        }
        #expect(throws: StoreError.self) { try store.list(prefix: "../", after: nil, limit: 1) }
    }

    @Test(arguments: backends)
    func threadsRacingOnOneKeyLoseNoIncrement(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        let store = subject.store
        defer { withExtendedLifetime(subject) {} }
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<25 {
                while true {
                    do {
                        if let current = try store.get("counter") {
                            let value = Int(String(decoding: current.value, as: UTF8.self))!
                            try store.compareAndSwap("counter", Array(String(value + 1).utf8), expected: current.version, ttl: nil)
                        } else {
                            try store.create("counter", Array("1".utf8))
                        }
                        break
                    } catch StoreError.versionMismatch, StoreError.alreadyExists {
                        continue
                    } catch {
                        Issue.record("unexpected store error \(error)")
                        return
                    }
                }
            }
        }
        #expect(try store.get("counter")?.value == bytes("200"))
    }

    @Test(arguments: backends)
    func deleteAllRemovesEveryKeyUnderAPrefixAndNothingElse(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        let store = subject.store
        defer { withExtendedLifetime(subject) {} }
        for key in ["t/a/1", "t/a/2", "t/a/x/3", "t/ab", "t/b/1"] { try store.put(key, bytes(key)) }
        try store.put("t/a/short", bytes("s"), ttl: 3600)
        #expect(try store.deleteAll(prefix: "t/a/") == 4)
        #expect(try store.list(prefix: "t/", after: nil, limit: 10).entries.map(\.key) == ["t/ab", "t/b/1"])
        #expect(try store.deleteAll(prefix: "t/a/") == 0)
    }

    /// Expired records are deleted by the sweep, in batches, and only those: what a later read
    /// would not see anyway.
    @Test(arguments: backends)
    func sweepDeletesExpiredRecordsOnlyInBatches(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        let store = subject.store
        defer { withExtendedLifetime(subject) {} }
        try store.put("s/forever", bytes("f"))
        for index in 0..<5 { try store.put("s/short/\(index)", bytes("x"), ttl: 60) }
        try store.create("s/long", bytes("l"), ttl: 7200)
        let asOf = Date().addingTimeInterval(600)
        var deleted = 0
        var visited = 0
        var batches = 0
        var cursor: String? = nil
        repeat {
            let page = try store.sweepExpired(after: cursor, limit: 2, asOf: asOf)
            #expect(page.visited <= 2)
            deleted += page.deleted
            visited += page.visited
            batches += 1
            cursor = page.cursor
        } while cursor != nil && batches < 20
        #expect(deleted == 5)
        #expect(visited >= 7)
        #expect(try store.list(prefix: "s/", after: nil, limit: 10).entries.map(\.key) == ["s/forever", "s/long"])
        #expect(try store.sweepExpired(after: nil, limit: 100, asOf: asOf).deleted == 0)
    }

    @Test(arguments: backends)
    func processesRacingOnOneKeyLoseNoIncrement(_ make: @Sendable () throws -> StoreUnderTest) throws {
        let subject = try make()
        defer { withExtendedLifetime(subject) {} }
        let processes = try (0..<6).map { _ in
            try Executables.start(
                "compass-dev", arguments: ["store-increment", subject.url, "race/counter", "30"],
                environment: MotoServer.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 })
        }
        for process in processes {
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
        }
        #expect(try subject.store.get("race/counter")?.value == bytes("180"))
    }
}
