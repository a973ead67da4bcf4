import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// A store under test and how to make time pass for it.
struct StoreUnderTest: Sendable, CustomTestStringConvertible {
    var name: String
    var url: String
    var store: any KeyValueStore
    var advance: @Sendable (TimeInterval) -> Void
    var keepAlive: [any Sendable] = []
    var testDescription: String { name }

    static func fileStore() -> StoreUnderTest {
        let folder = TemporaryFolder()
        let clock = TestClock(Date())
        let root = folder.path + "/store"
        return StoreUnderTest(
            name: "FileStore", url: "file://" + root, store: try! FileStore(root: root, clock: clock),
            advance: { clock.advance($0) }, keepAlive: [folder])
    }

    /// The file store as it writes where the file system has no unnamed files (`O_TMPFILE`):
    /// every record by way of a temporary file.
    static func fileStoreWithTemporaryFiles() -> StoreUnderTest {
        let folder = TemporaryFolder()
        let clock = TestClock(Date())
        let root = folder.path + "/store"
        return StoreUnderTest(
            name: "FileStore (temporary files)", url: "file://" + root,
            store: try! FileStore(root: root, clock: clock, unnamedFiles: false), advance: { clock.advance($0) }, keepAlive: [folder])
    }

    /// A namespace of its own on the shared etcd node. etcd's leases run on its own clock, so
    /// time passes for real (with a margin for etcd's lease checker).
    /// A clear failure of each etcd case (not a crash of the run) when etcd cannot start.
    static func etcdStore() throws -> StoreUnderTest {
        guard let cluster = EtcdCluster.shared else {
            throw EtcdCluster.Failure.didNotStart("etcd could not be started: is etcd-server installed?")
        }
        let namespace = "t" + UUID().uuidString.prefix(8).lowercased()
        return StoreUnderTest(
            name: "EtcdStore", url: cluster.storeURL(namespace: namespace), store: cluster.store(namespace: namespace),
            advance: { usleep(UInt32(($0 + 2) * 1_000_000)) })
    }

    /// A database of its own on the shared PostgreSQL server; expiry follows the test clock.
    static func postgresStore() throws -> StoreUnderTest {
        guard let server = PostgresServer.shared else {
            throw PostgresServer.Failure.didNotStart("PostgreSQL could not be started: is postgresql installed?")
        }
        let url = try server.createDatabase()
        let clock = TestClock(Date())
        return StoreUnderTest(name: "PostgresStore", url: url, store: PostgresStore(url: url, clock: clock), advance: { clock.advance($0) })
    }

    /// A table of its own on the shared moto server (an emulator of DynamoDB); expiry follows
    /// the test clock.
    static func dynamoDBStore() throws -> StoreUnderTest {
        guard let server = MotoServer.shared else { throw POSIXError(.ECONNREFUSED) }
        let clock = TestClock(Date())
        let (url, store) = try server.store(clock: clock)
        return StoreUnderTest(name: "DynamoDBStore", url: url, store: store, advance: { clock.advance($0) })
    }
}
