import Foundation
import Synchronization

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Real etcd servers (Debian's etcd-server) on loopback ports, each with its own data folder.
final class EtcdCluster: @unchecked Sendable {
    struct Node {
        var name: String
        var clientPort: Int
        var peerPort: Int
        var pid: pid_t
    }

    let folder = TemporaryFolder()
    private let nodes: Mutex<[Node]>

    static var binary: String? { ["/usr/bin/etcd", "/usr/local/bin/etcd"].first { FileManager.default.isExecutableFile(atPath: $0) } }

    enum Failure: Error {
        case notInstalled
        case didNotStart(String)
    }

    /// Starts `size` nodes on free ports; should another process take a port before a node
    /// binds it, the node exits saying so, and the cluster starts again on other ports.
    init(size: Int) throws {
        guard Self.binary != nil else { throw Failure.notInstalled }
        nodes = Mutex([])
        var attempt = 0
        while true {
            attempt += 1
            var list: [Node] = []
            for index in 0..<size {
                list.append(Node(name: "n\(index)", clientPort: try LighttpdHost.freePort(), peerPort: try LighttpdHost.freePort(), pid: 0))
            }
            nodes.withLock { $0 = list }
            do {
                for index in 0..<size { try start(index) }
                try waitUntilServing()
                return
            } catch Failure.didNotStart(let logs) where logs.contains("address already in use") && attempt < 4 {
                killAll()
                for node in list { try? FileManager.default.removeItem(atPath: folder.path + "/" + node.name) }
            }
        }
    }

    deinit {
        for node in nodes.withLock({ $0 }) where node.pid > 0 { Spawn.stop(node.pid) }
    }

    var endpoints: [String] { nodes.withLock { $0.map { "127.0.0.1:\($0.clientPort)" } } }

    /// `etcd://host:port,.../namespace`.
    func storeURL(namespace: String = "t" + UUID().uuidString.prefix(8).lowercased()) -> String {
        "etcd://" + endpoints.joined(separator: ",") + "/" + namespace
    }

    func store(namespace: String = "t" + UUID().uuidString.prefix(8).lowercased()) -> EtcdStore {
        EtcdStore(endpoints: endpoints.map { "http://" + $0 }, namespace: namespace + "/", transport: CurlTransport())
    }

    func start(_ index: Int) throws {
        let list = nodes.withLock { $0 }
        let node = list[index]
        let cluster = list.map { "\($0.name)=http://127.0.0.1:\($0.peerPort)" }.joined(separator: ",")
        let dataDir = folder.path + "/" + node.name
        let fresh = !FileManager.default.fileExists(atPath: dataDir)
        let pid = try LighttpdHost.spawn(
            [
                Self.binary!, "--name", node.name, "--data-dir", dataDir,
                "--listen-client-urls", "http://127.0.0.1:\(node.clientPort)", "--advertise-client-urls",
                "http://127.0.0.1:\(node.clientPort)",
                "--listen-peer-urls", "http://127.0.0.1:\(node.peerPort)", "--initial-advertise-peer-urls",
                "http://127.0.0.1:\(node.peerPort)",
                "--initial-cluster", cluster, "--initial-cluster-state", fresh ? "new" : "existing",
                "--initial-cluster-token", "compass-test", "--heartbeat-interval", "50", "--election-timeout", "500",
            ], stderr: folder.path + "/\(node.name).log")
        nodes.withLock { $0[index].pid = pid }
    }

    func kill(_ index: Int) {
        let pid = nodes.withLock { $0[index].pid }
        guard pid > 0 else { return }
        Glibc.kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        nodes.withLock { $0[index].pid = 0 }
    }

    func killAll() { for index in 0..<nodes.withLock({ $0.count }) { kill(index) } }

    /// Until a write succeeds (a leader is elected), at most 20 seconds; at once when a node
    /// has exited (a port taken, for one).
    func waitUntilServing() throws {
        let store = self.store(namespace: "health")
        let deadline = Date().addingTimeInterval(20)
        while true {
            if (try? store.put("probe", [1])) != nil { return }
            let exited = nodes.withLock { list in
                var any = false
                for index in list.indices where list[index].pid > 0 {
                    var status: Int32 = 0
                    if waitpid(list[index].pid, &status, WNOHANG) == list[index].pid {
                        list[index].pid = 0
                        any = true
                    }
                }
                return any
            }
            guard Date() < deadline, !exited else {
                let logs =
                    (try? FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".log") }
                        .map { (try? String(contentsOfFile: folder.path + "/" + $0, encoding: .utf8)) ?? "" }.joined()) ?? ""
                throw Failure.didNotStart(String(logs.suffix(4000)))
            }
            usleep(100_000)
        }
    }

    /// One node for the whole test run, shared by suites that only need a store. A static is
    /// never released, so the node is stopped when the test process exits.
    static let shared: EtcdCluster? = {
        let cluster = try? EtcdCluster(size: 1)
        atexit { EtcdCluster.shared?.killAll() }
        return cluster
    }()
}
